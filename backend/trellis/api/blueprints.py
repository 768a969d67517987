"""Blueprint routes: what exists and who uses which version, and rendering for Backstage."""

from __future__ import annotations

import asyncio
import base64
from typing import Annotated, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from trellis.api.deps import Answer, Detail, ScaffolderDep, TokenRequired
from trellis.blueprints import answers_schema
from trellis.entity_refs import stringify_ref
from trellis.errors import NotFound

__all__ = ["router"]

router = APIRouter(prefix="/api/blueprints", tags=["blueprints"], dependencies=[TokenRequired])


class RenderRequest(BaseModel):
    """The form values of a Software Template, one per blueprint question."""

    model_config = ConfigDict(extra="forbid")

    values: dict[str, JsonValue] = Field(
        default_factory=dict,
        description="Answers by question name; questions left out take their defaults.",
    )


class RenderedFilePublic(BaseModel):
    """One file of the rendered repository."""

    path: str = Field(description="Relative POSIX path inside the repository.")
    base64Content: str  # Backstage's name for file contents
    executable: bool


class RenderResponse(BaseModel):
    """A whole rendered repository."""

    blueprint: str
    version: str = Field(description="The blueprint version rendered (Copier's `_commit`).")
    files: list[RenderedFilePublic]


class AnswerProblemPublic(BaseModel):
    """One answer the blueprint cannot take."""

    field: str
    message: str


class AnswerErrorResponse(BaseModel):
    """Every bad answer, named."""

    detail: str
    errors: list[AnswerProblemPublic]


class BlueprintPublic(BaseModel):
    """One blueprint: its versions, its questions and how many known repositories use it."""

    name: str
    title: str
    description: str
    tags: list[str]
    versions: list[str] | None = Field(
        description="Releases, oldest first; null when the source could not be read."
    )
    latestVersion: str | None  # camelCase: the fact names scorecards share
    answersSchema: dict[str, JsonValue] = Field(
        description="JSON Schema of the answers the render route takes."
    )
    usage: dict[str, int] = Field(description="Known repositories by the version they use.")


class BlueprintList(BaseModel):
    """Every blueprint."""

    items: list[BlueprintPublic]


class RepositoryPublic(BaseModel):
    """A generated repository and its ``blueprint`` fact."""

    location: str
    entityRef: str | None
    blueprint: str
    version: str
    latestVersion: str | None
    versionsBehind: int | None = Field(
        description="Releases newer than the version in use; null when that version is not a "
        "release (a commit between tags) or the releases are unknown."
    )
    minorVersionsBehind: int | None = Field(
        description="Newer minor lines (major.minor) with a release; patch releases do not "
        "count. Null as versionsBehind."
    )


class RepositoryProblem(BaseModel):
    """A configured repository that could not be read."""

    location: str
    reason: str


class RepositoryList(BaseModel):
    """Every configured repository read, and those that could not be."""

    items: list[RepositoryPublic]
    problems: list[RepositoryProblem]


@router.get("", response_model=BlueprintList, summary="List the blueprints")
async def list_blueprints(scaffolder: ScaffolderDep) -> BlueprintList:
    """Every blueprint with its versions, its questions as JSON Schema and its use."""

    def collect() -> BlueprintList:
        survey = scaffolder.survey()
        usage = scaffolder.usage()
        items = []
        for blueprint in scaffolder.blueprints():
            versions = (
                list(survey.versions.get(blueprint.name, ()))
                if survey.versions is not None
                else None
            )
            items.append(
                BlueprintPublic(
                    name=blueprint.name,
                    title=blueprint.title,
                    description=blueprint.description,
                    tags=list(blueprint.tags),
                    versions=versions,
                    latestVersion=versions[-1] if versions else None,
                    answersSchema=answers_schema(blueprint),
                    usage=usage.get(blueprint.name, {}),
                )
            )
        return BlueprintList(items=items)

    return await asyncio.to_thread(collect)


