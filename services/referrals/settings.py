"""Settings of the referrals service (environment variables ``REFERRALS_*``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class ReferralsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REFERRALS_", extra="ignore")

    service_name: ClassVar[str] = "referrals"
    port: int = 8001
    database_url: SecretStr = SecretStr(
        "postgresql+asyncpg://pathways_referrals@127.0.0.1:5432/pathways"
    )

    # How long intake waits for a programme definition it has not heard of yet
    # (contract §8). ``None`` means the platform's ``consistency_wait_seconds``.
    programme_wait_seconds: float | None = Field(default=None, ge=0)
    # A referral for a programme still unknown after this long is rejected as
    # ``unknown_programme``. Generous on purpose: a definition can be delayed by a
    # broker outage, and rejecting a real referral is worse than deciding it late.
    unknown_programme_after_seconds: float = Field(default=15 * 60, gt=0)
    # How often the background loop looks for referrals left ``received``.
    pending_sweep_seconds: float = Field(default=5.0, gt=0)
    # At most this many pending referrals are settled per sweep transaction.
    pending_sweep_batch: int = Field(default=200, ge=1)

    @property
    def programme_wait(self) -> float:
        if self.programme_wait_seconds is not None:
            return self.programme_wait_seconds
        return self.platform.consistency_wait_seconds
