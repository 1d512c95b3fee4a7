"""The referrals service's FastAPI app: ``uvicorn services.referrals.app:create_app --factory``."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi import FastAPI

from services.referrals import api, events, lifecycle, store
from services.referrals.api.routes import PROGRAMME_CACHE
from services.referrals.settings import ReferralsSettings
from shared.logging import get_logger
from shared.service import ServiceParts, ServiceRuntime, build_service_app

log = get_logger(__name__)


async def _on_startup(runtime: ServiceRuntime) -> None:
    runtime.extras[PROGRAMME_CACHE] = lifecycle.ProgrammeCache()


async def settle_waiting_referrals(runtime: ServiceRuntime) -> None:
    """Referrals posted before their programme's definition arrived wait as ``received``.

    The programme.defined handler decides them as soon as the definition comes; this
    loop is the safety net for that, and the one place a referral is finally rejected
    as ``unknown_programme``: only after it has waited ``unknown_programme_after_seconds``
    (15 minutes by default), so a delayed definition never turns real referrals away.
    Safe with several replicas: each waiting referral is locked while it is decided.
    """
    settings: ReferralsSettings = runtime.settings  # type: ignore[assignment]
    assert runtime.outbox is not None
    unknown_after = timedelta(seconds=settings.unknown_programme_after_seconds)
    while True:
        await asyncio.sleep(settings.pending_sweep_seconds)
        settled = await lifecycle.settle_waiting(
            runtime.session_factory,
            runtime.outbox,
            unknown_after=unknown_after,
            batch=settings.pending_sweep_batch,
        )
        if settled:
            log.info("waiting referrals settled", count=settled)


def create_app(settings: ReferralsSettings | None = None) -> FastAPI:
    settings = settings or ReferralsSettings()
    return build_service_app(
        ServiceParts(
            settings=settings,
            title="Pathways referrals",
            description=(
                "Intake of referrals from Jobcentre Plus, probation and treatment services."
            ),
            routers=[api.router],
            outbox_table=store.outbox,
            inbox_table=store.inbox,
            subscriptions=events.SUBSCRIPTIONS,
            background=[settle_waiting_referrals],
            on_startup=_on_startup,
        )
    )
