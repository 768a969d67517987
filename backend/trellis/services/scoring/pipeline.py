"""One scoring run: read the sources at once, assemble the facts, run every check, keep all.

Prometheus is asked first; the entities that need none of its facts (models, repositories)
are evaluated while its fleet queries run, the servers after. An entity that reads what the
last kept run scored is not evaluated again (``LastRun``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from trellis.blueprints import blueprint_fact
from trellis.catalog import CatalogDocument
from trellis.catalog.repositories import repository_entity
from trellis.entity_refs import ref_of
from trellis.errors import ConfigError, SourceUnavailable
from trellis.gc_pause import cycles_paused
from trellis.model import ModelTags, Sample, Snapshot
from trellis.observability.fleet import FLEET_FACTS, fleet_rows, plan_fleet_queries
from trellis.ports import (
    FactRow,
    PromQLSource,
    RegistrySource,
    ResultRow,
    RunRow,
    WriteStats,
)
from trellis.scorecards import Scorecard
from trellis.scorecards.assembly import (
    Reads,
    Repository,
    ServingRows,
    assemble,
    server_serving_facts,
    unknowns,
)
from trellis.scorecards.facts import BLUEPRINT, REGISTRY, RETRIEVERS, SERVING
from trellis.scorecards.scoring import (
    CheckOutcome,
    CompiledChecks,
    compile_checks,
    json_value,
    tally_levels,
)
from trellis.services.scaffolding import Scaffolder, Survey
from trellis.services.scoring.definitions import Definitions
from trellis.services.scoring.last_run import Evaluation, LastRun, Scored
from trellis.services.scoring.options import ScoringOptions
from trellis.services.scoring.state import RunReport, RunState
from trellis.services.scoring.store_guard import StoreGuard

__all__ = [
    "CatalogView",
    "LeaseLost",
    "OneRead",
    "Pipeline",
    "by_ref",
    "fact_rows",
    "result_rows",
    "run_row",
]

_K = TypeVar("_K")
_V = TypeVar("_V")

log = logging.getLogger("trellis.services.scoring")  # one logger for every part of scoring

#: The fleet queries and the two source reads at once: with a thread per query only, the
#: champion details and the blueprint survey waited for a Prometheus query to end before
#: starting, and with them the facts and every model's checks that could run during the wait.
_WORKERS = len(FLEET_FACTS) + 2
_PROMETHEUS_NOT_SET = "TRELLIS_PROMETHEUS__URL is not set"
_NO_BLUEPRINTS = "no blueprint source is configured"
_VERSIONS = {retriever.id: retriever.version for retriever in RETRIEVERS}


class LeaseLost(Exception):
    """The replica lost the scorer's lease during a run: the run keeps nothing."""


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


@dataclass(slots=True)
class _Serving:
    """The fleet's Prometheus answers once they came, or why they did not."""

    rows: ServingRows | None = None
    error: str | None = None


