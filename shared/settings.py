"""Settings every service reads.

Two layers, both plain environment variables (pydantic-settings):

* ``PATHWAYS_*`` — platform-wide: the broker, the event exchange, the secret the
  gateway signs internal calls with, logging.
* ``<SERVICE>_*`` — one service's own: its database login, its port.

A service's settings class subclasses :class:`ServiceSettings` with its own
``env_prefix`` and carries the platform settings as ``.platform``.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Placeholder secrets that are fine on a developer's laptop and nowhere else.
DEVELOPMENT_SECRETS = frozenset({"", "changeme", "dev-internal-secret", "dev-admin-token"})


class PlatformSettings(BaseSettings):
    """What every process of the platform shares."""

    model_config = SettingsConfigDict(env_prefix="PATHWAYS_", extra="ignore")

    environment: str = "development"
    amqp_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    exchange: str = "pathways.events"
    # classic suits one broker; quorum queues replicate across a RabbitMQ cluster.
    queue_type: str = "classic"
    internal_secret: SecretStr = SecretStr("dev-internal-secret")
    log_level: str = "INFO"
    log_format: str = "json"
    # How long a request may wait for a fact another service has published but this
    # one has not yet consumed (contract §8) before answering on what it knows.
    consistency_wait_seconds: float = 5.0
    # Delays before a failed event is handled again; after the last it is dead-lettered.
    retry_delays_ms: list[int] = Field(default_factory=lambda: [1000, 5000, 30000, 120000])
    outbox_poll_seconds: float = 0.25
    # Events a consumer applies in one transaction at most, and how long it waits for
    # more once one has come: under load, batches of hundreds cost little more than
    # one event each; idle, an event waits this long at most.
    consumer_batch_size: int = Field(default=200, ge=1, le=1000)
    consumer_linger_seconds: float = Field(default=0.01, ge=0, le=1)

    @field_validator("queue_type")
    @classmethod
    def _known_queue_type(cls, value: str) -> str:
        if value not in {"classic", "quorum"}:
            raise ValueError("queue_type must be 'classic' or 'quorum'")
        return value

    @field_validator("internal_secret")
    @classmethod
    def _strong_secret(cls, value: SecretStr, info) -> SecretStr:
        environment = info.data.get("environment", "development")
        if environment != "development" and value.get_secret_value() in DEVELOPMENT_SECRETS:
            raise ValueError("set PATHWAYS_INTERNAL_SECRET to a real secret outside development")
        return value


class ServiceSettings(BaseSettings):
    """Base for one service's settings; subclasses set ``env_prefix``."""

    model_config = SettingsConfigDict(extra="ignore")

    # The service's name is also its PostgreSQL schema and its queue's stem.
    service_name: ClassVar[str] = "service"

    database_url: SecretStr = SecretStr("postgresql+asyncpg://postgres@127.0.0.1:5432/pathways")
    # Two cores serve a handful of concurrent statements; idle connections cost the
    # server memory and count against max_connections (100 by default).
    database_pool_size: int = 5
    host: str = "127.0.0.1"
    port: int = 8000
    # A process can serve HTTP, relay its outbox and consume events; in a cluster these
    # may run as separate Deployments of the same image.
    run_relay: bool = True
    run_consumer: bool = True
    platform: PlatformSettings = Field(default_factory=PlatformSettings)

    @property
    def db_schema(self) -> str:
        return self.service_name
