"""Scorecards for the whole fleet, worked out in the background and kept (API and CLI share it).

One run reads every source once for the whole fleet, in parallel: the registry's champion
details (batched, and kept per version), one PromQL query per serving signal for every
server, the survey of generated repositories. The pure package ``trellis.scorecards`` turns
that into facts per entity and runs every check; the facts (as history) and each check's
latest outcome go to the fact store, so routes answer from it and a restart loses nothing.

A source that fails makes only its facts unknown: Prometheus down leaves registry checks
evaluated and serving checks unknown, never failed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from trellis.blueprints import blueprint_fact
from trellis.catalog import CatalogDocument, Target
from trellis.config import Settings
from trellis.entity_refs import parse_ref, ref_of, stringify_ref
from trellis.errors import ConfigError, NotFound, NotReady, SourceUnavailable
from trellis.model import (
    BlueprintInstance,
    ChampionDetails,
    Deployment,
    ModelTags,
    Sample,
    Snapshot,
)
from trellis.observability.fleet import fleet_rows, plan_fleet_queries
from trellis.observability.queries import server_key
from trellis.ports import FactRow, PromQLSource, RegistrySource, ResultRow, ScorecardStore
from trellis.redact import scrub_text
from trellis.scorecards import DefinitionError, Scorecard, Unknown, load_scorecards
from trellis.scorecards.facts import (
    BLUEPRINT,
    DEPLOYMENTS,
    LINEAGE,
    REGISTRY,
    RETRIEVERS,
    SERVING,
    blueprint_facts,
    lineage_facts,
    model_deployment_facts,
    registry_facts,
    server_deployment_facts,
    serving_facts,
)
from trellis.scorecards.scoring import (
    CheckOutcome,
    Outcome,
    applicable,
    fleet_rollup,
    json_value,
    run_checks,
    view,
)
from trellis.services.scaffolding import Scaffolder, Survey
from trellis.sources.blueprints import find_checkout

__all__ = [
    "BLUEPRINT_ANNOTATION",
    "CatalogView",
    "OneRead",
    "RunReport",
    "Scorer",
    "default_directory",
]

log = logging.getLogger(__name__)

BLUEPRINT_ANNOTATION = "trellis.dev/blueprint"
_WORKERS = 8
_RETRY_SECONDS = 15.0
"""How soon a run that could not reach the fact store tries again (at most the interval)."""
SCORECARDS = "scorecards"
_PROMETHEUS_NOT_SET = "TRELLIS_PROMETHEUS__URL is not set"
_NO_BLUEPRINTS = "no blueprint source is configured"

Facts = dict[str, dict[str, object]]
_T = TypeVar("_T")
_VERSIONS = {retriever.id: retriever.version for retriever in RETRIEVERS}


class CatalogView(Protocol):
    """What scoring needs of the catalog: the served document, its snapshot, its registry.

    ``CatalogService`` is one; ``trellis score`` passes a one-off read.
    """

    @property
    def registry(self) -> RegistrySource:
        """The registry the catalog reads."""
        ...

    def document(self) -> CatalogDocument:
        """The served catalog, or ``NotReady``."""
        ...

    def snapshot(self) -> Snapshot:
        """The snapshot behind it, or ``NotReady``."""
        ...


def default_directory() -> Path | None:
    """``scorecards/`` of the checkout Trellis runs from, when there is one."""
    checkout = find_checkout()
    return checkout / "scorecards" if checkout is not None else None


@dataclass(frozen=True, slots=True)
class OneRead:
    """A catalog read once, for commands that score without a running server."""

    registry: RegistrySource
    read_document: CatalogDocument
    read_snapshot: Snapshot

    def document(self) -> CatalogDocument:
        """The document built from the one read."""
        return self.read_document

    def snapshot(self) -> Snapshot:
        """The one read."""
        return self.read_snapshot


@dataclass(frozen=True, slots=True)
class RunReport:
    """What one run did, for logs, ``/readyz`` and ``trellis score``."""

    at: datetime
    seconds: float
    entities: int
    outcomes: Mapping[str, int]
    unavailable: Mapping[str, str]
    facts_written: int


@dataclass
class _Reads:
    """What the sources gave for one run; a failed source leaves its reason instead."""

    details: Mapping[tuple[str, int], ChampionDetails] | None = None
    details_error: str | None = None
    rows: Mapping[tuple[str, str, str], Mapping[str, float]] | None = None
    serving_error: str | None = None
    survey: Survey | None = None
    survey_error: str | None = None
    unavailable: dict[str, str] = field(default_factory=dict)


class Scorer:
    """Keeps every entity's scorecard results current, and answers from what it kept."""

    def __init__(
        self,
        *,
        catalog: CatalogView,
        store: ScorecardStore,
        directory: Path | None,
        settings: Settings,
        prometheus: PromQLSource | None,
        scaffolder: Scaffolder | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.directory = directory
        self.config = settings.scorecards
        self.prometheus = prometheus
        self.scaffolder = scaffolder
        self.clock = clock
        self._scorecards: tuple[Scorecard, ...] | None = None
        self._definition_error: str | None = None
        #: Why the fact store could not be used last time it was tried; None once it was.
        self._store_error: str | None = None
        self._entities: dict[str, Mapping[str, Any]] = {}
        self._last: RunReport | None = None
        self._last_error: str | None = None
        self._rollup: list[dict[str, object]] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="trellis-score")

    @property
    def registry(self) -> RegistrySource:
        """The registry the catalog reads, whose champion details the facts need."""
        return self.catalog.registry

    # --- definitions -----------------------------------------------------------------------

    def reload(self) -> tuple[Scorecard, ...]:
        """Read the definitions again; on any problem keep the last valid set and say why.

        Raises:
            DefinitionError: naming every problem, when no valid set was ever read.
            NotReady: when there is no directory to read.
        """
        if self.directory is None:
            error = "TRELLIS_SCORECARDS__DIRECTORY is not set and Trellis does not run from a "
            error += "checkout with scorecards/"
            self._definition_error = error
        else:
            try:
                self._scorecards = load_scorecards(self.directory)
                self._definition_error = None
            except DefinitionError as exc:
                self._definition_error = str(exc)
                if self._scorecards is None:
                    raise
                log.error("scorecard definitions kept as they were: %s", exc)
        return self.scorecards()

    def scorecards(self) -> tuple[Scorecard, ...]:
        """The last valid definitions."""
        if self._scorecards is None:
            why = self._definition_error or "they have not been read yet"
            raise NotReady(f"no valid scorecard definitions: {why}")
        return self._scorecards

    # --- one run ---------------------------------------------------------------------------

    def run_once(self) -> RunReport:
        """Read every source once, evaluate every check for every entity, keep the results.

        Prometheus is asked first; the entities that need none of its facts (models,
        repositories) are evaluated while its fleet queries run, the servers after.
        """
        started = time.perf_counter()
        self._last_error = None
        scorecards = self.reload()
        try:  # before any source is read: no reading for results that cannot be kept
            self.store.open()
        except SourceUnavailable as exc:
            raise self._store_failed(exc) from exc
        document = self.catalog.document()
        snapshot = self.catalog.snapshot()
        now = self.clock()
        asked = self._ask_prometheus()
        reads = self._read_sources(snapshot)
        entities, facts, servers = self._facts(document, snapshot, reads, now)
        fact_rows: list[FactRow] = []
        result_rows: list[ResultRow] = []
        counts = dict.fromkeys((o.value for o in Outcome), 0)
        by_entity: dict[str, dict[str, CheckOutcome]] = {}

        def evaluate(ref: str) -> None:
            by_retriever = facts.get(ref, {})
            fact_rows.extend(_fact_rows(ref, by_retriever, now))
            for outcome in run_checks(scorecards, entities[ref], by_retriever):
                by_entity.setdefault(ref, {})[outcome.check_id] = outcome
                counts[outcome.outcome.value] += 1
                result_rows.append(
                    ResultRow(
                        entity=ref,
                        check_id=outcome.check_id,
                        timestamp=now,
                        outcome=outcome.outcome.value,
                        reasons=outcome.reasons,
                        facts=outcome.facts,
                    )
                )

        for ref in entities:
            if ref not in servers:
                evaluate(ref)
        self._answers(asked, reads)
        window = _duration(self.config.serving_window_seconds)
        for ref, server in servers.items():
            row = (reads.rows or {}).get(server_key(server))
            facts[ref][SERVING.id] = serving_facts(row, reads.serving_error, window)
            evaluate(ref)
        # The write prunes old history too.
        stats = self._stored(lambda: self.store.write(fact_rows, result_rows, at=now))
        self._stored(lambda: self.store.forget(entities.keys()))
        self._store_error = None
        rollup = fleet_rollup(scorecards, entities, by_entity)
        report = RunReport(
            at=now,
            seconds=time.perf_counter() - started,
            entities=len(entities),
            outcomes=counts,
            unavailable=dict(reads.unavailable),
            facts_written=stats.facts_written,
        )
        with self._lock:
            self._entities = entities
            self._rollup = rollup
            self._last = report
        log.info(
            "scorecards: %d entities in %.2f s (%s)%s",
            report.entities,
            report.seconds,
            ", ".join(f"{n} {k}" for k, n in counts.items()),
            "".join(f"; {source} unavailable: {why}" for source, why in reads.unavailable.items()),
        )
        return report

    def _read_sources(self, snapshot: Snapshot) -> _Reads:
        """The registry's and the blueprints' reads, at once; each failure kept as the reason."""
        reads = _Reads()
        champions = [
            version
            for model in snapshot.models
            if (number := model.version_for_alias(ModelTags.CHAMPION)) is not None
            for version in model.versions
            if version.version == number
        ]
        details = self._pool.submit(self.registry.version_details, champions)
        survey = self._pool.submit(self.scaffolder.survey) if self.scaffolder else None
        try:
            reads.details = details.result()
        except SourceUnavailable as exc:
            reads.details_error = f"champion details could not be read: {exc}"
            reads.unavailable[REGISTRY.id] = reads.details_error
        if survey is None:
            reads.survey_error = _NO_BLUEPRINTS
        else:
            try:
                reads.survey = survey.result()
            except (SourceUnavailable, ConfigError) as exc:
                reads.survey_error = f"the blueprint source could not be read: {exc}"
                reads.unavailable[BLUEPRINT.id] = reads.survey_error
        return reads

    def _ask_prometheus(self) -> dict[str, Future[list[Sample]]] | None:
        """Every fleet query, sent; None when no Prometheus is configured."""
        prometheus = self.prometheus
        if prometheus is None:
            return None
        queries = plan_fleet_queries(
            self.config.serving_window_seconds, self.config.availability_window_seconds
        )
        at = self.clock()
        return {q.fact: self._pool.submit(prometheus.query, q.promql, at) for q in queries}

    def _answers(self, asked: Mapping[str, Future[list[Sample]]] | None, reads: _Reads) -> None:
        """Wait for the fleet queries: their rows, or why Prometheus could not answer."""
        if asked is None:
            reads.serving_error = _PROMETHEUS_NOT_SET
            return
        answers: dict[str, Sequence[Sample]] = {}
        for fact, future in asked.items():
            try:
                answers[fact] = future.result()
            except SourceUnavailable as exc:
                reads.serving_error = f"Prometheus could not be read: {exc}"
                reads.unavailable[SERVING.id] = reads.serving_error
                return
        reads.rows = fleet_rows(answers)

    def _facts(
        self, document: CatalogDocument, snapshot: Snapshot, reads: _Reads, now: datetime
    ) -> tuple[dict[str, Mapping[str, Any]], dict[str, Facts], dict[str, Deployment]]:
        """Every entity to score (by ref), its facts by retriever id, and the servers.

        A server's serving facts are left for later: they wait for Prometheus.
        """
        failed = {c: r.error or "unknown error" for c, r in snapshot.clusters.items() if not r.ok}
        releases = reads.survey.versions if reads.survey else None
        entities: dict[str, Mapping[str, Any]] = {}
        facts: dict[str, Facts] = {}
        servers: dict[str, Deployment] = {}
        by_ref = _by_ref(document)
        for ref, target in document.targets.items():
            entity = by_ref.get(ref)
            if entity is None or (target.model is None and not target.deployments):
                continue
            entities[ref] = entity
            if entity.get("kind") == "Component":
                server = servers[ref] = target.deployments[0]
                facts[ref] = {
                    DEPLOYMENTS.id: server_deployment_facts(server, failed.get(server.cluster))
                }
            else:
                facts[ref] = self._model_facts(target, failed, reads, releases, now)
        for instance in reads.survey.instances if reads.survey else ():
            ref, repository = _repository_entity(instance)
            if ref in entities:
                continue
            entities[ref] = repository
            fact = reads.survey.facts.get(instance.location) if reads.survey else None
            facts[ref] = {BLUEPRINT.id: blueprint_facts(fact, None)}
        return entities, facts, servers

    def _model_facts(
        self,
        target: Target,
        failed: Mapping[str, str],
        reads: _Reads,
        releases: Mapping[str, Sequence[str]] | None,
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
            DEPLOYMENTS.id: model_deployment_facts(
                model, target.deployments, failed, self.config.residency
            ),
            BLUEPRINT.id: _model_blueprint(model.tags, releases, reads.survey_error),
            LINEAGE.id: lineage_facts(
                model,
                target.deployments,
                failed,
                self.config.adapter_serving,
                self.config.licenses,
            ),
        }

    # --- answers ---------------------------------------------------------------------------

    def entity(self, ref: str) -> Mapping[str, Any] | None:
        """The entity scored under ``ref`` in the last run (None when it was not)."""
        with self._lock:
            return self._entities.get(ref)

    def entities(self) -> dict[str, Mapping[str, Any]]:
        """Every entity scored in the last run, by ref."""
        with self._lock:
            return dict(self._entities)

    def kept(
        self, refs: Sequence[str] | None = None
    ) -> tuple[dict[str, dict[str, CheckOutcome]], datetime | None]:
        """The kept outcome of each check by entity ref and check id, and when it was worked out.

        ``refs`` None means every entity.
        """
        kept = self._stored(lambda: self.store.latest_results(refs))
        outcomes = {
            ref: {
                row.check_id: CheckOutcome(
                    row.check_id, Outcome(row.outcome), tuple(row.reasons), row.facts
                )
                for row in rows
            }
            for ref, rows in kept.items()
        }
        newest = max((row.timestamp for rows in kept.values() for row in rows), default=None)
        return outcomes, newest

    def entity_report(self, ref: str) -> dict[str, Any]:
        """Every scorecard of one entity with each check's kept outcome and the level reached.

        Raises:
            NotFound: when no scorecard applies to ``ref`` and nothing was kept for it.
        """
        scorecards = self.scorecards()
        kept, evaluated = self.kept([ref])
        outcomes = kept.get(ref, {})
        entity = self.entity(ref)
        if entity is not None:
            chosen = applicable(scorecards, entity)
        else:  # not scored since a restart: the kept results say which scorecards apply
            chosen = [s for s in scorecards if any(c.id in outcomes for c in s.checks)]
        if not chosen:
            raise NotFound(f"no scorecard applies to {ref!r}, or it is not in the catalog")
        if self._last is not None and ref in self._entities:
            evaluated = self._last.at
        return {
            "entity": ref,
            "evaluatedAt": evaluated.isoformat() if evaluated else None,
            "scorecards": [view(scorecard, outcomes).as_json() for scorecard in chosen],
        }

    def fleet_report(self) -> dict[str, Any]:
        """Per scorecard, entities at each level (``none``: no level): all, by owner, by system."""
        entities = self.entities()
        rollup = self._rollup
        if rollup is None:  # not run since a restart: once from the kept results
            rollup = fleet_rollup(self.scorecards(), entities, self.kept(None)[0])
            with self._lock:
                self._rollup = self._rollup or rollup
        return {
            "entities": len(entities),
            "lastRun": self.health()["last_run"],
            "scorecards": rollup,
        }

    def latest_facts(self, ref: str, retrievers: Sequence[str]) -> dict[str, FactRow]:
        """The latest facts of ``ref`` from each retriever that has any."""
        return self._stored(lambda: self.store.latest_facts(ref, retrievers))

    def facts_range(
        self, ref: str, retrievers: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, list[FactRow]]:
        """Each change of ``ref``'s facts between ``start`` and ``end``, by retriever."""
        return self._stored(lambda: self.store.facts_range(ref, retrievers, start, end))

    def _stored(self, call: Callable[[], _T]) -> _T:
        """A use of the fact store; when it fails, the scorecards are unavailable, saying why.

        A store never reached since the last failure is not tried again per request: the
        background runs retry it, so requests answer at once.

        Raises:
            SourceUnavailable: for ``scorecards``, with the store's name and reason.
        """
        if self._store_error is not None and not self.store.opened:
            raise SourceUnavailable(SCORECARDS, self._store_error)
        try:
            return call()
        except SourceUnavailable as exc:
            raise self._store_failed(exc) from exc

    def _store_failed(self, exc: SourceUnavailable) -> SourceUnavailable:
        self._store_error = f"{exc.source}: {exc.reason}"
        return SourceUnavailable(SCORECARDS, self._store_error)

    def health(self) -> dict[str, object]:
        """The scorecards' part of ``/readyz``.

        ``state`` is ``unavailable``, with a ``reason``, while the fact store cannot be used
        or no valid definitions were ever read.
        """
        report = self._last
        reason = self._store_error
        if reason is None and self._scorecards is None and self._definition_error is not None:
            reason = f"no valid scorecard definitions: {self._definition_error}"
        return {
            "state": "ok" if reason is None else "unavailable",
            "reason": reason,
            "definitions": "ok" if self._definition_error is None else self._definition_error,
            "last_run": None
            if report is None
            else {
                "at": report.at.isoformat(),
                "seconds": round(report.seconds, 3),
                "entities": report.entities,
                "outcomes": dict(report.outcomes),
                "unavailable": dict(report.unavailable),
            },
            "last_error": self._last_error,
        }

    # --- the background loop ---------------------------------------------------------------

    def start(self) -> None:
        """Run every ``interval_seconds`` in a background thread until ``stop``.

        Until the first run ends, answers come from the kept results of the catalog's
        entities, so a restart serves what was worked out before it.
        """
        try:
            document = self.catalog.document()
        except NotReady:
            pass
        else:
            with self._lock:
                self._entities = _by_ref(document)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="trellis-scorer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the loop, then release the pool, Prometheus and the store."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self.prometheus is not None:
            self.prometheus.close()
        self.store.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except NotReady as exc:  # the catalog has not been read yet: try again soon
                self._last_error = str(exc)
                self._stop.wait(1.0)
                continue
            except SourceUnavailable as exc:  # the fact store: the catalog serves on
                retry = min(_RETRY_SECONDS, self.config.interval_seconds)
                self._last_error = str(exc)
                log.warning("%s; trying again in %g s", exc, retry)
                self._stop.wait(retry)
                continue
            except DefinitionError as exc:  # never a valid set: nothing to run until fixed
                self._last_error = f"no valid scorecard definitions: {exc}"
                log.error("scorecards unavailable, no valid definitions:\n%s", exc)
            except Exception as exc:  # a bug must not end the loop that keeps results fresh
                self._last_error = scrub_text(f"{type(exc).__name__}: {exc}")
                log.exception("scorecard run crashed")
            self._stop.wait(self.config.interval_seconds)