class Pipeline:
    """Runs every check for every entity once per call, keeping facts and results."""

    def __init__(
        self,
        *,
        catalog: CatalogView,
        store: StoreGuard,
        definitions: Definitions,
        options: ScoringOptions,
        state: RunState,
        prometheus: PromQLSource | None,
        scaffolder: Scaffolder | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        still_leading: Callable[[], bool] = lambda: True,
        replica: str = "",
        recorded: Callable[[], frozenset[str]] = frozenset,
    ) -> None:
        """``still_leading`` is asked before anything is kept (see ``LeaseLost``).

        ``recorded`` names the recorded series Prometheus has now; fleet queries read them.
        """
        self.catalog = catalog
        self.store = store
        self.definitions = definitions
        self.options = options
        self.state = state
        self.prometheus = prometheus
        self.scaffolder = scaffolder
        self.clock = clock
        self.still_leading = still_leading
        self.replica = replica
        self.recorded = recorded
        self._pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="trellis-score")
        self.last_run = LastRun()
        self._newest: datetime | None = None  # the moment of the newest run written
        #: The definitions last compiled, and their checks.
        self._checks: tuple[tuple[Scorecard, ...], CompiledChecks] | None = None

    def run_once(self) -> RunReport:
        """Read every source once, evaluate every check for every entity, keep the results.

        An entity whose entity and facts are those the last kept run scored is not evaluated
        again (see ``LastRun``): its outcomes stand, and only its facts' latest reading moves.
        The cyclic garbage collector is paused meanwhile (see ``cycles_paused``).
        """
        with cycles_paused():
            return self._run()

    def _run(self) -> RunReport:
        started = time.perf_counter()
        self.state.last_error = None
        scorecards = self.definitions.reload()
        checks = self._compiled(scorecards)
        self.store.open()  # before any source is read: no reading for results that cannot be kept
        document = self.catalog.document()
        snapshot = self.catalog.snapshot()
        now = self.clock()
        asked = self._ask_prometheus()
        reads, survey, unavailable = self._read_sources(snapshot)
        assembly = assemble(
            targets=document.targets,
            entities=by_ref(document),
            repositories=_repositories(survey),
            failed_clusters={
                c: r.error or "unknown error" for c, r in snapshot.clusters.items() if not r.ok
            },
            reads=reads,
            policy=self.options.policy,
            currency=blueprint_fact,
            now=now,
        )
        entities, facts = assembly.entities, assembly.facts
        run = Evaluation(checks, scorecards, self.last_run)

        for ref, entity in entities.items():
            if ref not in assembly.servers:
                run.evaluate(ref, entity, facts.get(ref, {}))
        serving = self._answers(asked, unavailable)
        window = self.options.policy.serving_window_seconds
        for ref, server in assembly.servers.items():
            facts[ref][SERVING.id] = server_serving_facts(
                server, serving.rows, serving.error, window
            )
            run.evaluate(ref, entities[ref], facts[ref])
        if not self.still_leading():
            raise LeaseLost(
                f"this replica ({self.replica}) lost the scorer's lease during a run; "
                "the run keeps nothing"
            )
        # Rows are made as the store writes them, never all at once: a fleet's run is
        # 150,000 of them. The write prunes old history too.
        # What is written is let go as it is: a first run's facts and outcomes are most of
        # its memory, and the write's own buffers then reuse it.
        facts.clear()  # the facts still to write are in ``run.changed``
        rows = (row for ref, values in _drained(run.changed) for row in fact_rows(ref, values, now))
        outcomes = _drained(run.by_entity)
        results = result_rows(outcomes, now)
        stats = self._write(checks, run.scored, rows, results, now, run.unchanged)
        self.store.use(lambda store: store.forget(entities.keys()))
        levels = {ref: scored.levels for ref, scored in run.scored.items()}
        rollup = tally_levels(scorecards, entities, levels)
        counts = run.counts()
        report = RunReport(
            at=now,
            seconds=time.perf_counter() - started,
            entities=len(entities),
            outcomes=counts,
            unavailable=dict(unavailable),
            facts_written=stats.facts_written,
        )
        self.store.use(lambda store: store.record_run(run_row(report, rollup, self.replica)))
        self.store.reached()
        self.state.publish(entities, rollup, report)
        log.info(
            "scorecards: %d entities in %.2f s (%s)%s",
            report.entities,
            report.seconds,
            ", ".join(f"{n} {k}" for k, n in counts.items()),
            "".join(f"; {source} unavailable: {why}" for source, why in unavailable.items()),
        )
        return report

    def forget(self) -> None:
        """Score every entity again and write all of it: another replica may have written."""
        self.last_run.forget()
        self.store.store.distrust()  # in memory only: it cannot fail

    def _compiled(self, scorecards: tuple[Scorecard, ...]) -> CompiledChecks:
        """The checks of ``scorecards``, compiled once for as long as the definitions stand."""
        if self._checks is None or self._checks[0] is not scorecards:
            self._checks = (scorecards, compile_checks(scorecards))
        return self._checks[1]

    def _write(
        self,
        checks: CompiledChecks,
        scored: dict[str, Scored],
        facts: Iterable[FactRow],
        results: Iterable[ResultRow],
        now: datetime,
        unchanged: Sequence[tuple[str, str]],
    ) -> WriteStats:
        """One write of the run; what it scored is kept only once the write committed."""
        try:
            stats = self.store.use(
                lambda store: store.write(facts, results, at=now, unchanged=unchanged)
            )
        except BaseException:
            self.last_run.forget()  # whatever the store holds now, score it all next time
            raise
        if self._newest is not None and now < self._newest:
            # The clock stepped back: the store refused this run's older rows where newer ones
            # stood, so neither what it scored nor what the store believes it wrote is held.
            self.forget()
        else:
            self.last_run.keep(checks, scored)
            self._newest = now
        return stats

    def close(self) -> None:
        """Release the pool and Prometheus's connections."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self.prometheus is not None:
            self.prometheus.close()

    def _read_sources(self, snapshot: Snapshot) -> tuple[Reads, Survey | None, dict[str, str]]:
        """The registry's and the blueprints' reads at once, and why each that failed did."""
        unavailable: dict[str, str] = {}
        champions = [
            version
            for model in snapshot.models
            if (number := model.version_for_alias(ModelTags.CHAMPION)) is not None
            for version in model.versions
            if version.version == number
        ]
        asked = self._pool.submit(self.catalog.registry.version_details, champions)
        surveyed = self._pool.submit(self.scaffolder.survey) if self.scaffolder else None
        details, details_error = None, None
        try:
            details = asked.result()
        except SourceUnavailable as exc:
            details_error = f"champion details could not be read: {exc}"
            unavailable[REGISTRY.id] = details_error
        survey, survey_error = None, None
        if surveyed is None:
            survey_error = _NO_BLUEPRINTS
        else:
            try:
                survey = surveyed.result()
            except (SourceUnavailable, ConfigError) as exc:
                survey_error = f"the blueprint source could not be read: {exc}"
                unavailable[BLUEPRINT.id] = survey_error
        reads = Reads(
            details=details,
            details_error=details_error,
            releases=survey.versions if survey else None,
            blueprint_error=survey_error,
        )
        return reads, survey, unavailable

    def _ask_prometheus(self) -> dict[str, Future[list[Sample]]] | None:
        """Every fleet query, sent; None when no Prometheus is configured."""
        prometheus = self.prometheus
        if prometheus is None:
            return None
        queries = plan_fleet_queries(
            self.options.policy.serving_window_seconds,
            self.options.availability_window_seconds,
            self.recorded(),
        )
        at = self.clock()
        return {q.fact: self._pool.submit(prometheus.query, q.promql, at) for q in queries}

    def _answers(
        self, asked: Mapping[str, Future[list[Sample]]] | None, unavailable: dict[str, str]
    ) -> _Serving:
        """Wait for the fleet queries: their rows, or why Prometheus could not answer."""
        serving = _Serving()
        if asked is None:
            serving.error = _PROMETHEUS_NOT_SET
            return serving
        answers: dict[str, Sequence[Sample]] = {}
        for fact, future in asked.items():
            try:
                answers[fact] = future.result()
            except SourceUnavailable as exc:
                serving.error = f"Prometheus could not be read: {exc}"
                unavailable[SERVING.id] = serving.error
                return serving
        serving.rows = fleet_rows(answers)
        return serving


def result_rows(
    by_entity: Iterable[tuple[str, Mapping[str, CheckOutcome]]], now: datetime
) -> Iterator[ResultRow]:
    """The rows that keep each check's outcome, one at a time."""
    for ref, outcomes in by_entity:
        for outcome in outcomes.values():
            yield ResultRow(
                entity=ref,
                check_id=outcome.check_id,
                timestamp=now,
                outcome=outcome.outcome.value,
                reasons=outcome.reasons,
                facts=outcome.facts,
            )


