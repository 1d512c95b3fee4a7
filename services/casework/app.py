"""The casework service's FastAPI app: ``uvicorn services.casework.app:create_app --factory``."""

from __future__ import annotations

from fastapi import FastAPI

from services.casework import api, events, store
from services.casework.settings import CaseworkSettings
from shared.service import ServiceParts, build_service_app


def create_app(settings: CaseworkSettings | None = None) -> FastAPI:
    settings = settings or CaseworkSettings()
    return build_service_app(
        ServiceParts(
            settings=settings,
            title="Pathways casework",
            description=("Attachment, key-worker sessions, barrier assessments and employment."),
            routers=[api.router],
            outbox_table=store.outbox,
            inbox_table=store.inbox,
            subscriptions=events.SUBSCRIPTIONS,
        )
    )
