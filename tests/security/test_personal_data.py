"""Personal data stays where it belongs. A realistic flow with unmistakable names, NINOs
and phone numbers (accepted, duplicated, refused as malformed, attached, claimed), then
every log line of every process, every event any service published and every row of
every table outside referrals and casework is searched for them: none may appear.

The one legitimate carrier is ``referrals.referral.accepted`` (contract and README: the
person's details travel to the provider's casework only), so it is left out of the
event scan, and its queue binding is checked to reach casework alone.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from pathlib import Path

import asyncpg
import pytest

from pathways.sandbox import Sandbox
from tests.security.world import build_tenant
from tests.support.builders import random_nino, referral_body
from tests.support.events import eventually
from tests.support.gateway import Gateway
from tests.support.platform import RunningPlatform

pytestmark = pytest.mark.platform

# Services whose own tables legitimately hold personal data (they need it).
HOLDERS = {"referrals", "casework"}
PERSONAL_EVENT = "referrals.referral.accepted"


def _people() -> list[dict[str, str]]:
    tag = secrets.token_hex(3).upper()
    return [
        {
            "given_name": f"Zebulon{tag}",
            "family_name": f"Quillfeather{tag}",
            "nino": random_nino(),
            "phone": f"0770090{secrets.randbelow(10**4):04d}",
        },
        {
            "given_name": f"Ottoline{tag}",
            "family_name": f"Marchbanks{tag}",
            "nino": random_nino(),
            "phone": f"0161496{secrets.randbelow(10**4):04d}",
        },
    ]


def _needles(people: list[dict[str, str]], extra: list[str]) -> list[str]:
    values = [v for person in people for v in person.values()] + extra
    # Also as other code might spell them: lower case, a NINO with spaces.
    spaced = [f"{n[:2]} {n[2:4]} {n[4:6]} {n[6:8]} {n[8:]}" for n in (p["nino"] for p in people)]
    return sorted({v.lower() for v in values + spaced})


def _found(text: str, needles: list[str]) -> list[str]:
    lowered = text.lower()
    return [n for n in needles if n in lowered]


async def _database_rows(sandbox: Sandbox) -> list[tuple[str, str, str]]:
    """(schema.table, event type or '', row as JSON text) for every row a scan must cover."""
    conn = await asyncpg.connect(sandbox.config.admin_dsn, database=sandbox.config.database)
    try:
        tables = await conn.fetch(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_schema = ANY($1::text[]) AND table_type = 'BASE TABLE'",
            ["gateway", "referrals", "casework", "outcomes", "reporting"],
        )
        rows: list[tuple[str, str, str]] = []
        for table in tables:
            schema, name = table["table_schema"], table["table_name"]
            if schema in HOLDERS and name != "outbox":
                continue
            qualified = f'"{schema}"."{name}"'
            for row in await conn.fetch(f"SELECT row_to_json(t)::text AS j FROM {qualified} t"):
                event_type = json.loads(row["j"]).get("event_type", "") if name == "outbox" else ""
                rows.append((f"{schema}.{name}", event_type, row["j"]))
        return rows
    finally:
        await conn.close()


def _bindings(vhost: str) -> list[tuple[str, str]]:
    executable = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    out = subprocess.run(
        [executable, "-q", "list_bindings", "-p", vhost, "destination_name", "routing_key"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    pairs = [tuple(line.split("\t")[:2]) for line in out.splitlines() if "\t" in line]
    return [(q, k) for q, k in pairs if q != "destination_name"]


async def test_no_personal_data_outside_the_services_that_need_it(
    secure_platform: RunningPlatform, secure_gateway: Gateway
) -> None:
    people = _people()
    malformed_nino = f"QQ{secrets.randbelow(10**6):06d}Z"  # refused: Q is never a first letter
    needles = _needles(people, [malformed_nino])

    jcp = await secure_gateway.create_partner("jcp")
    provider = await secure_gateway.create_partner("provider")
    office = await secure_gateway.create_partner("programme_office")
    programme = (await secure_gateway.define_programme({provider: ["Wigan"]}))["code"]
    # Accepted, attached, sessions, an assessment, a job and a claim for each person.
    for person in people:
        await build_tenant(jcp, provider, programme, "Wigan", person=person)
    async with jcp.client() as client:
        # The same person again: a duplicate (the referral names the first one).
        again = referral_body(programme, person=people[0])
        duplicate = await client.post("/v1/referrals", json=again)
        assert duplicate.status_code == 201, duplicate.text
        # Malformed: refused with the field named, and the value never logged.
        bad = referral_body(programme, person={**people[1], "nino": malformed_nino})
        refused = await client.post("/v1/referrals", json=bad)
        assert refused.status_code == 422, refused.text
        assert "person.nino" in {e["field"] for e in refused.json()["errors"]}

        async def duplicated() -> None:
            seen = (await client.get(f"/v1/referrals/{duplicate.json()['id']}")).json()
            assert seen["status"] == "duplicate", seen

        await eventually(duplicated, timeout=30)
    async with office.client() as client:
        # Reports read: reporting has projected the flow (what we then scan).
        async def reported() -> None:
            rows = (
                await client.get("/v1/reports/performance", params={"programme": programme})
            ).json()["rows"]
            assert rows[0]["attachments"] == 2, rows

        await eventually(reported, timeout=30)
        for path in ("/v1/reports/cohorts", "/v1/reports/barriers"):
            assert (await client.get(path, params={"programme": programme})).status_code == 200

    # The services that need the person do hold it (else the scan below proves nothing).
    holders = await _holders_rows(secure_platform.sandbox)
    assert len(_found(holders, needles)) >= 2 * len(people)

    leaks = _log_leaks(secure_platform.log_dir, needles)
    events_scanned = 0
    for table, event_type, row in await _database_rows(secure_platform.sandbox):
        if table.endswith(".outbox"):
            if event_type == PERSONAL_EVENT:
                continue
            events_scanned += 1
        if found := _found(row, needles):
            leaks.append(f"{table} {event_type} {found}: {row[:300]}")
    assert leaks == [], "\n".join(leaks)
    assert events_scanned > 0

    # The event that does carry them reaches one queue: casework's.
    bound = {q for q, key in _bindings(secure_platform.sandbox.vhost) if key == PERSONAL_EVENT}
    assert bound == {"pathways.casework"}


def _log_leaks(log_dir: Path, needles: list[str]) -> list[str]:
    """Every log line (each process writes unbuffered) that names one of the people."""
    leaks = []
    for log in sorted(log_dir.glob("*.log")):
        for number, line in enumerate(log.read_text(errors="replace").splitlines(), 1):
            if found := _found(line, needles):
                leaks.append(f"{log.name}:{number} {found}: {line[:300]}")
    return leaks


async def _holders_rows(sandbox: Sandbox) -> str:
    conn = await asyncpg.connect(sandbox.config.admin_dsn, database=sandbox.config.database)
    try:
        rows = await conn.fetch(
            "SELECT row_to_json(t)::text AS j FROM casework.referrals t"
            " UNION ALL SELECT row_to_json(r)::text FROM referrals.referrals r"
        )
    finally:
        await conn.close()
    return "\n".join(r["j"] for r in rows)
