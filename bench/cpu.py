"""Where the CPU goes during a run: each service process, the sandbox's PostgreSQL
backends and RabbitMQ, read from /proc before and after.

On a two-core machine throughput is bounded by the CPU all of these need per request
together, so the split says what limits a figure, across processes and without slowing
the services down; the py-spy profiles (bench.profiles) then say where within one.
"""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg

from bench.common import cpu_seconds, pids_named


class CpuMeter:
    def __init__(
        self,
        processes: Mapping[str, int],
        *,
        admin_dsn: str,
        database: str,
        pg_user: str | None = None,
        broker: bool = True,
    ) -> None:
        """``pg_user`` counts only that login's backends; ``broker`` adds RabbitMQ."""
        self.processes = dict(processes)
        self.admin_dsn = admin_dsn
        self.database = database
        self.pg_user = pg_user
        self.broker = broker

    async def _postgres(self) -> dict[int, float]:
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            rows = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 "
                "AND pid <> pg_backend_pid() AND ($2::text IS NULL OR usename = $2)",
                self.database,
                self.pg_user,
            )
        finally:
            await conn.close()
        return {r["pid"]: cpu_seconds(r["pid"]) for r in rows}

    async def snapshot(self) -> dict[str, dict[int, float]]:
        return {
            **{name: {pid: cpu_seconds(pid)} for name, pid in self.processes.items()},
            "postgresql": await self._postgres(),
            **(
                {"rabbitmq": {pid: cpu_seconds(pid) for pid in pids_named("beam.smp")}}
                if self.broker
                else {}
            ),
        }

    async def since(self, before: dict[str, dict[int, float]]) -> dict[str, float]:
        """CPU seconds each part used since ``before`` (backends that came and went
        in between are missed: the pools keep theirs open)."""
        after = await self.snapshot()
        return {
            name: sum(cpu - before.get(name, {}).get(pid, 0.0) for pid, cpu in pids.items())
            for name, pids in after.items()
        }
