"""One entity's observability answer, read from Prometheus and MLflow (shared by API and CLI).

The pure package ``trellis.observability`` plans the queries and shapes the answer; this
module runs them: every query of a page and every training-run read at once on the
observer's thread pool, each with its source's timeout. The pool is kept between pages
(starting its threads anew made each page's reads start one after another) and bounds what
all pages ask of Prometheus and MLflow at once: more views queue rather than pile on. A page
waits for its reads until its deadline, no longer, so reads stuck upstream (an answer that
trickles in) make the pages behind them say so instead of waiting with them. A
source that fails degrades only what depends on it: Prometheus down leaves the training
history, MLflow down leaves the golden signals. Signals are read from platform-hub's
recorded series where Prometheus has them (``RecordedSeries``, asked once per interval),
from the raw series otherwise.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from cachetools import TTLCache

from trellis.entity_refs import parse_ref, stringify_ref
from trellis.errors import NotFound, SourceUnavailable
from trellis.metrics import Metrics
from trellis.model import MetricPoint, Series
from trellis.observability import (
    Limits,
    Query,
    SourceState,
    Target,
    TrainingRun,
    Unavailable,
    Window,
    build_page,
    page_servers,
    plan_queries,
    plan_window,
    training_runs,
)
from trellis.observability.page import Group, Pooled, percentile_groups, pool_percentiles
from trellis.observability.queries import PERCENTILE_QUERIES
from trellis.observability.training import MAX_TRAINING_METRICS
from trellis.ports import PromQLSource, RegistrySource
from trellis.services.recording_rules import RecordedSeries

__all__ = [
    "DEADLINE_SECONDS",
    "NOT_CONFIGURED",
    "Observer",
    "find_target",
]

log = logging.getLogger(__name__)
_T = TypeVar("_T")

NOT_CONFIGURED = "TRELLIS_PROMETHEUS__URL is not set"
#: Reads in flight at once, all pages together: a page has about fifteen queries and a few
#: runs, so one page reads all at once and a second one alongside it.
WORKERS = 16

#: How long a page waits for its reads when not told (Trellis is told twice the longer of
#: its sources' timeouts: a read queued behind a full pool waits one, then takes one).
DEADLINE_SECONDS = 60.0

PAGE_TTL_SECONDS = 15.0
"""How long a complete page is served again: half the blueprints' 30 s scrape interval."""

PAGES_KEPT = 256


