"""The Tech Insights backend's routes and JSON shapes, answered from kept results.

Backstage's Tech Insights frontend finds this through the discovery id ``tech-insights``
(``discovery.endpoints`` in the app config points it here) and shows the checks unchanged.
Results come from the last background run, so a request reads one entity's rows and
shapes them; a check whose outcome is unknown is left out, as the frontend knows only
passed and failed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from trellis.api.deps import Detail, ScoresDep, TokenRequired
from trellis.entity_refs import parse_ref, stringify_ref
from trellis.errors import InvalidQuery, InvalidRequest
from trellis.scorecards import Check
from trellis.scorecards.facts import RETRIEVERS
from trellis.scorecards.techinsights import check_json, check_result, fact_row
from trellis.services.scoring.queries import ScoreQueries

__all__ = ["router"]

router = APIRouter(
    prefix="/api/tech-insights", tags=["tech-insights"], dependencies=[TokenRequired]
)

_RETRIEVER_IDS = {retriever.id for retriever in RETRIEVERS}
_MAX_ENTITIES = 1_000


class RunChecks(BaseModel):
    """Body of ``POST /checks/run/{namespace}/{kind}/{name}``."""

    model_config = ConfigDict(extra="forbid")

    checks: list[Annotated[str, Field(max_length=200)]] | None = Field(
        default=None, max_length=500, description="Check ids; default: every check."
    )


class EntityName(BaseModel):
    """An entity as Tech Insights names it (``CompoundEntityRef``)."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(min_length=1, max_length=63)
    namespace: str = Field(default="default", min_length=1, max_length=253)
    name: str = Field(min_length=1, max_length=253)


class RunChecksBulk(RunChecks):
    """Body of ``POST /checks/run``."""

    entities: list[EntityName] = Field(max_length=_MAX_ENTITIES)


def _checks(scores: ScoreQueries, wanted: Sequence[str] | None) -> list[Check]:
    """The checks asked for, in definition order; an unknown id is a 400 naming it."""
    every = [check for scorecard in scores.scorecards() for check in scorecard.checks]
    if wanted is None:
        return every
    known = {check.id for check in every}
    unknown = [check_id for check_id in wanted if check_id not in known]
    if unknown:
        raise InvalidRequest(f"unknown check ids: {', '.join(map(repr, unknown))}")
    chosen = set(wanted)
    return [check for check in every if check.id in chosen]


def _results(
    scores: ScoreQueries, refs: Sequence[str], checks: Sequence[Check]
) -> dict[str, list[Any]]:
    kept, _ = scores.kept(refs)
    answers: dict[str, list[Any]] = {}
    for ref in refs:
        outcomes = kept.get(ref, {})
        shaped = (check_result(c, outcomes[c.id]) for c in checks if c.id in outcomes)
        answers[ref] = [result for result in shaped if result is not None]
    return answers


@router.get("/checks", summary="Every check, as Tech Insights lists them")
def list_checks(scores: ScoresDep) -> list[dict[str, object]]:
    """Each check's id, type, name, description, factIds, rule, links and level."""
    return [check_json(check) for check in _checks(scores, None)]


@router.post(
    "/checks/run/{namespace}/{kind}/{name}",
    summary="One entity's check results (CheckResult[])",
)
def run_entity_checks(
    scores: ScoresDep,
    namespace: Annotated[str, Path(max_length=253)],
    kind: Annotated[str, Path(max_length=63)],
    name: Annotated[str, Path(max_length=253)],
    body: Annotated[RunChecks | None, Body()] = None,
) -> list[Any]:
    """The latest result of each check for the entity; unknown ones are left out."""
    checks = _checks(scores, body.checks if body else None)
    ref = stringify_ref(kind, namespace, name)
    return _results(scores, [ref], checks)[ref]


