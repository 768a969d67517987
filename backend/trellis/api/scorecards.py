"""Trellis's own scorecard routes: every check with its outcome and reason, levels, roll-ups."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from trellis.api.deps import ScoresDep, TokenRequired
from trellis.entity_refs import stringify_ref

__all__ = ["router"]

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
