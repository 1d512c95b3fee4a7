"""NetworkPolicy semantics, enough to ask "who may reach this pod, and whom may it reach".

Kubernetes' rules: a pod selected by no policy of a direction is open in that
direction; once selected, only what some selecting policy's rules allow passes. A rule
without ``from``/``to`` allows every peer; without ``ports``, every port. A peer with both
``namespaceSelector`` and ``podSelector`` means pods matching both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """metav1.LabelSelector semantics; an empty selector selects everything."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


@dataclass(frozen=True)
class Rule:
    policy: str
    peers: tuple[dict[str, Any], ...]  # empty: any peer
    ports: tuple[tuple[str, int], ...]  # empty: any port

    @property
    def any_peer(self) -> bool:
        return not self.peers


def _policy_types(policy: dict[str, Any]) -> list[str]:
    spec = policy["spec"]
    if "policyTypes" in spec:
        return spec["policyTypes"]
    return ["Ingress", *(["Egress"] if "egress" in spec else [])]


def isolating(policies: list[dict[str, Any]], labels: dict[str, str], direction: str) -> list:
    """The policies that select a pod with ``labels`` for ``direction``."""
    return [
        p
        for p in policies
        if direction in _policy_types(p) and selects(p["spec"]["podSelector"], labels)
    ]


def rules(policies: list[dict[str, Any]], labels: dict[str, str], direction: str) -> list[Rule]:
    """Everything allowed to/from a pod in ``direction`` ("Ingress" or "Egress")."""
    field, peer_field = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    found: list[Rule] = []
    for policy in isolating(policies, labels, direction):
        for rule in policy["spec"].get(field) or []:
            ports = tuple(
                (port.get("protocol", "TCP"), int(port["port"])) for port in rule.get("ports") or []
            )
            found.append(Rule(policy["metadata"]["name"], tuple(rule.get(peer_field) or []), ports))
    return found


def peer_matches_pod(
    peer: dict[str, Any],
    labels: dict[str, str],
    *,
    namespace_labels: dict[str, str],
    same_namespace: bool,
) -> bool:
    if "ipBlock" in peer:
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], namespace_labels):
            return False
    elif not same_namespace:
        return False
    return "podSelector" not in peer or selects(peer["podSelector"], labels)
