"""Training history beside serving: which versions a page shows, and their metrics, thinned.

A model page shows the runs behind its ``champion`` and ``candidate`` versions (the aliases
the blueprints set), so a regression in serving can be read next to how each was trained.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from trellis.model import MetricPoint, ModelTags, RegisteredModel

__all__ = [
    "ALIASES",
    "MAX_TRAINING_METRICS",
    "TrainingRun",
    "thin",
    "training_runs",
]

#: The aliases whose runs a page shows, in this order.
ALIASES = (ModelTags.CHAMPION, "candidate")
#: At most this many metrics of one run are read (the first by name); a run that logged more
#: says so in its reason.
MAX_TRAINING_METRICS = 25

TrainingStatus = Literal["ok", "missing", "unavailable"]


@dataclass(frozen=True, slots=True)
class TrainingRun:
    """The run behind one aliased version, and what was read of it."""

    alias: str
    version: int
    run_id: str | None
    status: TrainingStatus = "ok"
    reason: str | None = None
    metrics: Mapping[str, Sequence[MetricPoint]] = field(default_factory=dict)

    def as_json(self, max_points: int) -> dict[str, object]:
        """The response shape: each metric's points, at most ``max_points`` of them."""
        return {
            "alias": self.alias,
            "version": self.version,
            "runId": self.run_id,
            "status": self.status,
            "reason": self.reason,
            "metrics": {
                key: [
                    {
                        "step": p.step,
                        "timestamp": p.timestamp.isoformat(),
                        "value": _finite(p.value),
                    }
                    for p in thin(points, max_points)
                ]
                for key, points in sorted(self.metrics.items())
            },
        }


def training_runs(model: RegisteredModel | None) -> list[TrainingRun]:
    """The aliased versions to read, without their metrics yet (``missing`` without a run)."""
    if model is None:
        return []
    by_number = {version.version: version for version in model.versions}
    runs = []
    for alias in ALIASES:
        number = model.version_for_alias(alias)
        if number is None:
            continue
        version = by_number.get(number)
        run_id = version.run_id if version else None
        if run_id is None:
            runs.append(TrainingRun(alias, number, None, "missing", f"version {number} has no run"))
        else:
            runs.append(TrainingRun(alias, number, run_id))
    return runs


def thin(points: Sequence[MetricPoint], limit: int) -> Sequence[MetricPoint]:
    """At most ``limit`` points, evenly spread, always keeping the first and the last."""
    if len(points) <= limit:
        return points
    if limit < 2:
        return points[-1:]
    last = len(points) - 1
    picked = sorted({round(i * last / (limit - 1)) for i in range(limit)})
    return [points[i] for i in picked]


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
