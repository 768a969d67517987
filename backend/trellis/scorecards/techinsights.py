"""Tech Insights' JSON shapes, so its frontend shows Trellis's checks unchanged.

The shapes are those of ``@backstage-community/plugin-tech-insights-common``:
``CheckResult {facts, check, result}``, ``FactResponse`` keyed by fact name, and the
flattened fact rows of ``/facts/latest`` and ``/facts/range``. The frontend renders only
``json-rules-engine`` checks with a boolean result, so an unknown outcome has no shape here:
callers leave it out.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from trellis.entity_refs import parse_ref
from trellis.scorecards.definitions import Check
from trellis.scorecards.facts import RETRIEVERS, FactField
from trellis.scorecards.scoring import CheckOutcome, Outcome

__all__ = ["check_json", "check_result", "fact_row"]

_SCHEMAS: Mapping[str, FactField] = {
    name: fact for retriever in RETRIEVERS for name, fact in retriever.schema.items()
}
# Tech Insights' FactResponse has no `object` type; an object fact is sent as it is typed
# in the retriever's schema everywhere else, and the frontend shows it as JSON.
_RESPONSE_TYPES = {"integer", "float", "string", "boolean", "datetime", "set"}


def check_json(check: Check, outcome: Outcome | None = None) -> dict[str, object]:
    """A check as ``GET /checks`` (and each result's ``check``) gives it.

    ``metadata`` carries the check's own metadata plus its level and scorecard, and, for a
    result, the check's ``successMetadata`` or ``failureMetadata``.
    """
    metadata: dict[str, Any] = {
        **(check.metadata or {}),
        "level": check.level.value,
        "scorecard": check.scorecard,
    }
    if outcome is Outcome.PASSED and check.success_metadata:
        metadata.update(check.success_metadata)
    if outcome is Outcome.FAILED and check.failure_metadata:
        metadata.update(check.failure_metadata)
    body: dict[str, object] = {
        "id": check.id,
        "type": check.type,
        "name": check.name,
        "description": check.description,
        "factIds": list(check.fact_ids),
        "rule": {"conditions": check.definition["rule"]["conditions"]},
        "metadata": metadata,
    }
    if check.links:
        body["links"] = [{"title": link.title, "url": link.url} for link in check.links]
    return body


def check_result(check: Check, outcome: CheckOutcome) -> dict[str, object] | None:
    """A ``CheckResult``, or None for an unknown outcome (Tech Insights has no such state)."""
    if outcome.outcome is Outcome.UNKNOWN:
        return None
    # A fact that was not read (null) is left out: its check was decided without it.
    facts = {
        name: {
            "id": name,
            "type": _type(name, value),
            "description": _SCHEMAS[name].description if name in _SCHEMAS else "",
            "value": value,
        }
        for name, value in outcome.facts.items()
        if value is not None
    }
    return {
        "facts": facts,
        "check": check_json(check, outcome.outcome),
        "result": outcome.outcome is Outcome.PASSED,
    }


def _type(name: str, value: object) -> str:
    declared = _SCHEMAS[name].type if name in _SCHEMAS else None
    if declared in _RESPONSE_TYPES:
        return str(declared)
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, list):
        return "set"
    return declared or "string"


def fact_row(
    retriever: str,
    entity: str,
    version: str,
    timestamp: datetime,
    facts: Mapping[str, object],
) -> dict[str, object]:
    """A flattened fact row (``FlatTechInsightFact``) of ``/facts/latest`` and ``/range``."""
    kind, namespace, name = parse_ref(entity)
    return {
        "id": retriever,
        "entity": {"namespace": namespace, "kind": kind, "name": name},
        "timestamp": timestamp.isoformat().replace("+00:00", "Z"),
        "version": version,
        "facts": dict(facts),
    }
