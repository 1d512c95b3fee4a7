"""A throw-away copy of the platform's infrastructure: its own database, roles and vhost.

The test suite, the benchmarks and the soak each make one, so two runs on one machine
never see each other's data, and remove it afterwards. Names carry a creation stamp,
so leftovers of a run that was killed are recognisable and swept by the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from urllib.parse import quote

import asyncpg

from pathways import bootstrap as db_bootstrap
from pathways.config import PlatformConfig

PREFIX = "pw_sbx_"
STALE_AFTER_SECONDS = 6 * 3600
_NAME = re.compile(rf"^{PREFIX}(\d{{10}})_[0-9a-f]{{6}}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rabbitmqctl(*args: str) -> None:
    executable = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    subprocess.run([executable, "-q", *args], check=True, capture_output=True, timeout=60)


@dataclass
class Sandbox:
    name: str
    config: PlatformConfig
    vhost: str

    @classmethod
    def new(
        cls,
        label: str = "",
        *,
        admin_dsn: str = "postgresql://postgres@127.0.0.1:5432/postgres",
        amqp_base: str = "amqp://guest:guest@127.0.0.1:5672/",
    ) -> Sandbox:
        name = f"{PREFIX}{int(time.time())}_{secrets.token_hex(3)}{('_' + label) if label else ''}"
        logins = [
            db_bootstrap.ServiceLogin(service, f"{name}_{service}", secrets.token_hex(12))
            for service in db_bootstrap.SERVICES
        ]
        config = PlatformConfig(
            database=name,
            logins=logins,
            internal_secret=secrets.token_urlsafe(32),
            admin_token="adm_" + secrets.token_urlsafe(24),
            admin_dsn=admin_dsn,
            amqp_url=amqp_base.rstrip("/") + "/" + quote(name, safe=""),
            ports={service: free_port() for service in db_bootstrap.SERVICES},
        )
        return cls(name=name, config=config, vhost=name)

    async def create(self) -> None:
        await sweep_stale(self.config.admin_dsn)
        await asyncio.to_thread(_rabbitmqctl, "add_vhost", self.vhost)
        await asyncio.to_thread(
            _rabbitmqctl, "set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*"
        )
        await db_bootstrap.bootstrap(
            self.config.admin_dsn,
            self.config.database,
            self.config.logins,
            host=self.config.db_host,
            port=self.config.db_port,
        )

    async def destroy(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            await asyncio.to_thread(_rabbitmqctl, "delete_vhost", self.vhost)
        await db_bootstrap.drop_environment(
            self.config.admin_dsn,
            self.config.database,
            [login.role for login in self.config.logins],
        )


async def sweep_stale(admin_dsn: str) -> None:
    """Drop sandboxes left by runs that were killed before they could clean up."""
    cutoff = time.time() - STALE_AFTER_SECONDS
    conn = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        databases = [
            r["datname"]
            for r in await conn.fetch(
                "SELECT datname FROM pg_database WHERE datname LIKE $1", PREFIX + "%"
            )
        ]
        roles = [
            r["rolname"]
            for r in await conn.fetch(
                "SELECT rolname FROM pg_roles WHERE rolname LIKE $1", PREFIX + "%"
            )
        ]
    finally:
        await conn.close()
    stale = [db for db in databases if (m := _NAME.match(db)) and int(m.group(1)) < cutoff]
    for database in stale:
        owned = [role for role in roles if role.startswith(database + "_")]
        with contextlib.suppress(Exception):
            await db_bootstrap.drop_environment(admin_dsn, database, owned)
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            await asyncio.to_thread(_rabbitmqctl, "delete_vhost", database)
