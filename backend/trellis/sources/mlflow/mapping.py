"""Registry JSON (the REST API's shape) to the domain: models, versions, runs' facts.

Both adapters hand this module the same shape (the SQL adapter converts MLflow's entities to
it), so one mapper serves both. Pure: no I/O, nothing kept.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from trellis.model import MetricPoint, ModelVersion, RegisteredModel, Snapshot

__all__ = [
    "MISSING",
    "SOURCE",
    "Json",
    "RunFacts",
    "log_read",
    "points",
    "run_facts",
    "to_domain",
    "version_filter",
]

# The package's name: what an operator reads the registry's log lines under.
log = logging.getLogger(__package__)

SOURCE = "mlflow"
#: MLflow's error code for a run, model or file that does not exist.
MISSING = "RESOURCE_DOES_NOT_EXIST"
#: Run states after which a run's metrics and inputs no longer change.
_FINISHED = frozenset({"FINISHED", "FAILED", "KILLED"})

Json = dict[str, Any]


def to_domain(models: list[Json], versions: list[Json], *, registry: str) -> Snapshot:
    """Map registry JSON (REST shape) to a ``Snapshot``; versions of unknown models are dropped.

    A model created between the two paged reads has versions but no model entry yet; it
    appears whole on the next read instead of half now.
    """
    by_model: dict[str, list[ModelVersion]] = defaultdict(list)
    for raw in versions:
        version = _version(raw)
        by_model[version.model_name].append(version)
    result = []
    for raw in models:
        name = str(raw["name"])
        own = sorted(by_model.get(name, ()), key=lambda v: v.version)
        result.append(
            RegisteredModel(
                name=name,
                description=str(raw.get("description") or ""),
                tags=_tags(raw),
                aliases={str(a["alias"]): int(a["version"]) for a in raw.get("aliases") or ()},
                created_at=_time(raw.get("creation_timestamp")),
                updated_at=_time(raw.get("last_updated_timestamp")),
                versions=tuple(own),
            )
        )
    result.sort(key=lambda m: m.name)
    return Snapshot(models=tuple(result), taken_at=datetime.now(UTC), registry=registry)


def version_filter(name: str) -> str | None:
    """``model-versions/search``'s filter for one model's versions, or None if none can say it.

    MLflow's filter parser strips the quotes around a value and unescapes nothing, so a name
    holding a quote or a backslash (or a control character) cannot be written in a filter:
    such a model is read by a full read instead.
    """
    if any(c in "'\\\"" or not c.isprintable() for c in name):
        return None
    return f"name='{name}'"


def _version(raw: Json) -> ModelVersion:
    return ModelVersion(
        model_name=str(raw["name"]),
        version=int(raw["version"]),
        status=str(raw.get("status") or "READY"),
        source=str(raw.get("source") or ""),
        run_id=str(raw["run_id"]) if raw.get("run_id") else None,
        description=str(raw.get("description") or ""),
        tags=_tags(raw),
        created_at=_time(raw.get("creation_timestamp")),
        updated_at=_time(raw.get("last_updated_timestamp")),
    )


def points(raw: Iterable[Json]) -> list[MetricPoint]:
    """Logged metric values, by step then time."""
    result = [
        MetricPoint(
            step=int(item.get("step") or 0),
            timestamp=_time(item.get("timestamp")),
            value=float(item["value"]),
        )
        for item in raw
    ]
    result.sort(key=lambda p: (p.step, p.timestamp))
    return result


def _tags(raw: Json) -> dict[str, str]:
    return {str(t["key"]): str(t.get("value") or "") for t in raw.get("tags") or ()}


def _time(millis: object) -> datetime:
    return datetime.fromtimestamp(int(str(millis or 0)) / 1000, tz=UTC)


@dataclass(frozen=True, slots=True)
class RunFacts:
    """What a version's details need of its run: datasets, metrics, and whether it ended."""

    datasets: tuple[str, ...]
    metrics: Mapping[str, float]
    finished: bool


def run_facts(run: Json) -> RunFacts:
    """A run (REST shape) as ``RunFacts``: its logged datasets in order, its latest metrics."""
    metrics = MappingProxyType(
        {
            str(metric["key"]): float(metric["value"])
            for metric in (run.get("data") or {}).get("metrics") or ()
            if metric.get("value") is not None
        }
    )
    datasets: list[str] = []
    for item in (run.get("inputs") or {}).get("dataset_inputs") or ():
        name = _dataset_name(item.get("dataset") or {})
        if name and name not in datasets:
            datasets.append(name)
    status = str((run.get("info") or {}).get("status") or "")
    return RunFacts(tuple(datasets), metrics, status in _FINISHED)


def _dataset_name(dataset: Json) -> str:
    """A logged dataset's name, else the URI its source names, else its source as it is.

    MLflow stores a dataset's source as JSON text, e.g. ``{"uri": "s3://bucket/train.csv"}``.
    """
    name = str(dataset.get("name") or "").strip()
    if name:
        return name
    source = str(dataset.get("source") or "").strip()
    try:
        parsed = json.loads(source)
    except ValueError:
        return source
    if isinstance(parsed, dict):
        for key in ("uri", "url", "path"):
            if parsed.get(key):
                return str(parsed[key])
    return source


def log_read(label: str, models: Sequence[object], versions: Sequence[object]) -> None:
    """What each read found, for an operator who runs at debug level."""
    log.debug("registry %s: read %d models, %d versions", label, len(models), len(versions))