class Observer:
    """Answers observability requests for entities whose servers the caller has found."""

    def __init__(
        self,
        *,
        prometheus: PromQLSource | None,
        registry: RegistrySource | None,
        limits: Limits,
        metrics: Metrics | None = None,
        page_ttl_seconds: float = PAGE_TTL_SECONDS,
        recorded: RecordedSeries | None = None,
        deadline_seconds: float = DEADLINE_SECONDS,
    ) -> None:
        self.prometheus = prometheus
        self.deadline_seconds = deadline_seconds
        self.recorded = recorded
        self.registry = registry
        self.limits = limits
        self._metrics = metrics
        self._pages: TTLCache[tuple[object, ...], dict[str, Any]] | None = (
            TTLCache(maxsize=PAGES_KEPT, ttl=page_ttl_seconds) if page_ttl_seconds > 0 else None
        )
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="trellis-observe")

    def window(self, range_text: str, step_text: str | None, end: datetime | None) -> Window:
        """The window asked for, or ``WindowError`` naming each limit it breaks."""
        if end is not None and end.tzinfo is None:
            end = end.replace(tzinfo=UTC)
        return plan_window(range_text, step_text, self.limits, end=end)

    def page(self, ref: str, target: Target, window: Window) -> dict[str, Any]:
        """The answer for ``ref``: its servers' signals, the model's, and training history.

        Windows end on a step boundary, so views of the same page within a step ask the same
        questions: a complete answer is kept for ``PAGE_TTL_SECONDS`` and served again. An
        answer with a source down is never kept, so recovery shows on the next view.
        """
        key = (
            ref,
            window,
            tuple((d.cluster, d.namespace, d.name, d.runtime) for d in target.deployments),
        )
        if self._pages is None:
            return self._read_page(ref, target, window)
        with self._lock:
            kept = self._pages.get(key)
        if kept is not None:
            return kept
        page = self._read_page(ref, target, window)
        if all(state["status"] != "unavailable" for state in page["sources"].values()):
            with self._lock:
                self._pages[key] = page
        return page

    def _read_page(self, ref: str, target: Target, window: Window) -> dict[str, Any]:
        recorded = self.recorded.available() if self.recorded is not None else frozenset()
        servers = page_servers(target)
        queries = plan_queries(servers, window.rate_seconds, recorded)
        groups = percentile_groups(servers)
        pooled: dict[str, Pooled] = {}
        pool = self._pool
        deadline = time.monotonic() + self.deadline_seconds
        runs = [self._start_run(pool, run) for run in training_runs(target.model)]
        asked = {q.key: self._ask(pool, q, window, groups, pooled) for q in queries}
        started = [self._start_history(pool, run, keys, deadline) for run, keys in runs]
        training = [self._finish_history(run, deadline) for run in started]
        answers, prometheus = self._answers(asked, deadline)
        requests = sum(keys is not None for _, keys in runs) + sum(
            len(run.pending) for run in started if isinstance(run, _Reading)
        )
        return build_page(
            ref=ref,
            target=target,
            window=window,
            queries=queries,
            answers=answers,
            prometheus=prometheus,
            training=training,
            mlflow=_mlflow_state(training, requests),
            max_points=self.limits.max_points,
            pooled=pooled,
        )

    def close(self) -> None:
        """End the pool and close Prometheus's connections (the registry is the catalog's)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self.prometheus is not None:
            self.prometheus.close()

    # --- Prometheus ---

    def _ask(
        self,
        pool: ThreadPoolExecutor,
        query: Query,
        window: Window,
        groups: Sequence[Group],
        pooled: dict[str, Pooled],
    ) -> Future[list[Series]] | Unavailable:
        """Run ``query``; a percentile query's percentiles are worked out as soon as it answers.

        That work then overlaps the wait for the other queries instead of following it.
        """
        source = self.prometheus
        if source is None:
            return Unavailable(NOT_CONFIGURED)

        def run() -> list[Series]:
            result = source.query_range(query.promql, window.start, window.end, window.step_seconds)
            if query.key in PERCENTILE_QUERIES:
                pooled[query.key] = pool_percentiles(query.key, result, groups)
            return result

        return pool.submit(run)

    def _answers(
        self, asked: Mapping[str, Future[list[Series]] | Unavailable], deadline: float
    ) -> tuple[dict[str, Sequence[Series] | Unavailable], SourceState]:
        answers: dict[str, Sequence[Series] | Unavailable] = {}
        failures: list[str] = []
        requests = 0
        for signal, pending in asked.items():
            if isinstance(pending, Unavailable):
                answers[signal] = pending
                failures.append(pending.reason)
                continue
            requests += 1
            try:
                answers[signal] = self._wait(pending, deadline, "prometheus")
            except SourceUnavailable as exc:
                answers[signal] = Unavailable(exc.reason)
                failures.append(exc.reason)
        if self.prometheus is None:
            return answers, SourceState("unavailable", NOT_CONFIGURED)
        if failures:
            self._failed("prometheus", failures[0])
            return answers, SourceState("unavailable", failures[0], requests)
        return answers, SourceState("ok", None, requests)

    # --- MLflow ---

    def _start_run(
        self, pool: ThreadPoolExecutor, run: TrainingRun
    ) -> tuple[TrainingRun, Future[list[str]] | None]:
        if run.run_id is None or self.registry is None:
            return run, None
        return run, pool.submit(self.registry.run_metric_keys, run.run_id)

    def _start_history(
        self,
        pool: ThreadPoolExecutor,
        run: TrainingRun,
        keys: Future[list[str]] | None,
        deadline: float,
    ) -> TrainingRun | _Reading:
        """Once a run's metric names are known, ask for each metric's history."""
        if run.run_id is None:
            return run
        if self.registry is None or keys is None:
            return replace(run, status="unavailable", reason="no model registry is configured")
        try:
            names = self._wait(keys, deadline, "mlflow")
        except (NotFound, SourceUnavailable) as exc:
            return self._run_failed(run, exc)
        chosen = names[:MAX_TRAINING_METRICS]
        pending = {k: pool.submit(self.registry.metric_history, run.run_id, k) for k in chosen}
        reason = None
        if len(names) > len(chosen):
            reason = f"the first {len(chosen)} of {len(names)} metrics (by name)"
        return _Reading(replace(run, reason=reason), pending)

    def _finish_history(self, reading: TrainingRun | _Reading, deadline: float) -> TrainingRun:
        if isinstance(reading, TrainingRun):
            return reading
        try:
            metrics = {
                key: self._wait(future, deadline, "mlflow")
                for key, future in reading.pending.items()
            }
        except (NotFound, SourceUnavailable) as exc:
            return self._run_failed(reading.run, exc)
        return replace(reading.run, metrics=metrics)

    def _wait(self, future: Future[_T], deadline: float, source: str) -> _T:
        """``future``'s result, or ``SourceUnavailable`` once the page's deadline has passed."""
        try:
            return future.result(timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            future.cancel()  # still queued: never asked; already running: left to its timeout
            why = f"no answer within the page's {self.deadline_seconds:g} s"
            raise SourceUnavailable(source, why) from None

    def _run_failed(self, run: TrainingRun, exc: NotFound | SourceUnavailable) -> TrainingRun:
        if isinstance(exc, NotFound):
            return replace(run, status="missing", reason=f"run {run.run_id} does not exist")
        self._failed("mlflow", exc.reason)
        return replace(run, status="unavailable", reason=exc.reason)

    def _failed(self, source: str, reason: str) -> None:
        log.warning("%s could not be read for an observability answer: %s", source, reason)
        if self._metrics is not None:
            self._metrics.source_errors.labels(source).inc()


@dataclass(frozen=True, slots=True)
class _Reading:
    """A run whose metric histories are being read."""

    run: TrainingRun
    pending: Mapping[str, Future[list[MetricPoint]]]


def _mlflow_state(runs: Sequence[TrainingRun], requests: int) -> SourceState:
    failed = [run.reason for run in runs if run.status == "unavailable" and run.reason]
    if failed:
        return SourceState("unavailable", failed[0], requests)
    return SourceState("ok", None, requests)


# --- which servers an entity ref stands for ------------------------------------------------


def find_target(ref: str, targets: Mapping[str, Target]) -> Target:
    """The target of ``ref`` (kind and namespace compare case-insensitively), or ``NotFound``."""
    found = targets.get(ref)
    if found is not None:
        return found
    try:
        found = targets.get(stringify_ref(*parse_ref(ref)))
    except ValueError:
        found = None
    if found is None:
        raise NotFound(f"no entity {ref!r} is known to Trellis")
    return found
