"""HTTP routes of the outcomes service: outcome claims (§4) and payments (§5)."""

from __future__ import annotations

from fastapi import APIRouter

from services.outcomes.api import claims, payments

router = APIRouter()
# The audit sample's fixed path is declared before /v1/outcome-claims/{claim_id}.
router.include_router(claims.router)
router.include_router(payments.router)

__all__ = ["router"]