def _drained(mapping: dict[_K, _V]) -> Iterator[tuple[_K, _V]]:
    """Each item of ``mapping``, removed as it is given (in no set order)."""
    while mapping:
        yield mapping.popitem()


def run_row(report: RunReport, rollup: list[dict[str, object]], replica: str) -> RunRow:
    """The run as the store keeps it: what ``/readyz`` and the fleet report show of it."""
    return RunRow(
        at=report.at,
        replica=replica,
        seconds=report.seconds,
        entities=report.entities,
        report={
            "outcomes": dict(report.outcomes),
            "unavailable": dict(report.unavailable),
            "rollup": rollup,
        },
    )


def by_ref(document: CatalogDocument) -> dict[str, Mapping[str, Any]]:
    """The document's entities by ref."""
    return {ref: e for e in document.entities if (ref := ref_of(e)) is not None}


def fact_rows(ref: str, facts: Mapping[str, Mapping[str, object]], now: datetime) -> list[FactRow]:
    """The rows that keep ``ref``'s facts, one per retriever, unknowns with their reasons."""
    return [
        FactRow(
            entity=ref,
            retriever=retriever,
            version=_VERSIONS[retriever],
            timestamp=now,
            facts={name: json_value(value) for name, value in values.items()},
            unknown=dict(unknowns(values.items())),
        )
        for retriever, values in facts.items()
    ]


def _repositories(survey: Survey | None) -> list[Repository]:
    """The surveyed repositories' entities and ``blueprint`` facts."""
    if survey is None:
        return []
    return [
        Repository(*repository_entity(instance), survey.facts.get(instance.location))
        for instance in survey.instances
    ]
