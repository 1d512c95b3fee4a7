"""What a dead letter says about its failure: enough to fix it, no personal data."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from pathways.sandbox import Sandbox
from shared.db import create_engine
from shared.errors import describe_failure

NINO = "QQ123456C"


async def test_a_database_error_is_named_by_class_and_sqlstate_never_by_its_message(
    sandbox: Sandbox,
) -> None:
    engine = create_engine(sandbox.config.database_url("referrals"), schema="referrals")
    try:
        async with engine.connect() as conn:
            # A value of the wrong type: PostgreSQL's message quotes it.
            with pytest.raises(DBAPIError) as raised:
                await conn.execute(text("SELECT CAST(CAST(:n AS text) AS integer)"), {"n": NINO})
    finally:
        await engine.dispose()
    assert NINO in str(raised.value.orig)  # PostgreSQL quotes the clashing key...
    described = describe_failure(raised.value)
    assert NINO not in described  # ...the dead letter does not
    assert "sqlstate 22P02" in described
    assert described.endswith("InvalidTextRepresentationError")


def test_a_validation_error_names_the_field_and_rule_without_the_input() -> None:
    class Person(BaseModel):
        nino: str = Field(pattern=r"^[A-Z]{2}\d{6}[A-D]$")

    with pytest.raises(ValidationError) as raised:
        Person(nino="07700 900123 Jo Bloggs")
    described = describe_failure(raised.value)
    assert "Jo Bloggs" not in described and "07700" not in described
    assert described.startswith("ValidationError: nino: String should match pattern")


def test_any_other_failure_keeps_its_message() -> None:
    assert describe_failure(RuntimeError("bug: cannot apply yet")) == (
        "RuntimeError: bug: cannot apply yet"
    )
