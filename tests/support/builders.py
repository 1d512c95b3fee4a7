"""Readable test data: valid bodies from the contract, tweaked per test."""

from __future__ import annotations

import random
import secrets
import string
from datetime import date
from typing import Any

FIRST_LETTERS = [c for c in string.ascii_uppercase if c not in "DFIQUV"]
SECOND_LETTERS = [c for c in string.ascii_uppercase if c not in "DFIOQUV"]
BAD_PREFIXES = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}


def random_nino(rng: random.Random | None = None) -> str:
    rng = rng or random.Random(secrets.randbits(64))
    while True:
        prefix = rng.choice(FIRST_LETTERS) + rng.choice(SECOND_LETTERS)
        if prefix not in BAD_PREFIXES:
            break
    return f"{prefix}{rng.randrange(10**6):06d}{rng.choice('ABCD')}"


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def referral_body(programme: str, **overrides: Any) -> dict[str, Any]:
    """A referral that passes every rule of contract §2; override parts with
    ``person={...}``, ``circumstances={...}`` (merged) or any top-level key."""
    body: dict[str, Any] = {
        "external_ref": unique("JCP"),
        "programme": programme,
        "referred_on": "2024-02-03",
        "person": {
            "given_name": "Sam",
            "family_name": unique("Taylor"),
            "date_of_birth": "1981-05-17",
            "nino": random_nino(),
            "postcode": "WN1 1AA",
            "local_authority": "Wigan",
            "gender": "female",
            "disability": True,
            "phone": "07700900123",
        },
        "circumstances": {
            "benefit": "ESA",
            "months_out_of_work": 30,
            "criminal_justice": "licence",
            "treatment": "in_treatment",
        },
        "consent": {"given": True, "recorded_on": "2024-02-03"},
        "notes": "free text",
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(body.get(key), dict):
            body[key] = {**body[key], **value}
        else:
            body[key] = value
    return body


def programme_body(code: str, providers: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    """The contract's example programme (§1) under a fresh code."""
    body: dict[str, Any] = {
        "code": code,
        "name": "Working Well Expansion",
        "eligible_benefits": ["ESA", "JSA", "UC"],
        "min_age": 18,
        "max_age": 66,
        "support_weeks": 104,
        "min_job_hours": 16,
        "sustainment_weeks": 50,
        "providers": providers,
        "tariff": {
            "attachment": 30000,
            "job_start": 120000,
            "sustained_13": 40000,
            "sustained_26": 40000,
            "sustained_50": 60000,
            "qualification": 15000,
            "volunteering_start": 5000,
            "education_start": 5000,
        },
        "targets": {"job_start_rate": 0.20, "sustainment_rate": 0.75},
    }
    body.update(overrides)
    return body


def employment_body(**overrides: Any) -> dict[str, Any]:
    """A job of 20 hours a week (over the contract's 16-hour minimum) starting 1 May 2024."""
    body: dict[str, Any] = {
        "employer": "Acme",
        "started_on": "2024-05-01",
        "hours_per_week": 20,
        "weekly_earnings_pence": 24000,
        "self_employed": False,
    }
    body.update(overrides)
    return body


def job_start_claim_body(participant_id: str, employment_id: str, **overrides: Any) -> dict:
    """A job start claim for :func:`employment_body`'s job, with a payslip as evidence."""
    body: dict[str, Any] = {
        "participant_id": participant_id,
        "type": "job_start",
        "achieved_on": "2024-05-01",
        "employment_id": employment_id,
        "evidence": [{"kind": "payslip", "reference": "PS-1", "dated": "2024-05-31"}],
    }
    body.update(overrides)
    return body


def today() -> date:
    return date.today()