@router.post("/checks/run", summary="Several entities' check results")
def run_bulk_checks(scores: ScoresDep, body: RunChecksBulk) -> list[dict[str, Any]]:
    """``[{entity, results}]`` in the order the entities were given."""
    checks = _checks(scores, body.checks)
    refs = [stringify_ref(e.kind, e.namespace, e.name) for e in body.entities]
    answers = _results(scores, refs, checks)
    return [{"entity": ref, "results": answers[ref]} for ref in refs]


def _retrievers(ids: Sequence[str]) -> list[str]:
    if not ids:
        raise InvalidQuery("ids[] is required: the fact retriever ids")
    unknown = [i for i in ids if i not in _RETRIEVER_IDS]
    if unknown:
        raise InvalidQuery(
            f"unknown fact retriever ids: {', '.join(map(repr, unknown))}; known: "
            f"{', '.join(sorted(_RETRIEVER_IDS))}"
        )
    return list(dict.fromkeys(ids))


def _entity(ref: str) -> str:
    try:
        return stringify_ref(*parse_ref(ref))
    except ValueError as exc:
        raise InvalidQuery(str(exc)) from exc


_EntityQuery = Annotated[str, Query(max_length=600, description="kind:namespace/name")]
#: ``ids``, ``ids[]`` and ``ids[0]``: how the frontend's query-string library writes arrays.
_IDS_KEY = re.compile(r"ids(?:\[\d*\])?")
_MAX_IDS = 20


def _ids(request: Request) -> list[str]:
    """Retriever ids from the query, in any of the array forms clients send."""
    ids = [value for key, value in request.query_params.multi_items() if _IDS_KEY.fullmatch(key)]
    if len(ids) > _MAX_IDS:
        raise InvalidQuery(f"at most {_MAX_IDS} ids are taken")
    return ids


_IdsQuery = Annotated[list[str], Depends(_ids)]


@router.get(
    "/facts/latest",
    summary="The latest facts of an entity, by retriever",
    responses={422: {"model": Detail, "description": "Bad retriever ids or entity ref."}},
)
def latest_facts(scores: ScoresDep, entity: _EntityQuery, ids: _IdsQuery) -> dict[str, Any]:
    """``{retrieverId: {id, entity, timestamp, version, facts}}``; 422 without ``ids[]``."""
    retrievers = _retrievers(ids)
    rows = scores.latest_facts(_entity(entity), retrievers)
    return {
        retriever: fact_row(retriever, row.entity, row.version, row.timestamp, row.facts)
        for retriever, row in rows.items()
    }


@router.get(
    "/facts/range",
    summary="An entity's fact history between two moments",
    responses={
        422: {"model": Detail, "description": "Bad retriever ids or entity ref, or end first."}
    },
)
def facts_range(
    scores: ScoresDep,
    entity: _EntityQuery,
    start: Annotated[datetime, Query(alias="startDatetime")],
    end: Annotated[datetime, Query(alias="endDatetime")],
    ids: _IdsQuery,
) -> dict[str, Any]:
    """``{retrieverId: [fact rows]}``, oldest first: each row is a change of the facts."""
    retrievers = _retrievers(ids)
    start, end = _aware(start), _aware(end)
    if end < start:
        raise InvalidQuery("endDatetime is before startDatetime")
    history = scores.facts_range(_entity(entity), retrievers, start, end)
    return {
        retriever: [fact_row(retriever, r.entity, r.version, r.timestamp, r.facts) for r in rows]
        for retriever, rows in history.items()
    }


@router.get(
    "/fact-schemas",
    summary="The fact retrievers' schemas",
    responses={422: {"model": Detail, "description": "Unknown or too many retriever ids."}},
)
def fact_schemas(ids: _IdsQuery) -> list[dict[str, object]]:
    """``[{id, version, entityFilter, <fact>: {type, description}, ...}]``; all without ids."""
    wanted = ids
    if wanted:
        _retrievers(wanted)
    return [r.as_json() for r in RETRIEVERS if not wanted or r.id in wanted]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
