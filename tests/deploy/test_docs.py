"""docs/deploy.md stays true: what it names exists, and it covers what an operator needs."""

from __future__ import annotations

import re
from pathlib import Path

from pathways.bootstrap import SERVICES
from tests.deploy import envcheck

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "deploy.md").read_text()


def test_the_guide_covers_both_deployments_and_their_operation() -> None:
    headings = {
        line.lstrip("#").strip().lower() for line in DOC.splitlines() if line.startswith("#")
    }
    for wanted in (
        "single machine (docker compose)",
        "cluster (kubernetes)",
        "secrets",
        "scaling",
        "backups and point-in-time recovery",
        "upgrades",
        "sizing",
    ):
        assert wanted in headings, wanted


def test_every_file_the_guide_names_exists() -> None:
    named = set(
        re.findall(r"(?<![\w./-])((?:deploy|tests|docs|services|shared|pathways)/[\w./-]*\w)", DOC)
    )
    named |= {n for n in ("Dockerfile", "docker-compose.yml", ".dockerignore") if n in DOC}
    missing = sorted(n for n in named if not (REPO / n).exists())
    assert not missing, missing


def test_every_setting_the_guide_names_is_read_by_something() -> None:
    known = envcheck.migrate_env_names()
    for service in SERVICES:
        known |= envcheck.env_names(service)
    example = (REPO / "deploy" / "compose" / "env.example").read_text()
    known |= {line.split("=", 1)[0] for line in example.splitlines() if "=" in line}
    prefixes = "|".join(["PATHWAYS", *(s.upper() for s in SERVICES)])
    named = set(re.findall(rf"\b((?:{prefixes})_[A-Z][A-Z_]*[A-Z])\b", DOC))
    assert not named - known, sorted(named - known)
