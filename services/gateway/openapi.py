"""The gateway's ``/openapi.json``: every partner endpoint, with its models.

Built by merging the OpenAPI documents of the services behind the gateway (each
service app is constructed, never started, and asked for its document), keeping only
the paths the gateway routes to that service, plus the gateway's own routes. Schema
names two services both use for different things are prefixed with the service's name.
Every operation gets the security scheme it needs, the partner kinds that may call it,
and the error responses the gateway itself can give.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from services.gateway import domain
from shared.logging import get_logger

log = get_logger(__name__)

SERVICES = ("referrals", "casework", "outcomes", "reporting")
_REF = "#/components/schemas/"

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details (contract §7).",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "For 422: one entry per invalid field.",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}

_GATEWAY_ERRORS = {
    "401": "Missing, unknown, revoked or expired API key.",
    "403": "The partner's kind may never take this action.",
    "429": "Rate limit exceeded; see the Retry-After header.",
    "502": "The owning service failed to answer.",
    "503": "The owning service is unavailable; retry shortly.",
    "504": "The owning service did not answer in time.",
}


def service_app(service: str) -> FastAPI:
    """A service's app, built (not started) only to read its OpenAPI document."""
    module = importlib.import_module(f"services.{service}.app")
    try:
        return module.create_app()
    except Exception:
        # Settings that insist on production secrets need not hold for documentation.
        settings_module = importlib.import_module(f"services.{service}.settings")
        settings_cls = getattr(settings_module, f"{service.capitalize()}Settings")
        return module.create_app(settings_cls.model_construct())


def _rewrite_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(_REF):
                name = value[len(_REF) :]
                out[key] = _REF + renames.get(name, name)
            else:
                out[key] = _rewrite_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(item, renames) for item in node]
    return node


def _shape(template: str) -> tuple[str, ...]:
    return tuple("{}" if part.startswith("{") else part for part in template.split("/"))


_KINDS_BY_SHAPE = {(r.method, _shape(r.template)): r.kinds for r in domain.ROUTES}


def merge_openapi(
    gateway_doc: dict[str, Any],
    service_docs: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    doc = copy.deepcopy(gateway_doc)
    paths: dict[str, Any] = doc.setdefault("paths", {})
    schemas: dict[str, Any] = doc.setdefault("components", {}).setdefault("schemas", {})
    for service, spec in service_docs.items():
        their_schemas = spec.get("components", {}).get("schemas", {})
        renames = {
            name: f"{service.capitalize()}{name}"
            for name, schema in their_schemas.items()
            if name in schemas and schemas[name] != schema
        }
        for name, schema in their_schemas.items():
            schemas[renames.get(name, name)] = _rewrite_refs(schema, renames)
        for path, item in spec.get("paths", {}).items():
            match = domain.match_partner_route("GET", path.replace("{", "x").replace("}", ""))
            if match is None or match.service != service:
                continue  # only what the gateway routes to this service is public
            paths[path] = _rewrite_refs(item, renames)
    schemas["Problem"] = PROBLEM_SCHEMA
    _decorate(doc)
    return doc


def _decorate(doc: dict[str, Any]) -> None:
    components = doc.setdefault("components", {})
    components["securitySchemes"] = {
        "partnerKey": {
            "type": "http",
            "scheme": "bearer",
            "description": "The partner's API key: Authorization: Bearer pk_...",
        },
        "adminToken": {
            "type": "http",
            "scheme": "bearer",
            "description": "The programme's admin token (PATHWAYS_ADMIN_TOKEN).",
        },
    }
    problem = {"application/problem+json": {"schema": {"$ref": _REF + "Problem"}}}
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or method == "parameters":
                continue
            responses = operation.setdefault("responses", {})
            if path.startswith("/admin"):
                operation["security"] = [{"adminToken": []}]
                responses.setdefault("401", {"description": "Missing or wrong admin token."})
                continue
            if not path.startswith("/v1/"):
                continue
            operation["security"] = [{"partnerKey": []}]
            kinds = _KINDS_BY_SHAPE.get((method.upper(), _shape(path)))
            if kinds is not None:
                allowed = ", ".join(sorted(k.value for k in kinds))
                note = f"Partner kinds allowed: {allowed}."
                description = operation.get("description", "")
                if note not in description:
                    operation["description"] = f"{description}\n\n{note}".strip()
            for status, text in _GATEWAY_ERRORS.items():
                if status == "403" and kinds is not None and kinds == domain.ANY_PARTNER:
                    continue
                responses.setdefault(status, {"description": text, "content": problem})
            if "requestBody" in operation:
                responses.setdefault(
                    "413", {"description": "The request body is too large.", "content": problem}
                )
            for status, response in responses.items():
                # Declared errors are problem bodies whatever a service's model said.
                if status.startswith(("4", "5")) and "content" in response:
                    content = response["content"]
                    if "application/json" in content and "application/problem+json" not in content:
                        content["application/problem+json"] = content.pop("application/json")
                    # FastAPI's default 422 model (HTTPValidationError) is never what is
                    # sent: every service answers validation errors with a problem body.
                    body = content.get("application/problem+json", {})
                    if body.get("schema") == {"$ref": _REF + "HTTPValidationError"}:
                        body["schema"] = {"$ref": _REF + "Problem"}


def openapi_builder(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """A replacement for ``app.openapi`` that serves the merged document."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        gateway_doc = get_openapi(
            title="Pathways partner API",
            version="1.0.0",
            description=(
                "Everything partners call, served by the gateway: it authenticates the "
                "API key, checks the partner's kind, rate-limits, audits and forwards to "
                "the owning service. Errors are application/problem+json (§7)."
            ),
            routes=app.routes,
        )
        service_docs: dict[str, dict[str, Any]] = {}
        complete = True
        for service in SERVICES:
            try:
                service_docs[service] = service_app(service).openapi()
            except Exception as exc:
                complete = False
                log.error(
                    "could not read a service's OpenAPI document",
                    service=service,
                    error=type(exc).__name__,
                )
        merged = merge_openapi(gateway_doc, service_docs)
        if complete:
            app.openapi_schema = merged  # cached; rebuilt next time if a service failed
        return merged

    return build
