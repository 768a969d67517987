"""What the routes share: the app's state, bearer-token auth and the error answers' shapes.

The app factory stores one ``AppState`` on the app; routes receive its parts through the
``Annotated`` aliases here and never read the app's state themselves.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, PlainSerializer, WithJsonSchema

from trellis.errors import Disabled, NotFound, Unauthorized
from trellis.metrics import Metrics
from trellis.observability import Target
from trellis.services.catalog_refresh import CatalogService
from trellis.services.observability import Observer
from trellis.services.scaffolding import Scaffolder
from trellis.services.scoring.queries import ScoreQueries
from trellis.services.webhooks import RegistryWebhooks

__all__ = [
    "Answer",
    "AppState",
    "CatalogAccess",
    "Detail",
    "FieldProblem",
    "MetricsDep",
    "Moment",
    "ObserverDep",
    "RequestError",
    "ScaffolderDep",
    "ScoresDep",
    "ServiceDep",
    "StateDep",
    "TargetsDep",
    "TokenRequired",
    "WebhooksDep",
    "answer_json",
    "entity_targets",
    "install_state",
    "state_of",
]


@dataclass(frozen=True)
class AppState:
    """Everything the routes use, built once by the app factory."""

    catalog: CatalogService
    observer: Observer
    scores: ScoreQueries
    """The scorer's query side: what the scorecard and Tech Insights routes answer from."""
    scaffolder: Scaffolder | None
    scaffolder_error: str | None
    """Why blueprints are off, when ``scaffolder`` is None."""
    metrics: Metrics
    api_tokens: tuple[str, ...] = field(repr=False)
    catalog_requires_token: bool
    """The catalog files ask for a token too (by default they are open)."""
    webhooks: RegistryWebhooks | None = None
    """The receiver of MLflow's webhooks; None while no secret is configured."""


def install_state(app: FastAPI, state: AppState) -> None:
    """Keep ``state`` on the app, where the dependencies below find it."""
    app.state.trellis = state


def state_of(app: FastAPI) -> AppState:
    """The state the app factory kept on ``app``."""
    state: AppState = app.state.trellis
    return state


# The dependencies below only read the app's state: ``async`` so they run on the event loop
# instead of each taking a trip through the thread pool (a page's answer took 9 of them).
async def _state(request: Request) -> AppState:
    return state_of(request.app)


StateDep = Annotated[AppState, Depends(_state)]


async def _service(state: StateDep) -> CatalogService:
    return state.catalog


async def _observer(state: StateDep) -> Observer:
    return state.observer


async def _scores(state: StateDep) -> ScoreQueries:
    return state.scores


async def _metrics(state: StateDep) -> Metrics:
    return state.metrics


async def _scaffolder(state: StateDep) -> Scaffolder:
    if state.scaffolder is None:
        raise Disabled(state.scaffolder_error or "blueprints are not available")
    return state.scaffolder


async def _webhooks(state: StateDep) -> RegistryWebhooks:
    if state.webhooks is None:
        msg = "MLflow webhooks are off: set TRELLIS_WEBHOOKS__SECRET to the webhook's secret"
        raise NotFound(msg)
    return state.webhooks


ServiceDep = Annotated[CatalogService, Depends(_service)]
ObserverDep = Annotated[Observer, Depends(_observer)]
ScoresDep = Annotated[ScoreQueries, Depends(_scores)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]
ScaffolderDep = Annotated[Scaffolder, Depends(_scaffolder)]
WebhooksDep = Annotated[RegistryWebhooks, Depends(_webhooks)]


async def entity_targets(service: ServiceDep) -> Mapping[str, Target]:
    """The served catalog's index of entity refs to their model and servers.

    A read of what is held, so ``async``: no trip through the thread pool per request.
    """
    return service.document().targets


TargetsDep = Annotated[Mapping[str, Target], Depends(entity_targets)]

Moment = Annotated[
    datetime,
    PlainSerializer(datetime.isoformat, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""A moment written as Python's ``isoformat`` writes it (``+00:00``, not ``Z``)."""


class Answer(BaseModel):
    """The shape of an answer built from a dict, with no key left unnamed.

    A key the model does not name fails the answer rather than vanishing from it, so the
    model and the dict it checks cannot drift apart.
    """

    model_config = ConfigDict(extra="forbid")


def answer_json(model: type[Answer], value: Mapping[str, Any]) -> Response:
    """``value`` checked against ``model`` and written as JSON by pydantic in one step.

    For the large answers (an observability page is 13,000 points): FastAPI would turn the
    checked model back into dicts and lists and then encode those, three times the work.
    The route declares ``response_model`` for its OpenAPI schema.
    """
    return Response(model.model_validate(value).model_dump_json(), media_type="application/json")


class Detail(BaseModel):
    """A failure in one sentence."""

    detail: str


class FieldProblem(BaseModel):
    """One field of a request that does not fit, and why."""

    field: str
    message: str


class RequestError(BaseModel):
    """What is wrong with the request: each field (past 20, a last entry counts the rest)."""

    detail: str
    errors: list[FieldProblem] = []


_bearer = HTTPBearer(auto_error=False, description="A token from TRELLIS_API_TOKENS.")
_Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _token_matches(presented: str, tokens: tuple[str, ...]) -> bool:
    """Constant-time comparison against every configured token (no early exit)."""
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(presented.encode(), token.encode())
    return matched


def _unauthorized() -> Unauthorized:
    return Unauthorized("a valid bearer token is required")


async def _require_token(state: StateDep, credentials: _Credentials) -> None:
    if credentials is None or not _token_matches(credentials.credentials, state.api_tokens):
        raise _unauthorized()


async def _catalog_access(request: Request, state: StateDep, credentials: _Credentials) -> None:
    """The catalog files are open unless configured otherwise.

    Backstage's url reader cannot send headers, so a protected catalog also accepts the token
    as the ``token`` query parameter of the location URL.
    """
    if not state.catalog_requires_token:
        return
    presented = credentials.credentials if credentials else request.query_params.get("token")
    if not presented or not _token_matches(presented, state.api_tokens):
        raise _unauthorized()


TokenRequired = Depends(_require_token)
CatalogAccess = Depends(_catalog_access)
