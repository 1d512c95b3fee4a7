"""Settings of the outcomes service (environment variables ``OUTCOMES_*``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class OutcomesSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="OUTCOMES_", extra="ignore")

    service_name: ClassVar[str] = "outcomes"
    port: int = 8003
    database_url: SecretStr = SecretStr(
        "postgresql+asyncpg://pathways_outcomes@127.0.0.1:5432/pathways"
    )
    # How long a claim waits for the facts it rests on (attachment, employment episode,
    # its job start's decision) to arrive by events before the rules decide it on what
    # is known (contract §8: a claim posted right after its employment is not rejected).
    claim_facts_wait_seconds: float = Field(default=60.0, gt=0)
    # How often the service looks for claims whose wait is over.
    claim_wait_poll_seconds: float = Field(default=1.0, gt=0)
