"""Kubernetes ``LabelSelector`` matching, as the API server applies it to pods.

A NetworkPolicy protects the pods its ``podSelector`` selects; to tell whether a model
server is covered, Trellis evaluates that selector against the server's pod labels itself
rather than asking the cluster per server. Semantics follow ``metav1.LabelSelector``:
``matchLabels`` and ``matchExpressions`` are ANDed; an empty selector selects everything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["selects"]


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether ``selector`` selects an object with ``labels``.

    ``None`` selects nothing; ``{}`` selects everything. A malformed selector (an unknown
    operator, ``In`` without values) selects nothing: the API server would have refused it,
    and claiming a pod is protected by a policy that cannot apply would be worse.
    """
    if selector is None:
        return False
    match_labels = selector.get("matchLabels") or {}
    if not isinstance(match_labels, Mapping):
        return False
    for key, value in match_labels.items():
        if labels.get(key) != value:
            return False
    expressions = selector.get("matchExpressions") or []
    if not isinstance(expressions, Sequence) or isinstance(expressions, str):
        return False
    return all(_expression(e, labels) for e in expressions)


def _expression(expression: object, labels: Mapping[str, str]) -> bool:
    if not isinstance(expression, Mapping):
        return False
    key, operator = expression.get("key"), expression.get("operator")
    values = expression.get("values") or []
    if not isinstance(key, str) or not isinstance(values, Sequence) or isinstance(values, str):
        return False
    present = key in labels
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if not values:
        return False
    if operator == "In":
        return present and labels[key] in values
    if operator == "NotIn":
        return not present or labels[key] not in values
    return False
