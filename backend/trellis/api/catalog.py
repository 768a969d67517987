"""Catalog routes: the entities Backstage ingests, and what could not be made an entity."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from trellis.api.deps import CatalogAccess, ServiceDep, TokenRequired
from trellis.errors import Conflict
from trellis.services.catalog_refresh import CatalogService

__all__ = ["files", "problems"]

files = APIRouter(prefix="/catalog", tags=["catalog"], dependencies=[CatalogAccess])
problems = APIRouter(prefix="/api/catalog", tags=["catalog"], dependencies=[TokenRequired])


class ProblemPublic(BaseModel):
    """One problem met while building the catalog."""

    model: str
    entity: str | None
    severity: str
    message: str


class ProblemList(BaseModel):
    """Every problem of the served catalog; errors mean an entity was left out."""

    items: list[ProblemPublic]


class HeldDrop(BaseModel):
    """A read that lost everything, or past the allowed share, of one source's items."""

    source: str
    kept: int
    read: int
    since: datetime
    last_read: datetime
    reads: int
    confirms_at: datetime


class DropConfirmation(BaseModel):
    """The drops an operator confirmed: their latest reads are now served."""

    published: list[HeldDrop]


def _conditional(
    request: Request, service: CatalogService, body: bytes, etag: str, media_type: str
) -> Response:
    age = service.snapshot_age_seconds()
    headers = {
        "ETag": etag,
        "Cache-Control": "no-cache",
        "X-Trellis-Snapshot-Age": f"{age or 0:.0f}",
        "X-Trellis-Stale": "true" if service.stale else "false",
    }
    if etag in _etags(request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    return Response(content=body, media_type=media_type, headers=headers)


def _etags(header: str) -> set[str]:
    return {part.strip() for part in header.split(",") if part.strip()}


_ENTITY_RESPONSES: dict[int | str, dict[str, object]] = {
    304: {"description": "Not modified since the ETag given in If-None-Match."},
    503: {"description": "The registry has never been read and no snapshot was kept."},
}


@files.get(
    "/entities.yaml",
    summary="Every entity as multi-document YAML (a Backstage url location)",
    response_class=Response,
    responses={200: {"content": {"application/yaml": {}}}, **_ENTITY_RESPONSES},
)
def entities_yaml(request: Request, service: ServiceDep) -> Response:
    """The catalog as YAML documents separated by ``---``, with a strong ETag."""
    document = service.document()
    return _conditional(request, service, document.yaml, document.yaml_etag, "application/yaml")


@files.get(
    "/entities",
    summary="Every entity as JSON {items: [...]}",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}}, **_ENTITY_RESPONSES},
)
def entities_json(request: Request, service: ServiceDep) -> Response:
    """The catalog as JSON, with a strong ETag."""
    document = service.document()
    return _conditional(request, service, document.json, document.json_etag, "application/json")


@problems.get("/problems", summary="Models whose entity was left out or changed")
def list_problems(service: ServiceDep) -> ProblemList:
    """Errors (entity left out) and warnings (a tag dropped, an owner re-read)."""
    return ProblemList(items=[ProblemPublic(**asdict(p)) for p in service.document().problems])


@problems.post(
    "/drops/confirm",
    summary="Publish every held drop now",
    responses={409: {"description": "No drop is held."}},
)
def confirm_drops(service: ServiceDep) -> DropConfirmation:
    """An operator's confirmation that the models or servers a held read lost are really gone.

    The latest held read is published at once, as if the confirmation period had passed.
    """
    released = service.confirm_drops()
    if not released:
        raise Conflict("no drop is held")
    return DropConfirmation(
        published=[HeldDrop.model_validate(hold.as_dict()) for hold in released]
    )
