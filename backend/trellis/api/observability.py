"""Observability route: golden signals of an entity's servers and its training history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import Field

from trellis.api.deps import (
    Answer,
    Detail,
    Moment,
    ObserverDep,
    TargetsDep,
    TokenRequired,
    answer_json,
)
from trellis.entity_refs import stringify_ref
from trellis.services.observability import find_target

__all__ = ["ObservabilityPublic", "router"]

router = APIRouter(
    prefix="/api/observability", tags=["observability"], dependencies=[TokenRequired]
)


class CurrentPublic(Answer):
    """The newest point of a series: the value now, or when it went stale."""

    at: float = Field(description="Unix seconds.")
    value: float | None


class SignalPublic(Answer):
    """One signal of one server, or of the model over all of its servers."""

    id: str = Field(
        description="request_rate, error_ratio, latency_p95, ttft_p95, generation_tokens, "
        "kv_cache_usage, gpu_utilization, ..."
    )
    title: str
    unit: str = Field(description="req/s, ratio, s, requests, tokens/s, %, bytes")
    status: Literal["ok", "missing", "stale", "unavailable"]
    reason: str | None
    current: CurrentPublic | None
    series: list[tuple[float, float | None]] = Field(
        description="[Unix seconds, value] pairs, oldest first; value null where Prometheus "
        "computed no number (an error ratio without requests)."
    )


class ServerPublic(Answer):
    """One model server (a deployment in one cluster) and its signals."""

    cluster: str
    region: str
    namespace: str
    name: str
    kind: str
    runtime: str
    modelName: str | None  # camelCase like the other Trellis answers
    modelVersion: str | None
    ready: bool | None
    readyReplicas: int
    desiredReplicas: int
    gpuRequests: int
    gpuLimits: int
    gpuProduct: str | None
    url: str | None
    signals: list[SignalPublic]


class ModelSignalsPublic(Answer):
    """The model's signals pooled over all of its servers."""

    servers: int
    signals: list[SignalPublic]


class MetricPointPublic(Answer):
    """One logged value of a training metric."""

    step: int
    timestamp: Moment
    value: float | None


class TrainingPublic(Answer):
    """The run behind an aliased version and its metric histories."""

    alias: str
    version: int
    runId: str | None
    status: Literal["ok", "missing", "unavailable"]
    reason: str | None
    metrics: dict[str, list[MetricPointPublic]]


class WindowPublic(Answer):
    """The evaluation times of every series (aligned to the step)."""

    start: Moment
    end: Moment
    range: str
    step: str
    stepSeconds: int
    rateWindowSeconds: int = Field(description="How far back each rate() looks.")
    points: int


class EntityPublic(Answer):
    """The entity asked about."""

    ref: str
    kind: str
    namespace: str
    name: str
    model: str | None = Field(description="The registered model's MLflow name.")


class SourceStatePublic(Answer):
    """How a source fared for this answer."""

    status: Literal["ok", "unavailable"]
    reason: str | None
    requests: int


class ObservabilityPublic(Answer):
    """An entity's servers with their golden signals, the model's, and training history."""

    entity: EntityPublic
    window: WindowPublic
    servers: list[ServerPublic]
    model: ModelSignalsPublic
    training: list[TrainingPublic]
    sources: dict[str, SourceStatePublic]


@router.get(
    "/{namespace}/{kind}/{name}",
    response_model=ObservabilityPublic,
    summary="Golden signals of an entity's servers and the model's training history",
    responses={
        404: {"model": Detail, "description": "No such entity."},
        422: {
            "model": Detail,
            "description": "A range, step or end that is malformed or out of range.",
        },
        503: {"model": Detail, "description": "The catalog has not been read yet."},
    },
)
def observe(
    namespace: Annotated[str, Path(max_length=253)],
    kind: Annotated[str, Path(max_length=63)],
    name: Annotated[str, Path(max_length=253)],
    targets: TargetsDep,
    observer: ObserverDep,
    range_: Annotated[
        str, Query(alias="range", max_length=32, description="How far back: 30m, 6h, 7d.")
    ] = "1h",
    step: Annotated[
        str | None,
        Query(max_length=32, description="Between points: 15s, 1m; default range/60."),
    ] = None,
    end: Annotated[
        datetime | None, Query(description="Last moment (ISO 8601 or Unix seconds); now.")
    ] = None,
) -> Response:
    """Golden signals of each of the entity's servers, of the model, and training history.

    A ``resource`` has a server per cluster it runs in, a ``component`` is one. Every signal
    comes with a status; the same signals pooled over all servers; then the training metrics
    of the ``champion`` and ``candidate`` versions. A source that cannot be read marks what
    depends on it ``unavailable`` with the reason, and the answer is still 200.
    """
    window = observer.window(range_, step, end)  # a bad one: WindowError, answered with 422
    ref = stringify_ref(kind, namespace, name)
    target = find_target(ref, targets)  # an unknown entity: NotFound, answered with 404
    return answer_json(ObservabilityPublic, observer.page(ref, target, window))
