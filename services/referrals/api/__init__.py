"""HTTP routes of the referrals service (contract §2)."""

from services.referrals.api.routes import router

__all__ = ["router"]
