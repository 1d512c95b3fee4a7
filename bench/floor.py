"""The floor: the most one Python process with one database write can do here.

A bare FastAPI endpoint that validates the very same referral body the referrals
service validates (its own request model) and does one asyncpg INSERT. Started by the
benchmark as its own uvicorn process, under the same load generator as the platform.

    uvicorn bench.floor:app --port 9000   (FLOOR_DSN=postgresql://... in the environment)
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from services.referrals.api.models import ReferralIn

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS floor;
CREATE TABLE IF NOT EXISTS floor.referrals (
    id uuid PRIMARY KEY,
    external_ref text NOT NULL,
    programme text NOT NULL,
    body jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
"""
INSERT_SQL = (
    "INSERT INTO floor.referrals (id, external_ref, programme, body) VALUES ($1, $2, $3, $4)"
)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    pool = await asyncpg.create_pool(os.environ["FLOOR_DSN"], min_size=10, max_size=10)
    async with pool.acquire() as conn:
        await conn.execute(SCHEMA_SQL)
    app.state.pool = pool
    yield
    await pool.close()


app = FastAPI(lifespan=lifespan, openapi_url=None)


@app.post("/v1/referrals", status_code=201)
async def create(referral: ReferralIn, request: Request) -> Response:
    referral_id = uuid.uuid4()
    body = referral.model_dump_json()
    await request.app.state.pool.execute(
        INSERT_SQL, referral_id, referral.external_ref, referral.programme, body
    )
    return created(referral_id, "received")


def created(referral_id: uuid.UUID, status: str) -> Response:
    """The ``201`` both floors answer with."""
    return Response(
        orjson.dumps({"id": str(referral_id), "status": status}),
        status_code=201,
        media_type="application/json",
    )


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
