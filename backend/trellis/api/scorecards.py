"""Trellis's own scorecard routes: every check with its outcome and reason, levels, roll-ups."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from trellis.api.deps import TokenRequired
from trellis.entity_refs import stringify_ref
from trellis.services.scoring.queries import ScoreQueries

__all__ = ["ScoresDep", "router"]


def _scores(request: Request) -> ScoreQueries:
    scores: ScoreQueries = request.app.state.scores
    return scores


ScoresDep = Annotated[ScoreQueries, Depends(_scores)]

router = APIRouter(prefix="/api/scorecards", tags=["scorecards"], dependencies=[TokenRequired])


@router.get("", summary="How many entities reached each level, by owner and by system")
def fleet(scores: ScoresDep) -> dict[str, Any]:
    """Per scorecard: entities at each level (``none`` when no level was reached)."""
    return scores.fleet_report()


@router.get(
    "/{namespace}/{kind}/{name}",
    summary="Every scorecard of one entity: checks passed, failed or unknown, and its level",
    responses={404: {"description": "No scorecard applies to the entity."}},
)
def one_entity(
    scores: ScoresDep,
    namespace: Annotated[str, Path(max_length=253)],
    kind: Annotated[str, Path(max_length=63)],
    name: Annotated[str, Path(max_length=253)],
) -> dict[str, Any]:
    """Each check's outcome with the facts it read and, when not passed, why."""
    return scores.entity_report(stringify_ref(kind, namespace, name))
