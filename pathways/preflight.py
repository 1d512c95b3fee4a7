"""Before starting anything: are PostgreSQL and RabbitMQ there? Say which is not, and how
to start it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aio_pika
import asyncpg

from pathways.config import PlatformConfig

POSTGRES_HINT = (
    "PostgreSQL is not reachable at {where}.\n"
    "  Start it:  pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n"
    "  or run the whole stack in containers:  docker compose up"
)
RABBITMQ_HINT = (
    "RabbitMQ is not reachable at {where}.\n"
    "  Start it:  rabbitmq-server -detached\n"
    "  or run the whole stack in containers:  docker compose up"
)


@dataclass
class Check:
    name: str
    ok: bool
    message: str = ""


async def check_postgres(config: PlatformConfig) -> Check:
    try:
        conn = await asyncpg.connect(config.admin_dsn, timeout=5)
        await conn.close()
        return Check("postgresql", True)
    except Exception as exc:
        where = f"{config.db_host}:{config.db_port}"
        return Check(
            "postgresql", False, POSTGRES_HINT.format(where=where) + f"\n  ({type(exc).__name__})"
        )


async def check_rabbitmq(config: PlatformConfig) -> Check:
    try:
        connection = await aio_pika.connect(config.amqp_url, timeout=5)
        await connection.close()
        return Check("rabbitmq", True)
    except Exception as exc:
        where = config.amqp_url.rsplit("@", 1)[-1]
        return Check(
            "rabbitmq", False, RABBITMQ_HINT.format(where=where) + f"\n  ({type(exc).__name__})"
        )


async def preflight(config: PlatformConfig) -> list[Check]:
    return list(await asyncio.gather(check_postgres(config), check_rabbitmq(config)))
