"""The outcomes service's FastAPI app: ``uvicorn services.outcomes.app:create_app --factory``."""

from __future__ import annotations

from fastapi import FastAPI

from services.outcomes import api, events, store, waits
from services.outcomes.settings import OutcomesSettings
from shared.service import ServiceParts, build_service_app


def create_app(settings: OutcomesSettings | None = None) -> FastAPI:
    settings = settings or OutcomesSettings()
    return build_service_app(
        ServiceParts(
            settings=settings,
            title="Pathways outcomes",
            description="Outcome claims, the review queue and the payments ledger.",
            routers=[api.router],
            outbox_table=store.outbox,
            inbox_table=store.inbox,
            subscriptions=events.SUBSCRIPTIONS,
            background=[waits.decide_expired_waits],
        )
    )
