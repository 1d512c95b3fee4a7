"""Settings of the casework service (environment variables ``CASEWORK_*``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class CaseworkSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CASEWORK_", extra="ignore")

    service_name: ClassVar[str] = "casework"
    port: int = 8002
    database_url: SecretStr = SecretStr(
        "postgresql+asyncpg://pathways_casework@127.0.0.1:5432/pathways"
    )
