"""HTTP routes of the gateway itself: the admin API and the partner routes it owns.

Everything else a partner calls is forwarded by :mod:`services.gateway.proxy`.
"""

from __future__ import annotations

from fastapi import APIRouter

from services.gateway.api import admin, partner

router = APIRouter()
router.include_router(admin.router)
router.include_router(partner.router)
