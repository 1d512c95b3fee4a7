"""A renderer for the subset of kustomize that deploy/k8s uses.

Why not the real thing: ``make test`` must run on a fresh machine, offline, and neither
a kustomize binary nor kubectl comes with the Python environment (no PyPI package ships
a current kustomize). So the checks render with this module, and
``test_kustomize_renderer.py`` compares its output with ``kubectl kustomize`` wherever
kubectl is installed (it is on the development machine: kubectl 1.32 / kustomize 5.5),
which keeps this module honest.

Supported, with kustomize's semantics: ``resources`` (files and directories holding a
kustomization), ``namespace``, ``labels`` (``pairs`` with ``includeSelectors: false``
and no ``includeTemplates``: metadata labels only), ``images`` (``newName``, ``newTag``,
``digest`` on containers and init containers of pod templates) and ``patches`` (JSON
6902 operation lists, inline or from ``path``, with a ``target`` of kind / name /
group / version / namespace / labelSelector). Anything else in a kustomization is
refused loudly rather than ignored.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_KEYS = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "patches"}
# Kinds without a namespace among those the manifests use.
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}

Resource = dict[str, Any]


class KustomizeError(Exception):
    pass


def render(directory: Path) -> list[Resource]:
    """Build the kustomization in ``directory``, like ``kustomize build``."""
    directory = Path(directory)
    kustomization = _load_kustomization(directory)
    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        if path.is_dir():
            resources.extend(render(path))
        elif path.is_file():
            resources.extend(_load_documents(path))
        else:
            raise KustomizeError(f"{directory}: resource {entry!r} not found")
    _check_unique(resources, directory)
    for patch in kustomization.get("patches", []):
        _apply_patch(resources, patch, directory)
    if "namespace" in kustomization:
        for resource in resources:
            _set_namespace(resource, kustomization["namespace"])
    for labels in kustomization.get("labels", []):
        _add_labels(resources, labels, directory)
    for image in kustomization.get("images", []):
        for resource in resources:
            _set_image(resource, image)
    return resources


def _load_kustomization(directory: Path) -> dict[str, Any]:
    for name in KUSTOMIZATION_FILES:
        path = directory / name
        if path.is_file():
            data = yaml.safe_load(path.read_text()) or {}
            unknown = set(data) - SUPPORTED_KEYS
            if unknown:
                raise KustomizeError(
                    f"{path}: {sorted(unknown)} not supported by tests/deploy/kustomize.py "
                    "(extend it, and its cross-check against kubectl, before using them)"
                )
            return data
    raise KustomizeError(f"{directory}: no kustomization file")


def _load_documents(path: Path) -> list[Resource]:
    documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    for doc in documents:
        if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
            raise KustomizeError(f"{path}: a document without kind/apiVersion")
    return documents


def _check_unique(resources: list[Resource], directory: Path) -> None:
    seen: set[tuple[str, str, str, str | None]] = set()
    for resource in resources:
        key = identity(resource)
        if key in seen:
            raise KustomizeError(f"{directory}: {key} defined twice")
        seen.add(key)


def identity(resource: Resource) -> tuple[str, str, str, str | None]:
    metadata = resource.get("metadata", {})
    return (
        resource["apiVersion"],
        resource["kind"],
        metadata.get("name", ""),
        metadata.get("namespace"),
    )


# --- patches ---------------------------------------------------------------------------


def _apply_patch(resources: list[Resource], patch: dict[str, Any], directory: Path) -> None:
    if "path" in patch:
        operations = yaml.safe_load((directory / patch["path"]).read_text())
    else:
        operations = yaml.safe_load(patch["patch"])
    if not isinstance(operations, list):
        raise KustomizeError(
            f"{directory}: only JSON 6902 patches (a list of operations) are supported"
        )
    target = patch.get("target")
    if not target:
        raise KustomizeError(f"{directory}: a JSON 6902 patch needs a target")
    matched = [r for r in resources if _matches(r, target)]
    if not matched:
        raise KustomizeError(f"{directory}: patch target {target} matches nothing")
    for resource in matched:
        for operation in operations:
            apply_json6902(resource, operation)


def _matches(resource: Resource, target: dict[str, Any]) -> bool:
    group, _, version = resource["apiVersion"].rpartition("/")
    metadata = resource.get("metadata", {})
    checks = {
        "kind": resource["kind"],
        "name": metadata.get("name", ""),
        "namespace": metadata.get("namespace") or "",
        "group": group,
        "version": version,
    }
    for key, value in target.items():
        if key == "labelSelector":
            labels = metadata.get("labels", {})
            for term in str(value).split(","):
                name, _, wanted = term.partition("=")
                if labels.get(name.strip()) != wanted.strip():
                    return False
        elif key in checks:
            # kustomize matches target fields as anchored regular expressions.
            if not re.fullmatch(str(value), str(checks[key])):
                return False
        else:
            raise KustomizeError(f"unsupported patch target field {key!r}")
    return True


def apply_json6902(document: Any, operation: dict[str, Any]) -> None:
    """Apply one RFC 6902 operation in place (add, remove, replace, copy, move, test)."""
    op = operation["op"]
    tokens = _pointer(operation["path"])
    if op == "test":
        if _get(document, tokens) != operation["value"]:
            raise KustomizeError(f"test failed at {operation['path']}")
        return
    if op in {"copy", "move"}:
        source = _pointer(operation["from"])
        value = copy.deepcopy(_get(document, source))
        if op == "move":
            _remove(document, source)
        _add(document, tokens, value)
        return
    if op == "add":
        _add(document, tokens, copy.deepcopy(operation["value"]))
    elif op == "remove":
        _remove(document, tokens)
    elif op == "replace":
        _get(document, tokens)  # must exist
        parent, key = _parent(document, tokens)
        parent[key] = copy.deepcopy(operation["value"])
    else:
        raise KustomizeError(f"unknown JSON patch op {op!r}")


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise KustomizeError(f"bad JSON pointer {path!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def _get(document: Any, tokens: list[str]) -> Any:
    node = document
    for token in tokens:
        if isinstance(node, list):
            node = node[int(token)]
        elif isinstance(node, dict) and token in node:
            node = node[token]
        else:
            raise KustomizeError(f"path /{'/'.join(tokens)} does not exist")
    return node


def _parent(document: Any, tokens: list[str]) -> tuple[Any, Any]:
    if not tokens:
        raise KustomizeError("cannot patch the document root")
    parent = _get(document, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, list):
        return parent, (len(parent) if last == "-" else int(last))
    return parent, last


def _add(document: Any, tokens: list[str], value: Any) -> None:
    parent, key = _parent(document, tokens)
    if isinstance(parent, list):
        parent.insert(key, value)
    else:
        parent[key] = value


def _remove(document: Any, tokens: list[str]) -> None:
    _get(document, tokens)
    parent, key = _parent(document, tokens)
    del parent[key]


# --- transformers ------------------------------------------------------------------------


def _set_namespace(resource: Resource, namespace: str) -> None:
    if resource["kind"] in CLUSTER_SCOPED:
        return
    resource.setdefault("metadata", {})["namespace"] = namespace


def _add_labels(resources: list[Resource], spec: dict[str, Any], directory: Path) -> None:
    unknown = set(spec) - {"pairs", "includeSelectors"}
    if unknown or spec.get("includeSelectors", False):
        raise KustomizeError(
            f"{directory}: labels support only `pairs` with includeSelectors: false"
        )
    for resource in resources:
        labels = resource.setdefault("metadata", {}).setdefault("labels", {})
        labels.update({k: str(v) for k, v in spec["pairs"].items()})


def pod_specs(resource: Resource) -> Iterator[dict[str, Any]]:
    """The pod specs inside a workload (Pod, Deployment, Job, CronJob, ...)."""
    spec = resource.get("spec") or {}
    if resource["kind"] == "Pod":
        yield spec
    elif resource["kind"] == "CronJob":
        yield spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec", {})
    elif isinstance(spec.get("template"), dict) and "spec" in spec["template"]:
        yield spec["template"]["spec"]


def _set_image(resource: Resource, image: dict[str, Any]) -> None:
    for pod in pod_specs(resource):
        for container in [*pod.get("containers", []), *pod.get("initContainers", [])]:
            name, tag, digest = split_image(container.get("image", ""))
            if name != image["name"]:
                continue
            name = image.get("newName", name)
            if "digest" in image:
                container["image"] = f"{name}@{image['digest']}"
            elif "newTag" in image:
                container["image"] = f"{name}:{image['newTag']}"
            else:
                suffix = f"@{digest}" if digest else (f":{tag}" if tag else "")
                container["image"] = f"{name}{suffix}"


def split_image(reference: str) -> tuple[str, str | None, str | None]:
    """``registry/name:tag@sha256:...`` -> (registry/name, tag, digest)."""
    name, _, digest = reference.partition("@")
    tag = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    return name, tag, digest or None
