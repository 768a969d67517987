"""One entity's observability answer, put together from what the sources returned.

The caller resolves the entity to its servers (and registered model), runs the planned
queries and reads the training runs; this module only shapes: per server its facts and
signals, the model's signals over all of its servers, the training history, and how each
source fared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from trellis.durations import format_duration
from trellis.entity_refs import parse_ref
from trellis.model import Deployment, RegisteredModel, Series
from trellis.observability.queries import (
    PERCENTILE_QUERIES,
    PERCENTILES_OF,
    SIGNALS,
    Query,
    ServerKey,
    Signal,
    server_key,
    signals_for,
)
from trellis.observability.signals import (
    Point,
    SignalSeries,
    Unavailable,
    combine_runtimes,
    judged,
    model_series,
    percentile_points,
    rows_by_server,
    server_series,
    split_rows,
)
from trellis.observability.training import TrainingRun
from trellis.observability.window import Window

__all__ = [
    "EntityServers",
    "Group",
    "Pooled",
    "SourceState",
    "Target",
    "build_page",
    "page_servers",
    "percentile_groups",
    "pool_percentiles",
]


class Target(Protocol):
    """What an entity ref stands for: a registered model and/or the servers behind it."""

    @property
    def model(self) -> RegisteredModel | None:
        """The registered model (of a ``resource``, or the one a ``component`` serves)."""
        ...

    @property
    def deployments(self) -> Sequence[Deployment]:
        """Its model servers, in every cluster."""
        ...


@dataclass(frozen=True, slots=True)
class EntityServers:
    """A plain ``Target``."""

    model: RegisteredModel | None
    deployments: tuple[Deployment, ...] = ()


@dataclass(frozen=True, slots=True)
class SourceState:
    """How one source fared for this answer."""

    status: Literal["ok", "unavailable"]
    reason: str | None = None
    requests: int = 0

    def as_json(self) -> dict[str, object]:
        """The response shape."""
        return {"status": self.status, "reason": self.reason, "requests": self.requests}


Answers = Mapping[str, Sequence[Series] | Unavailable]


def page_servers(target: Target) -> list[Deployment]:
    """The target's servers, one per ``(namespace, name, region)``.

    Prometheus cannot tell two clusters of one region apart: the first (by cluster) stands
    for them.
    """
    seen: dict[tuple[str, str, str], Deployment] = {}
    for deployment in sorted(
        target.deployments, key=lambda d: (d.region, d.namespace, d.name, d.cluster)
    ):
        seen.setdefault(server_key(deployment), deployment)
    return list(seen.values())


@dataclass(frozen=True, slots=True)
class Group:
    """Servers whose percentiles are pooled together: one server, or a runtime's (the model's).

    A runtime's group reads the rows Prometheus pooled for the model when the answer has
    them (its servers' recorded percentiles cannot be pooled), else its servers' rows.
    """

    servers: tuple[ServerKey, ...]
    runtime: str | None = None


#: One percentile query's points, by group of servers, then by quantile.
Pooled = Mapping[Group, Mapping[float, tuple[Point, ...]]]
#: A percentile query's rows by server, and the model's by runtime (``rows_by_server``).
_ByServer = Mapping[ServerKey | str, Sequence[Series]]


def percentile_groups(servers: Sequence[Deployment]) -> list[Group]:
    """The groups a page's percentiles are pooled over: each server, then each runtime's."""
    return [Group((server_key(d),)) for d in servers] + _runtime_groups(servers)


def _runtime_groups(servers: Sequence[Deployment]) -> list[Group]:
    by_runtime: dict[str, list[ServerKey]] = {}
    for deployment in servers:
        by_runtime.setdefault(deployment.runtime, []).append(server_key(deployment))
    return [Group(tuple(keys), runtime) for runtime, keys in sorted(by_runtime.items())]


def _group_points(
    quantiles: Sequence[float], by_server: _ByServer, group: Group
) -> dict[float, tuple[Point, ...]]:
    model = by_server.get(group.runtime) if group.runtime is not None else None
    rows = model or [row for server in group.servers for row in by_server.get(server, ())]
    return percentile_points(quantiles, rows)


def pool_percentiles(key: str, result: Sequence[Series], groups: Sequence[Group]) -> Pooled:
    """The percentiles of query ``key`` for each group, from its rows.

    ``build_page`` works them out itself when not given; the caller can instead do it as soon
    as the query's answer comes, while the others are still awaited.
    """
    by_server = rows_by_server(result)
    quantiles = list(PERCENTILE_QUERIES[key].quantiles.values())
    return {group: _group_points(quantiles, by_server, group) for group in groups}


def build_page(
    *,
    ref: str,
    target: Target,
    window: Window,
    queries: Sequence[Query],
    answers: Answers,
    prometheus: SourceState,
    training: Sequence[TrainingRun],
    mlflow: SourceState,
    max_points: int,
    pooled: Mapping[str, Pooled] | None = None,
) -> dict[str, Any]:
    """The whole answer for ``ref`` (JSON-ready).

    ``pooled`` holds percentiles already worked out (``pool_percentiles``), by query key.
    """
    servers = page_servers(target)
    rows: dict[str, SplitRows | Unavailable] = {}
    distributions: dict[str, Distribution] = {}
    for query in queries:
        answer = answers.get(query.key, Unavailable("not asked"))
        if query.key in PERCENTILE_QUERIES:
            distributions[query.key] = answer  # by server only if a group is not pooled yet
        else:
            rows[query.key] = answer if isinstance(answer, Unavailable) else split_rows(answer)
    view = _Rows(rows, distributions)
    for key, groups in (pooled or {}).items():
        for group, points in groups.items():
            view.percentiles[(key, group)] = dict(points)
    kind, namespace, name = parse_ref(ref)
    model = target.model
    return {
        "entity": {
            "ref": ref,
            "kind": kind,
            "namespace": namespace,
            "name": name,
            "model": model.name if model else None,
        },
        "window": {
            "start": window.start.isoformat(),
            "end": window.end.isoformat(),
            "range": format_duration(window.range_seconds),
            "step": format_duration(window.step_seconds),
            "stepSeconds": window.step_seconds,
            "rateWindowSeconds": window.rate_seconds,
            "points": window.points,
        },
        "servers": [_server(d, view, window) for d in servers],
        "model": {
            "servers": len(servers),
            "signals": [s.as_json() for s in _model_signals(servers, view, window)],
        },
        "training": [run.as_json(max_points) for run in training],
        "sources": {"prometheus": prometheus.as_json(), "mlflow": mlflow.as_json()},
    }


SplitRows = tuple[Mapping[ServerKey, Series], Mapping[str, Series]]
#: A percentile query's answer: its rows, by server once a group had to be pooled here.
Distribution = Sequence[Series] | _ByServer | Unavailable


@dataclass(frozen=True, slots=True)
class _Rows:
    """Every answer of a page: per signal, then each percentile query's rows by server."""

    signals: Mapping[str, SplitRows | Unavailable]
    distributions: dict[str, Distribution]
    percentiles: dict[tuple[str, Group], dict[float, tuple[Point, ...]]] = field(
        default_factory=dict
    )


def _server(deployment: Deployment, rows: _Rows, window: Window) -> dict[str, object]:
    key = server_key(deployment)
    signals = []
    for signal in signals_for(deployment.runtime):
        if signal.id in PERCENTILES_OF:
            found = _percentile(signal, rows, [Group((key,))], window)
        else:
            answer = rows.signals.get(signal.id, Unavailable("not asked"))
            per_server = answer if isinstance(answer, Unavailable) else answer[0]
            found = server_series(signal, per_server, key, window)
        signals.append(found.as_json())
    ready = next((c.status == "True" for c in deployment.conditions if c.type == "Ready"), None)
    return {
        "cluster": deployment.cluster,
        "region": deployment.region,
        "namespace": deployment.namespace,
        "name": deployment.name,
        "kind": deployment.kind,
        "runtime": deployment.runtime,
        "modelName": deployment.model_name,
        "modelVersion": deployment.model_version,
        "ready": ready,
        "readyReplicas": deployment.ready_replicas,
        "desiredReplicas": deployment.desired_replicas,
        "gpuRequests": deployment.gpu_requests,
        "gpuLimits": deployment.gpu_limits,
        "gpuProduct": deployment.gpu_product,
        "url": deployment.url,
        "signals": signals,
    }


def _percentile(
    signal: Signal, rows: _Rows, groups: Sequence[Group], window: Window
) -> SignalSeries:
    """A percentile pooled within each group of servers (one runtime), the worst across groups."""
    percentiles = PERCENTILES_OF[signal.id]
    distribution = rows.distributions.get(percentiles.key, Unavailable("not asked"))
    if isinstance(distribution, Unavailable):
        return SignalSeries(signal, "unavailable", reason=distribution.reason)
    found = []
    for group in groups:
        key = (percentiles.key, group)
        if key not in rows.percentiles:  # each group's buckets are pooled once, for all three
            if not isinstance(distribution, Mapping):
                distribution = rows.distributions[percentiles.key] = rows_by_server(distribution)
            quantiles = list(percentiles.quantiles.values())
            rows.percentiles[key] = _group_points(quantiles, distribution, group)
        points = rows.percentiles[key][percentiles.quantiles[signal.id]]
        if points:
            found.append(points)
    return judged(signal, combine_runtimes(signal, found), window)


def _model_signals(
    servers: Sequence[Deployment], rows: _Rows, window: Window
) -> list[SignalSeries]:
    if not servers:
        return []
    present = {signal.id for d in servers for signal in signals_for(d.runtime)}
    groups = _runtime_groups(servers)
    result = []
    for signal in SIGNALS:
        if signal.id not in present:
            continue
        if signal.id in PERCENTILES_OF:
            result.append(_percentile(signal, rows, groups, window))
            continue
        answer = rows.signals.get(signal.id, Unavailable("not asked"))
        per_model = answer if isinstance(answer, Unavailable) else answer[1]
        result.append(model_series(signal, per_model, window))
    return result
