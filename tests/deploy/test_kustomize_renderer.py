"""tests/deploy/kustomize.py renders as kustomize does.

The cross-check runs the real kustomize (``kubectl kustomize``) when kubectl is
installed and compares every object; on a machine without kubectl it is skipped and the
unit tests below still pin the renderer's behaviour.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.kustomize import KustomizeError, apply_json6902, identity, render, split_image

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"


@pytest.mark.parametrize("directory", ["base", "overlays/dev", "overlays/production"])
def test_rendering_matches_real_kustomize(directory: str) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed; the renderer is checked by the unit tests only")
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S / directory)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    real = {
        json.dumps(identity(obj)): obj
        for obj in yaml.safe_load_all(result.stdout)
        if obj is not None
    }
    ours = {json.dumps(identity(obj)): obj for obj in render(K8S / directory)}
    assert set(ours) == set(real)
    for key, obj in ours.items():
        assert obj == real[key], key


def test_json_patch_operations() -> None:
    doc = {"spec": {"a": 1, "list": [1, 2], "nested": {"x": "y"}}}
    apply_json6902(doc, {"op": "replace", "path": "/spec/a", "value": 2})
    apply_json6902(doc, {"op": "add", "path": "/spec/list/-", "value": 3})
    apply_json6902(doc, {"op": "add", "path": "/spec/list/0", "value": 0})
    apply_json6902(doc, {"op": "remove", "path": "/spec/nested/x"})
    apply_json6902(doc, {"op": "add", "path": "/spec/with~1slash", "value": True})
    apply_json6902(doc, {"op": "copy", "from": "/spec/a", "path": "/spec/b"})
    apply_json6902(doc, {"op": "move", "from": "/spec/b", "path": "/spec/c"})
    apply_json6902(doc, {"op": "test", "path": "/spec/c", "value": 2})
    assert doc == {"spec": {"a": 2, "list": [0, 1, 2, 3], "nested": {}, "with/slash": True, "c": 2}}


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "replace", "path": "/spec/missing", "value": 1},
        {"op": "remove", "path": "/nope"},
        {"op": "test", "path": "/spec/a", "value": 99},
        {"op": "frobnicate", "path": "/spec/a"},
    ],
)
def test_json_patch_refuses_what_kustomize_refuses(operation: dict) -> None:
    with pytest.raises(KustomizeError):
        apply_json6902({"spec": {"a": 1}}, operation)


def test_unsupported_kustomize_features_are_refused_not_ignored(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\nconfigMapGenerator: []\n")
    with pytest.raises(KustomizeError, match="configMapGenerator"):
        render(tmp_path)


def test_a_patch_that_matches_nothing_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [cm.yaml]\npatches:\n  - target: {kind: Secret}\n"
        "    patch: '[{op: add, path: /data, value: {}}]'\n"
    )
    with pytest.raises(KustomizeError, match="matches nothing"):
        render(tmp_path)


@pytest.mark.parametrize(
    ("reference", "parts"),
    [
        ("pathways", ("pathways", None, None)),
        ("pathways:dev", ("pathways", "dev", None)),
        ("registry:5000/team/pathways:1.2", ("registry:5000/team/pathways", "1.2", None)),
        ("ghcr.io/x/pg:17.9@sha256:ab", ("ghcr.io/x/pg", "17.9", "sha256:ab")),
    ],
)
def test_image_references_split_like_docker(reference: str, parts: tuple) -> None:
    assert split_image(reference) == parts
