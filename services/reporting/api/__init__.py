"""HTTP routes of the reporting service: the reports (contract §6) and the dashboard."""

from services.reporting.api.dashboard import router as dashboard_router
from services.reporting.api.routes import router

__all__ = ["dashboard_router", "router"]
