"""Offline schema validation of rendered manifests.

Kubernetes' own kinds: ``kubernetes-validate`` (the API's OpenAPI schemas for a pinned
version, strict: unknown fields fail, as ``kubectl apply``'s server-side field
validation does). Operator resources: the CRD schema subsets vendored in
``deploy/k8s/crds`` (see its README), turned into JSON Schema here.
"""

from __future__ import annotations

import copy
import functools
import importlib.resources
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from referencing import Registry, Resource

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO / "deploy" / "k8s" / "crds"
# The oldest Kubernetes minor the manifests promise to work on (docs/deploy.md).
KUBERNETES_VERSION = "1.30.0"
DEFINITIONS_ID = "https://kubernetes.io/api/_definitions.json"


class SchemaError(AssertionError):
    pass


def validate(resource: dict[str, Any]) -> None:
    """Raise :class:`SchemaError` naming the object and the field if it is invalid."""
    group = resource["apiVersion"].rpartition("/")[0]
    if "." in group and not group.endswith(".k8s.io"):
        _validate_custom(resource)
        return
    try:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        raise SchemaError(_describe(resource, exc)) from None
    except kubernetes_validate.SchemaNotFoundError as exc:
        raise SchemaError(f"{_name(resource)}: {exc.message}") from None


def _validate_custom(resource: dict[str, Any]) -> None:
    key = (resource["apiVersion"], resource["kind"])
    validator = custom_validators().get(key)
    if validator is None:
        raise SchemaError(f"{_name(resource)}: no vendored schema for {key} in deploy/k8s/crds")
    errors = sorted(validator.iter_errors(resource), key=lambda e: list(e.absolute_path))
    if errors:
        raise SchemaError("; ".join(_describe(resource, e) for e in errors[:5]))


@functools.cache
def custom_validators() -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    validators: dict[tuple[str, str], jsonschema.protocols.Validator] = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        schema = crd_schema_to_json_schema(crd["openAPIV3Schema"])
        schema["properties"]["apiVersion"] = {"const": f"{crd['group']}/{crd['version']}"}
        schema["properties"]["kind"] = {"const": crd["kind"]}
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        validator_cls = jsonschema.validators.Draft202012Validator
        validator_cls.check_schema(schema)
        validators[(f"{crd['group']}/{crd['version']}", crd["kind"])] = validator_cls(
            schema, registry=_kubernetes_registry()
        )
    return validators


def crd_schema_to_json_schema(schema: Any) -> Any:
    """An OpenAPI v3 structural schema (as CRDs carry) as closed JSON Schema.

    * objects with ``properties`` reject unknown fields (strict field validation),
    * ``x-kubernetes-ref: <definition>`` points at the Kubernetes API definition,
    * ``nullable: true`` also admits null; other ``x-kubernetes-*`` markers and
      ``default`` are annotations only.
    """
    schema = copy.deepcopy(schema)  # YAML aliases share objects: never edit in place

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.pop("x-kubernetes-ref", None)
        if ref is not None:
            return {"$ref": f"{DEFINITIONS_ID}#/$defs/{ref}"}
        out = {key: walk(value) for key, value in node.items() if not key.startswith("x-")}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        if out.pop("nullable", False) and "type" in out:
            out["type"] = [out["type"], "null"]
        return out

    return walk(schema)


@functools.cache
def _kubernetes_registry() -> Registry:
    version = kubernetes_validate.utils.major_minor(KUBERNETES_VERSION)
    folder = (
        importlib.resources.files("kubernetes_validate")
        / "kubernetes-json-schema"
        / f"v{version}.0-local-strict"
    )
    definitions = json.loads((folder / "_definitions.json").read_text())
    return Registry().with_resource(DEFINITIONS_ID, Resource.from_contents(definitions))


def _name(resource: dict[str, Any]) -> str:
    return f"{resource['kind']}/{resource.get('metadata', {}).get('name', '?')}"


def _describe(resource: dict[str, Any], error: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in error.absolute_path) or "(root)"
    return f"{_name(resource)}: {where}: {error.message[:300]}"
