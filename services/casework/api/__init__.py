"""HTTP routes of the casework service (contract §3)."""

from __future__ import annotations

from fastapi import APIRouter

from services.casework.api import participants, records, sessions

router = APIRouter()
# The sessions router goes first: `/v1/sessions/bulk` must never be read as a
# participant path.
router.include_router(sessions.router)
router.include_router(participants.router)
router.include_router(records.router)

__all__ = ["router"]
