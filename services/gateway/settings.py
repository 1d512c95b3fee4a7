"""Settings of the gateway (environment variables ``GATEWAY_*``, plus the admin token)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from shared.caller import PartnerKind
from shared.settings import DEVELOPMENT_SECRETS, ServiceSettings


class RateLimit(BaseModel):
    """A token bucket: ``per_second`` tokens refill continuously up to ``burst``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_second: float = Field(gt=0)
    burst: int = Field(ge=1)


# A referrer exporting a day's referrals posts a few hundred at once; a provider's CRM
# catching up after an outage syncs tens of thousands of sessions (a bulk call of 1,000
# items costs 1,000 tokens), so its bucket holds ten full batches and refills at 1,000
# items a second. The limits stop runaway clients; they are not a usage meter.
DEFAULT_RATE_LIMITS: dict[str, RateLimit] = {
    PartnerKind.JCP.value: RateLimit(per_second=50, burst=500),
    PartnerKind.PROBATION.value: RateLimit(per_second=50, burst=500),
    PartnerKind.TREATMENT.value: RateLimit(per_second=50, burst=500),
    PartnerKind.PROVIDER.value: RateLimit(per_second=1000, burst=10_000),
    PartnerKind.PROGRAMME_OFFICE.value: RateLimit(per_second=20, burst=100),
}


class GatewaySettings(ServiceSettings):
    # populate_by_name: code (and tests) may pass admin_token= by its field name.
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", populate_by_name=True)

    service_name: ClassVar[str] = "gateway"
    port: int = 8000
    database_url: SecretStr = SecretStr(
        "postgresql+asyncpg://pathways_gateway@127.0.0.1:5432/pathways"
    )
    # The contract names this variable (§1), so it carries no GATEWAY_ prefix.
    admin_token: SecretStr = Field(
        default=SecretStr("dev-admin-token"),
        validation_alias=AliasChoices("PATHWAYS_ADMIN_TOKEN", "GATEWAY_ADMIN_TOKEN"),
    )
    referrals_url: str = "http://127.0.0.1:8001"
    casework_url: str = "http://127.0.0.1:8002"
    outcomes_url: str = "http://127.0.0.1:8003"
    reporting_url: str = "http://127.0.0.1:8004"

    # --- proxying -------------------------------------------------------------------
    # Largest request body accepted; a bulk session sync (up to 1,000 items with notes)
    # has its own, larger cap. Bigger bodies get 413 before any service sees them.
    # The bulk cap is casework's own: 1,000 items of 10,000 characters of notes, each
    # character outside the BMP and sent as a twelve-byte surrogate pair of \uXXXX
    # escapes (json.dumps's default), is about 123 MB.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_bulk_body_bytes: int = Field(default=128 * 1024 * 1024, ge=1024)
    # A service that is down refuses the connection at once; a short connect timeout
    # covers one that does not answer at all, so partners get 503 quickly, never a hang.
    upstream_connect_timeout: float = Field(default=1.0, gt=0)
    upstream_read_timeout: float = Field(default=30.0, gt=0)
    upstream_write_timeout: float = Field(default=30.0, gt=0)
    # Waiting for a free pooled connection: past this the gateway is saturated (503).
    upstream_pool_timeout: float = Field(default=5.0, gt=0)
    upstream_max_connections: int = Field(default=256, ge=1)
    upstream_max_keepalive: int = Field(default=128, ge=1)

    # --- authentication -------------------------------------------------------------
    # API keys are cached in memory; every replica drops a key the moment PostgreSQL
    # NOTIFYs a change to it. The TTL bounds staleness should a notification be missed.
    key_cache_ttl_seconds: float = Field(default=30.0, gt=0)
    # Unknown key prefixes are remembered briefly so a flood of bad keys is not a flood
    # of queries.
    key_negative_cache_seconds: float = Field(default=5.0, ge=0)
    key_cache_max_entries: int = Field(default=100_000, ge=100)
    # A rotated key keeps working this long unless the admin says otherwise.
    key_rotation_overlap_seconds: int = Field(default=7 * 24 * 3600, ge=0)

    # --- rate limits (per partner, per gateway process) ------------------------------
    rate_limits: dict[str, RateLimit] = Field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))

    # --- audit log ------------------------------------------------------------------
    audit_flush_seconds: float = Field(default=0.15, gt=0)
    audit_batch_size: int = Field(default=2000, ge=1)
    # If PostgreSQL is unreachable for long the buffer fills; past this the gateway
    # refuses partner calls (503) rather than serve calls it cannot audit.
    audit_buffer_max: int = Field(default=200_000, ge=100)

    # --- webhooks -------------------------------------------------------------------
    # Like run_relay/run_consumer: a replica may leave sending webhooks to others.
    run_webhook_dispatcher: bool = True
    webhook_poll_seconds: float = Field(default=0.5, gt=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_retry_base_seconds: float = Field(default=10.0, gt=0)
    webhook_retry_max_delay_seconds: float = Field(default=3600.0, gt=0)
    # How long a delivery keeps being retried before it is marked failed (contract §9:
    # at least 24 hours).
    webhook_retry_for_seconds: float = Field(default=25 * 3600.0, gt=0)
    webhook_concurrency: int = Field(default=16, ge=1)
    webhook_batch_size: int = Field(default=100, ge=1)
    webhook_max_subscriptions: int = Field(default=20, ge=1)
    webhook_delivered_retention_days: int = Field(default=30, ge=1)
    # Plain http and private/loopback targets are for development and tests only.
    webhook_allow_http: bool = False
    webhook_allow_private_targets: bool = False

    @model_validator(mode="before")
    @classmethod
    def _merge_rate_limits(cls, values: Any) -> Any:
        # Overriding one kind's limit (GATEWAY_RATE_LIMITS='{"provider": {...}}') keeps
        # the defaults of the others.
        if isinstance(values, dict) and isinstance(values.get("rate_limits"), dict):
            merged: dict[str, Any] = {k: v.model_dump() for k, v in DEFAULT_RATE_LIMITS.items()}
            merged.update(values["rate_limits"])
            values = {**values, "rate_limits": merged}
        return values

    @model_validator(mode="after")
    def _no_development_token_in_production(self) -> GatewaySettings:
        if (
            self.platform.environment != "development"
            and self.admin_token.get_secret_value() in DEVELOPMENT_SECRETS
        ):
            raise ValueError("set PATHWAYS_ADMIN_TOKEN to a real secret outside development")
        return self

    @model_validator(mode="after")
    def _known_kinds(self) -> GatewaySettings:
        unknown = set(self.rate_limits) - {k.value for k in PartnerKind}
        if unknown:
            raise ValueError(f"rate_limits names unknown partner kinds: {sorted(unknown)}")
        return self

    def upstream_urls(self) -> dict[str, str]:
        return {
            "referrals": self.referrals_url,
            "casework": self.casework_url,
            "outcomes": self.outcomes_url,
            "reporting": self.reporting_url,
        }
