"""Liveness, readiness and the process's own metrics: open, for orchestrators and scrapers."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from trellis.api.deps import Answer, MetricsDep, ScoresDep, ServiceDep

__all__ = ["Readiness", "router"]

router = APIRouter(tags=["health"])


class Liveness(Answer):
    """The process answers."""

    status: Literal["ok"]


class SnapshotState(Answer):
    """The served snapshot: when it was taken and what it holds."""

    taken_at: str
    age_seconds: float
    models: int
    entities: int
    problems: int


class SourceState(Answer):
    """What is known about one source's recent reads."""

    state: Literal["ok", "failing", "unknown"]
    last_success: str | None
    last_failure: str | None
    last_error: str | None
    consecutive_failures: int


class HeldDropState(Answer):
    """A read that lost too much of one source's items, held until confirmed."""

    source: str
    kept: int
    read: int
    since: str
    last_read: str
    reads: int
    confirms_at: str


class ScorecardRun(Answer):
    """The last scorecard run: when, how long, and what it found."""

    at: str
    seconds: float
    entities: int
    outcomes: dict[str, int]
    unavailable: dict[str, str]


class ScorecardsState(Answer):
    """The scorecards' state; it does not decide readiness."""

    state: Literal["ok", "unavailable"]
    reason: str | None
    definitions: str
    last_run: ScorecardRun | None
    last_error: str | None


class SetAsideFile(Answer):
    """A file kept by Trellis that could not be used, renamed and kept."""

    file: str
    set_aside_as: str
    at: str
    reason: str


class Readiness(Answer):
    """Each source's state, the served snapshot and the scorecards."""

    ready: bool
    stale: bool
    snapshot: SnapshotState | None
    sources: dict[str, SourceState]
    drops_held: list[HeldDropState]
    scorecards: ScorecardsState
    files: list[SetAsideFile]


@router.get("/healthz", summary="The process answers")
def healthz() -> Liveness:
    """Always ``ok`` while the process can answer at all."""
    return Liveness(status="ok")


@router.get(
    "/readyz",
    summary="Each source's state and the served snapshot's age",
    responses={503: {"model": Readiness, "description": "Nothing to serve yet."}},
)
def readyz(service: ServiceDep, scores: ScoresDep, response: Response) -> Readiness:
    """200 once there is a catalog to serve (even a stale one, which is said), else 503.

    The scorecards' last run is reported too; it does not decide readiness, because kept
    results are served while a run waits for a slow source. ``files`` lists the files kept
    by Trellis that could not be used and were set aside (renamed, never deleted).
    """
    report = Readiness.model_validate(
        {
            **service.health(),
            "scorecards": scores.health(),
            "files": [
                record.as_json() for record in (*service.store.set_aside, *scores.store.set_aside)
            ],
        }
    )
    response.status_code = 200 if report.ready else 503
    return report


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(registry: MetricsDep) -> Response:
    """Request latency, source errors, snapshot age and catalog size."""
    return Response(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)
