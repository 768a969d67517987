"""The facts of every entity of one run, assembled from what the sources read: pure, no I/O.

A run reads each source once for the whole fleet; this module hands each entity its facts
by retriever: a model its registry, deployment, blueprint and lineage facts, a model server
its deployment facts (and, once Prometheus has answered, its serving facts), a generated
repository its blueprint fact. A source that failed leaves its reason, and every fact that
depends on it is :class:`Unknown` with that reason.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from trellis.durations import format_duration
from trellis.model import BlueprintInstance, ChampionDetails, Deployment, ModelTags
from trellis.observability import Target
from trellis.observability.queries import server_key
from trellis.scorecards.facts import (
    BLUEPRINT,
    DEPLOYMENTS,
    LINEAGE,
    REGISTRY,
    blueprint_facts,
    lineage_facts,
    model_deployment_facts,
    registry_facts,
    server_deployment_facts,
    serving_facts,
)
from trellis.scorecards.unknown import Unknown

__all__ = [
    "Assembly",
    "BlueprintCurrency",
    "FactPolicy",
    "Reads",
    "Repository",
    "ServingRows",
    "assemble",
    "server_serving_facts",
    "unknowns",
]

Entity = Mapping[str, Any]
Facts = dict[str, dict[str, object]]
"""An entity's facts by retriever id."""
ServingRows = Mapping[tuple[str, str, str], Mapping[str, float]]
"""The fleet's Prometheus answers: each server's (by ``server_key``) value of each fact."""
BlueprintCurrency = Callable[[BlueprintInstance, Sequence[str]], Mapping[str, object]]
"""The ``blueprint`` fact object of an instance given its blueprint's releases."""


class Repository(NamedTuple):
    """A generated repository's entity and the survey's ``blueprint`` fact object of it."""

    ref: str
    entity: Entity
    blueprint: Mapping[str, object] | None


@dataclass(frozen=True, slots=True)
class FactPolicy:
    """The organisation's rules that facts are judged against, and the serving window."""

    residency: Mapping[str, Collection[str]] = field(default_factory=dict)
    adapter_serving: Mapping[str, str] = field(default_factory=dict)
    licenses: Collection[str] = ()
    serving_window_seconds: int = 3_600


@dataclass(frozen=True, slots=True)
class Reads:
    """What the registry and the blueprint source gave for one run, or why they did not."""

    details: Mapping[tuple[str, int], ChampionDetails] | None = None
    details_error: str | None = None
    #: Each blueprint's releases, oldest first; None when they could not be read.
    releases: Mapping[str, Sequence[str]] | None = None
    blueprint_error: str | None = None


@dataclass(frozen=True, slots=True)
class Assembly:
    """Every entity to score (by ref), its facts, and the servers still waiting for Prometheus."""

    entities: dict[str, Entity]
    facts: dict[str, Facts]
    servers: dict[str, Deployment]


def assemble(
    *,
    targets: Mapping[str, Target],
    entities: Mapping[str, Entity],
    repositories: Iterable[Repository],
    failed_clusters: Mapping[str, str],
    reads: Reads,
    policy: FactPolicy,
    currency: BlueprintCurrency,
    now: datetime,
) -> Assembly:
    """Every entity's facts but the servers' serving facts, which wait for Prometheus.

    ``targets`` and ``entities`` are the catalog's, by ref; an entity that stands for neither
    a model nor a server is not scored. A repository is scored unless the catalog already
    has its ref. ``failed_clusters`` says why each cluster that could not be read was not.
    """
    scored: dict[str, Entity] = {}
    facts: dict[str, Facts] = {}
    servers: dict[str, Deployment] = {}
    for ref, target in targets.items():
        entity = entities.get(ref)
        if entity is None or (target.model is None and not target.deployments):
            continue
        scored[ref] = entity
        if entity.get("kind") == "Component":
            server = servers[ref] = target.deployments[0]
            facts[ref] = {
                DEPLOYMENTS.id: server_deployment_facts(server, failed_clusters.get(server.cluster))
            }
        else:
            facts[ref] = _model_facts(target, failed_clusters, reads, policy, currency, now)
    for repository in repositories:
        if repository.ref in scored:
            continue
        scored[repository.ref] = repository.entity
        facts[repository.ref] = {BLUEPRINT.id: blueprint_facts(repository.blueprint, None)}
    return Assembly(scored, facts, servers)


def server_serving_facts(
    server: Deployment, rows: ServingRows | None, unavailable: str | None, window_seconds: int
) -> dict[str, object]:
    """The ``prometheus-serving`` facts of one server from the fleet's rows."""
    row = (rows or {}).get(server_key(server))
    return serving_facts(row, unavailable, format_duration(window_seconds))


def unknowns(items: Iterable[tuple[str, object]], prefix: str = "") -> Iterable[tuple[str, str]]:
    """``(fact or fact.field, reason)`` for every unknown, at any depth."""
    for name, value in items:
        if isinstance(value, Unknown):
            yield f"{prefix}{name}", value.reason
        elif isinstance(value, Mapping):
            yield from unknowns(value.items(), f"{prefix}{name}.")


def _model_facts(
    target: Target,
    failed: Mapping[str, str],
    reads: Reads,
    policy: FactPolicy,
    currency: BlueprintCurrency,
    now: datetime,
) -> Facts:
    model = target.model
    assert model is not None  # noqa: S101  # a Resource stands for a model
    number = model.version_for_alias(ModelTags.CHAMPION)
    details: ChampionDetails | Unknown | None = None
    if reads.details_error is not None:
        details = Unknown(reads.details_error)
    elif number is not None and reads.details is not None:
        details = reads.details.get((model.name, number))
    return {
        REGISTRY.id: registry_facts(model, details, now),
        DEPLOYMENTS.id: model_deployment_facts(model, target.deployments, failed, policy.residency),
        BLUEPRINT.id: _model_blueprint(model.tags, reads, currency),
        LINEAGE.id: lineage_facts(
            model, target.deployments, failed, policy.adapter_serving, policy.licenses
        ),
    }


def _model_blueprint(
    tags: Mapping[str, str], reads: Reads, currency: BlueprintCurrency
) -> dict[str, object]:
    """The ``blueprint`` fact of a model, from the blueprint and version its tags record."""
    name, version = tags.get(ModelTags.BLUEPRINT), tags.get(ModelTags.BLUEPRINT_VERSION)
    if not name or not version:
        return blueprint_facts(None, None)
    if reads.releases is None:
        reason = reads.blueprint_error or "the blueprint releases could not be read"
        return blueprint_facts(None, reason)
    instance = BlueprintInstance(location="", blueprint=name, version=version, source="")
    return blueprint_facts(currency(instance, reads.releases.get(name, ())), None)
