"""Structured JSON logs through structlog and the standard library.

Request ids and event ids are bound with :func:`bind_context` (contextvars), so every
line logged while handling a request or an event carries them. Log *what happened to
which identifier*, never bodies: referrals carry health and offending data.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import structlog

_SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.StackInfoRenderer(),
]


def _redacted_exc_info(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """Render a logged exception as its type and stack only.

    Exception messages routinely quote data (a unique-violation names the NINO it
    clashed on), so the message itself never reaches the log.
    """
    exc_info = event.pop("exc_info", None)
    if not exc_info:
        return event
    if exc_info is True:
        exc_info = sys.exc_info()
    elif isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    exc_type, _exc, tb = exc_info
    if exc_type is None:
        return event
    frames = traceback.extract_tb(tb)
    event["exception"] = {
        "type": f"{exc_type.__module__}.{exc_type.__qualname__}",
        "stack": [f"{f.filename}:{f.lineno} in {f.name}" for f in frames[-12:]],
    }
    return event


def _orjson_text(event: dict[str, Any], **_: Any) -> str:
    # Two log lines per request on the hot path: orjson is several times the stdlib's speed.
    return orjson.dumps(event, default=str).decode()


_configured_for: str | None = None


def configure_logging(*, service: str, level: str = "INFO", fmt: str = "json") -> None:
    """Route structlog and stdlib logging to one JSON (or console) stream on stderr.

    The first call in a process wins: building another service's app in the same
    process (the gateway does, to document the services' endpoints) must not relabel
    this process's logs.
    """
    global _configured_for
    if _configured_for is not None:
        return
    _configured_for = service

    def add_service(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
        event.setdefault("service", service)
        return event

    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_orjson_text)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            *_SHARED_PROCESSORS,
            add_service,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_SHARED_PROCESSORS, add_service],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _redacted_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn configured its own plain-text loggers before loading the app: send them
    # through the JSON handler instead. Its access log prints raw paths and query
    # strings, so it stays off; our middleware logs requests by route template.
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers[:] = []
        uvicorn_logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    for noisy in ("aiormq", "aio_pika", "sqlalchemy.engine", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)


@contextmanager
def bind_context(**values: Any) -> Iterator[None]:
    """Bind values (request_id, event_id, ...) to every log line inside the block."""
    tokens = structlog.contextvars.bind_contextvars(**values)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
