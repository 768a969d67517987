"""Liveness, readiness and the process's own metrics: open, for orchestrators and scrapers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from trellis.api.deps import ServiceDep

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process answers")
def healthz() -> dict[str, str]:
    """Always ``ok`` while the process can answer at all."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Each source's state and the served snapshot's age",
    responses={503: {"description": "Nothing to serve yet."}},
)
def readyz(service: ServiceDep, request: Request) -> JSONResponse:
    """200 once there is a catalog to serve (even a stale one, which is said), else 503.

    The scorecards' last run is reported too; it does not decide readiness, because kept
    results are served while a run waits for a slow source. ``files`` lists the files kept
    by Trellis that could not be used and were set aside (renamed, never deleted).
    """
    report: dict[str, Any] = service.health()
    scores = request.app.state.scores
    report["scorecards"] = scores.health()
    report["files"] = [
        record.as_json() for record in (*service.store.set_aside, *scores.store.set_aside)
    ]
    return JSONResponse(report, status_code=200 if report["ready"] else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Request latency, source errors, snapshot age and catalog size."""
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
