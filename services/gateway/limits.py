"""Per-partner rate limits: one token bucket per partner, in this gateway process.

With N gateway replicas behind a load balancer each keeps its own buckets, so a
partner's effective limit is up to N times the configured one. That is deliberate: a
shared store (PostgreSQL or Redis) would put a network round trip on every call, and
the limits exist to protect the services from runaway clients, not to meter billing.
Configure per-replica limits accordingly (see docs/gateway.md).
"""

from __future__ import annotations

import time
import uuid

from services.gateway.domain import TokenBucket
from services.gateway.settings import RateLimit
from shared.caller import PartnerKind


class RateLimiter:
    def __init__(self, limits: dict[str, RateLimit]) -> None:
        self.limits = limits
        self._buckets: dict[uuid.UUID, TokenBucket] = {}

    def take(self, partner_id: uuid.UUID, kind: PartnerKind, cost: int) -> float:
        """Spend ``cost`` from the partner's bucket: 0 if allowed, else seconds to wait."""
        now = time.monotonic()
        bucket = self._buckets.get(partner_id)
        if bucket is None:
            limit = self.limits[kind.value]
            bucket = TokenBucket.full(limit.per_second, limit.burst, now)
            self._buckets[partner_id] = bucket
        return bucket.take(cost, now)