def _by_ref(document: CatalogDocument) -> dict[str, Mapping[str, Any]]:
    return {ref: e for e in document.entities if (ref := ref_of(e)) is not None}


def _repository_entity(instance: BlueprintInstance) -> tuple[str, Mapping[str, Any]]:
    """A generated repository's Component as far as Trellis knows it: ref and annotation."""
    kind, namespace, name = parse_ref(instance.entity_ref or Path(instance.location).name)
    entity = {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": kind.capitalize(),
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {BLUEPRINT_ANNOTATION: instance.blueprint},
        },
        "spec": {},
    }
    return stringify_ref(kind, namespace, name), entity


def _model_blueprint(
    tags: Mapping[str, str],
    releases: Mapping[str, Sequence[str]] | None,
    unavailable: str | None,
) -> dict[str, object]:
    """The ``blueprint`` fact of a model, from the blueprint and version its tags record."""
    name, version = tags.get(ModelTags.BLUEPRINT), tags.get(ModelTags.BLUEPRINT_VERSION)
    if not name or not version:
        return blueprint_facts(None, None)
    if releases is None:
        return blueprint_facts(None, unavailable or "the blueprint releases could not be read")
    instance = BlueprintInstance(location="", blueprint=name, version=version, source="")
    return blueprint_facts(blueprint_fact(instance, releases.get(name, ())), None)


def _fact_rows(ref: str, facts: Mapping[str, Mapping[str, object]], now: datetime) -> list[FactRow]:
    return [
        FactRow(
            entity=ref,
            retriever=retriever,
            version=_VERSIONS[retriever],
            timestamp=now,
            facts={name: json_value(value) for name, value in values.items()},
            unknown=dict(_unknowns(values.items())),
        )
        for retriever, values in facts.items()
    ]


def _unknowns(items: Iterable[tuple[str, object]], prefix: str = "") -> Iterable[tuple[str, str]]:
    """``(fact or fact.field, reason)`` for every unknown, at any depth."""
    for name, value in items:
        if isinstance(value, Unknown):
            yield f"{prefix}{name}", value.reason
        elif isinstance(value, Mapping):
            yield from _unknowns(value.items(), f"{prefix}{name}.")


def _duration(seconds: int) -> str:
    if seconds % 86_400 == 0:
        return f"{seconds // 86_400}d"
    if seconds % 3_600 == 0:
        return f"{seconds // 3_600}h"
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"
