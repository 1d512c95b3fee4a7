"""Event envelope and every versioned payload schema the services exchange.

Importing this package registers every payload, so :func:`parse_payload` knows them.
"""

from shared.events import casework, gateway, outcomes, referrals
from shared.events.envelope import (
    REGISTRY,
    Envelope,
    EventPayload,
    UnknownEvent,
    new_envelope,
    parse_payload,
    register,
)

__all__ = [
    "REGISTRY",
    "Envelope",
    "EventPayload",
    "UnknownEvent",
    "casework",
    "gateway",
    "new_envelope",
    "outcomes",
    "parse_payload",
    "referrals",
    "register",
]
