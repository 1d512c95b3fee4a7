"""The reporting service's FastAPI app: ``uvicorn services.reporting.app:create_app --factory``."""

from __future__ import annotations

from fastapi import FastAPI

from services.reporting import api, events, store
from services.reporting.settings import ReportingSettings
from shared.service import ServiceParts, build_service_app


def create_app(settings: ReportingSettings | None = None) -> FastAPI:
    settings = settings or ReportingSettings()
    return build_service_app(
        ServiceParts(
            settings=settings,
            title="Pathways reporting",
            description="Programme performance, cohort curves and barriers, from events.",
            routers=[api.router, api.dashboard_router],
            outbox_table=store.outbox,
            inbox_table=store.inbox,
            subscriptions=events.SUBSCRIPTIONS,
        )
    )