@router.get(
    "/repositories", response_model=RepositoryList, summary="Generated repositories and versions"
)
async def list_repositories(scaffolder: ScaffolderDep) -> RepositoryList:
    """The configured generated repositories (``TRELLIS_BLUEPRINTS__REPOSITORIES``).

    Each carries the ``blueprint`` fact: blueprint, version in use, newest version and how many
    releases behind it is. A repository that cannot be read is listed under ``problems``.
    """
    survey = await asyncio.to_thread(scaffolder.survey)
    return RepositoryList(
        items=[
            RepositoryPublic.model_validate(
                {
                    "location": instance.location,
                    "entityRef": instance.entity_ref,
                    **survey.facts[instance.location],
                }
            )
            for instance in survey.instances
        ],
        problems=[
            RepositoryProblem(location=location, reason=reason)
            for location, reason in survey.problems
        ],
    )


class ReleasePublic(Answer):
    """One release the repository has not taken yet, as its changelog tells it."""

    version: str
    date: str | None
    notes: str


class UpdateRequestPublic(Answer):
    """Where the scheduled workflow's update request is found."""

    host: str = Field(description="`github` or `gitlab`.")
    branch: str = Field(description="The branch the workflow pushes: `blueprint-update/<v>`.")
    url: str = Field(description="A search for requests from that branch on the host.")


class CurrencyPublic(Answer):
    """How current one generated repository is with its blueprint."""

    entityRef: str | None
    location: str
    blueprint: str
    currentVersion: str
    latestVersion: str | None
    versionsBehind: int | None
    upToDate: bool
    note: str | None = Field(description="Why versionsBehind is counted as it is, if odd.")
    status: Literal["ok", "unavailable"]
    reason: str | None = Field(description="Why the status is `unavailable`.")
    releases: list[ReleasePublic] = Field(description="Newer releases, newest first.")
    updateRequest: UpdateRequestPublic | None
    updateRequestReason: str | None = Field(description="Why there is no update request link.")


_Segment = Annotated[str, Path(min_length=1, max_length=253)]


@router.get(
    "/currency/{namespace}/{kind}/{name}",
    response_model=CurrencyPublic,
    summary="Blueprint currency of a generated repository's entity",
    responses={
        404: {"model": Detail, "description": "No known generated repository is that entity."},
        503: {"model": Detail, "description": "Blueprints are not configured."},
    },
)
async def currency(
    namespace: _Segment, kind: _Segment, name: _Segment, scaffolder: ScaffolderDep
) -> CurrencyPublic:
    """How far behind its blueprint a generated repository is, and its update request.

    The blueprint, the version in use, the newest release, the changelog in between, and a
    link to the request the repository's scheduled workflow opens. Only repositories Trellis
    reads (``TRELLIS_BLUEPRINTS__REPOSITORIES``) are known; their entity is the one their
    ``catalog-info.yaml`` names.
    """
    answer = await asyncio.to_thread(scaffolder.currency, stringify_ref(kind, namespace, name))
    return CurrencyPublic.model_validate(answer)


@router.post(
    "/{name}/render",
    response_model=RenderResponse,
    summary="Render a blueprint into files",
    responses={
        400: {"model": AnswerErrorResponse, "description": "Answers the blueprint refuses."},
        404: {"model": Detail, "description": "No blueprint of that name."},
        413: {"model": Detail, "description": "The request body is too large."},
        429: {
            "model": Detail,
            "description": "Too many renders running and waiting; retry after `Retry-After` s.",
        },
        503: {"model": Detail, "description": "The blueprint source could not be read."},
        504: {"model": Detail, "description": "Rendering took longer than allowed."},
    },
)
async def render(
    name: Annotated[str, Path(max_length=100)],
    body: RenderRequest,
    scaffolder: ScaffolderDep,
) -> RenderResponse:
    """Check the answers and render the blueprint with Copier (no tasks, no migrations).

    Answers are data: nothing from the request is run. Each render runs in a worker process,
    stopped at the deadline; a full queue answers 429 with ``Retry-After``. The files come
    back base64-encoded,
    for Backstage's scaffolder to write into its workspace; the new repository carries a
    ``.copier-answers.yml`` that points at the canonical blueprint repository and version.
    """
    if name not in await asyncio.to_thread(scaffolder.names):
        raise NotFound(f"no blueprint named {name!r}")
    rendering = await scaffolder.render(name, body.values)
    return RenderResponse(
        blueprint=rendering.blueprint,
        version=rendering.version,
        files=[
            RenderedFilePublic(
                path=file.path,
                base64Content=base64.b64encode(file.content).decode("ascii"),
                executable=file.executable,
            )
            for file in rendering.files
        ],
    )
