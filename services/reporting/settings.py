"""Settings of the reporting service (environment variables ``REPORTING_*``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class ReportingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REPORTING_", extra="ignore")

    service_name: ClassVar[str] = "reporting"
    port: int = 8004
    database_url: SecretStr = SecretStr(
        "postgresql+asyncpg://pathways_reporting@127.0.0.1:5432/pathways"
    )
