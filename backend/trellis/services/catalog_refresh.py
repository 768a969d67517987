"""Keeps the served catalog fresh: reads the sources on an interval, off the request path.

A failed read changes nothing that is served: the last good snapshot (also kept on disk, so
a restart does not lose it) stays in place, and its age is reported, because Backstage
deletes entities that disappear from a location. Clusters fail one at a time: a cluster that
cannot be read keeps the deployments it had, while the others move on.

A read that succeeds but loses everything, or past a set share, is held the same way (see
``trellis.services.drop_guard``): the registry's models, or one cluster's servers, stay as
served until reads confirm the drop over a set period or an operator confirms it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from trellis.catalog import CatalogBuilder, CatalogDocument, CatalogOptions, build_catalog
from trellis.errors import NotReady, SourceUnavailable
from trellis.metrics import Metrics
from trellis.model import ClusterRead, Deployment, RegisteredModel, Snapshot
from trellis.ports import ClusterResults, DeploymentSource, RegistrySource, SnapshotStore
from trellis.redact import scrub_text
from trellis.services.drop_guard import DropGuard, DropPolicy, Hold, Verdict
from trellis.services.runner import Runner

__all__ = [
    "CatalogService",
    "SourceHealth",
    "build_document",
    "merge_clusters",
    "with_models",
]

log = logging.getLogger(__name__)

#: Most models one read by name may ask for (two requests each): past that, a burst of
#: webhooks costs more requests than a full read, which pages 10,000 models in about 13.
NAMED_READS_MAX = 50


@dataclass(slots=True)
class SourceHealth:
    """What is known about one upstream source's recent reads."""

    name: str
    last_success: datetime | None = None
    last_failure: datetime | None = None
    last_error: str | None = None
    consecutive_failures: int = 0

    @property
    def state(self) -> str:
        """``ok``, ``failing`` or ``unknown`` (never read yet)."""
        if self.consecutive_failures:
            return "failing"
        return "ok" if self.last_success else "unknown"

    def as_dict(self) -> dict[str, object]:
        """JSON-ready view for ``/readyz``."""
        return {
            "state": self.state,
            "last_success": _iso(self.last_success),
            "last_failure": _iso(self.last_failure),
            "last_error": self.last_error,
            "consecutive_failures": self.consecutive_failures,
        }


def merge_clusters(
    previous: Snapshot | None,
    results: ClusterResults,
    held: Collection[str] = frozenset(),
) -> tuple[tuple[Deployment, ...], dict[str, ClusterRead]]:
    """This read's deployments, keeping the previous ones of each cluster failed or ``held``.

    Dropping a failed cluster's servers would make Backstage orphan and delete their entities;
    they are kept, marked by the cluster's ``ClusterRead``, until the cluster answers again.
    A held cluster answered, but with a drop not yet confirmed: its servers are kept too.
    """
    kept = previous.deployments if previous else ()
    deployments: list[Deployment] = []
    clusters: dict[str, ClusterRead] = {}
    for cluster in sorted(results):
        read, found = results[cluster]
        clusters[cluster] = read
        fresh = read.ok and cluster not in held
        deployments.extend(found if fresh else (d for d in kept if d.cluster == cluster))
    order = sorted(deployments, key=lambda d: (d.cluster, d.namespace, d.kind, d.name))
    return tuple(order), clusters


def build_document(
    snapshot: Snapshot, options: CatalogOptions, builder: CatalogBuilder | None = None
) -> CatalogDocument:
    """Entities and their rendered bytes for one snapshot (shared by the API and the CLI).

    With ``builder`` (the service's, kept from one refresh to the next), only what changed
    since its last build is made and rendered again; the bytes are the same either way.
    """
    catalog = builder.build(snapshot) if builder is not None else build_catalog(snapshot, options)
    for problem in catalog.problems:
        level = logging.ERROR if problem.severity == "error" else logging.INFO
        log.log(
            level, "catalog %s for model %r: %s", problem.severity, problem.model, problem.message
        )
    return CatalogDocument.build(
        catalog,
        taken_at=snapshot.taken_at,
        model_count=len(snapshot.models),
        cache=builder.render_cache if builder is not None else None,
    )


@dataclass
class CatalogService:
    """Owns the current ``CatalogDocument`` and the thread that refreshes it."""

    registry: RegistrySource
    store: SnapshotStore
    options: CatalogOptions
    interval_seconds: float
    metrics: Metrics = field(default_factory=Metrics)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    deployments: DeploymentSource | None = None
    drop_policy: DropPolicy = field(default_factory=DropPolicy)
    #: Shortest time between two refreshes that ``refresh_soon`` brings forward.
    debounce_seconds: float = 0.0
    _document: CatalogDocument | None = field(default=None, init=False)
    _snapshot: Snapshot | None = field(default=None, init=False)
    _from_store: bool = field(default=False, init=False)
    _health: SourceHealth = field(init=False)
    _clusters: dict[str, SourceHealth] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _guard: DropGuard = field(default_factory=DropGuard, init=False)
    #: The latest read while any part of it is held: what an operator's confirmation publishes.
    _held_read: tuple[Snapshot, ClusterResults | None] | None = field(default=None, init=False)
    _drop_sources: set[str] = field(default_factory=set, init=False)
    #: One refresh or confirmation at a time.
    _refreshing: threading.Lock = field(default_factory=threading.Lock, init=False)
    _runner: Runner = field(init=False)
    #: What the last build made of each model, so a refresh remakes only what changed.
    _builder: CatalogBuilder = field(init=False)
    #: Models a webhook named since the last refresh, and whether a full read was asked for.
    _named: set[str] = field(default_factory=set, init=False)
    _full_asked: bool = field(default=False, init=False)
    #: When the last full read began (``time.monotonic``), None before the first.
    _last_full: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._builder = CatalogBuilder(self.options)
        self._health = SourceHealth(self.registry.name)
        self.metrics.snapshot_age.set_function(lambda: self.snapshot_age_seconds() or float("nan"))
        # The registry's hold gauge exists from the start (0), so alerts see it before a hold.
        self._drop_sources.add(self.registry.name)
        self._report_holds()
        self._runner = Runner(
            self._refresh_in_background,
            interval_seconds=self.interval_seconds,
            debounce_seconds=self.debounce_seconds,
            name="trellis-catalog",
            what="catalog refresh",
            log=log,
        )

    def load_kept(self) -> bool:
        """Serve the snapshot kept on disk until the first live read succeeds."""
        snapshot = self.store.load()
        if snapshot is None:
            return False
        self._publish(
            build_document(snapshot, self.options, self._builder), snapshot, from_store=True
        )
        log.info(
            "serving kept snapshot of %d models and %d servers from %s",
            len(snapshot.models),
            len(snapshot.deployments),
            snapshot.taken_at.isoformat(),
        )
        return True

    def refresh(self) -> CatalogDocument | None:
        """One read-build-publish cycle; on failure keep serving what was served.

        None when the registry could not be read or its read is held.
        """
        with self._refreshing:
            return self._refresh()

    def refresh_models(self, names: Collection[str]) -> CatalogDocument | None:
        """Read only the named models (a webhook named them) and publish them with the rest.

        The other models stay as the last read gave them, and nothing is removed: a model
        that is gone is seen, and judged by the drop guard, by the next full read. A full read
        is made instead when there is nothing live to patch (no read yet, the kept file
        served, a drop held), more than ``NAMED_READS_MAX`` models are named, or the source
        cannot read these models one by one.
        """
        with self._refreshing:
            previous = self._snapshot
            if previous is None or self._from_store or self._held_read is not None:
                return self._refresh()  # nothing live to patch
            if len(names) > NAMED_READS_MAX:
                return self._refresh()
            started = time.perf_counter()
            try:
                found = self.registry.read_models(names)
            except SourceUnavailable as exc:
                self._read_failed(exc)
                return None
            if found is None:
                return self._refresh()
            _succeeded(self._health, self.clock())
            patched = with_models(previous, found)
            if patched.models != previous.models:  # else nothing to publish or keep again
                self._publish_read(patched)
            self.metrics.refresh_seconds.observe(time.perf_counter() - started)
            return self._document

    def _read_failed(self, exc: SourceUnavailable) -> None:
        _failed(self._health, self.clock(), exc.reason)
        self.metrics.source_errors.labels(exc.source).inc()
        log.warning("registry read failed (%s); still serving the last good snapshot", exc)

    def _refresh(self) -> CatalogDocument | None:
        started = time.perf_counter()
        try:
            read = self.registry.read()
        except SourceUnavailable as exc:
            self._read_failed(exc)
            return None
        _succeeded(self._health, self.clock())
        results = self._read_clusters()
        registry_held, held_clusters = self._judge(read, results)
        self._held_read = (read, results) if registry_held or held_clusters else None
        previous = self._snapshot
        if registry_held and previous is not None:
            # The registry's models stay as served; the clusters may still move on.
            snapshot = self._with_clusters(previous, results, held_clusters)
            if snapshot == previous:
                return None
            self._publish_read(snapshot)
            return None
        self._publish_read(self._with_clusters(read, results, held_clusters))
        self.metrics.refresh_seconds.observe(time.perf_counter() - started)
        return self._document

    def _publish_read(self, snapshot: Snapshot) -> None:
        """Publish a snapshot that reads produced, then keep it on disk."""
        current, previous = self._document, self._snapshot
        if (
            current is not None
            and previous is not None
            and previous.models == snapshot.models
            and previous.deployments == snapshot.deployments
        ):
            # The usual case: nothing changed, so keep the bytes (and ETag), just newer.
            self._publish(replace(current, snapshot_taken_at=snapshot.taken_at), snapshot)
        else:
            self._publish(build_document(snapshot, self.options, self._builder), snapshot)
        self.store.save(snapshot)  # after publishing: a restart needs it, a request does not

    def _read_clusters(self) -> ClusterResults | None:
        """Every cluster's servers, each cluster's health recorded; None without clusters."""
        if self.deployments is None:
            return None
        results = self.deployments.read()
        for cluster, (status, _) in results.items():
            health = self._clusters.setdefault(cluster, SourceHealth(f"kubernetes:{cluster}"))
            if status.ok:
                _succeeded(health, status.read_at)
            else:
                _failed(health, status.read_at, status.error or "unknown error")
                self.metrics.source_errors.labels(health.name).inc()
                log.warning("cluster %s failed (%s); keeping its servers", cluster, status.error)
        return results

    def _with_clusters(
        self, base: Snapshot, results: ClusterResults | None, held: Collection[str]
    ) -> Snapshot:
        """``base`` with every cluster's servers (the served ones for failed or held clusters)."""
        if results is None:
            return base
        deployments, clusters = merge_clusters(self._snapshot, results, held)
        return replace(base, deployments=deployments, clusters=clusters)

    def _judge(self, read: Snapshot, results: ClusterResults | None) -> tuple[bool, frozenset[str]]:
        """Whether the registry's read is held, and which clusters' reads are."""
        now, served = self.clock(), self._snapshot
        registry_held = self._held(
            self.registry.name,
            "models",
            len(served.models) if served else 0,
            len(read.models),
            now,
            self.drop_policy,
        )
        # A cluster's few servers change by design (rollouts, canaries): only zero is held.
        per_cluster = replace(self.drop_policy, only_to_zero=True)
        held_clusters = {
            cluster
            for cluster, (status, found) in sorted((results or {}).items())
            if status.ok
            and self._held(
                f"kubernetes:{cluster}",
                "servers",
                sum(d.cluster == cluster for d in served.deployments) if served else 0,
                len(found),
                now,
                per_cluster,
            )
        }
        self._report_holds()
        return registry_held, frozenset(held_clusters)

    def _held(
        self, source: str, items: str, kept: int, read: int, now: datetime, policy: DropPolicy
    ) -> bool:
        """Judge one source's read, count and log the outcome; whether it is held."""
        with self._lock:
            judgement = self._guard.judge(source, kept=kept, read=read, now=now, policy=policy)
        hold = judgement.hold
        if judgement.verdict is Verdict.HOLD and hold is not None:
            if hold.reads == 1:
                self.metrics.drops.labels(source, "held").inc()
            log.warning(
                "%s read has %d %s where the served catalog has %d: held, not published, until "
                "reads confirm it at %s or an operator does (POST /api/catalog/drops/confirm)",
                source,
                read,
                items,
                kept,
                hold.confirms_at.isoformat(),
            )
            return True
        if judgement.verdict is Verdict.CONFIRMED and hold is not None:
            self.metrics.drops.labels(source, "confirmed").inc()
            log.warning(
                "%s read has %d %s where %d were served, in every read since %s: published",
                source,
                read,
                items,
                kept,
                hold.since.isoformat(),
            )
        elif hold is not None:
            self.metrics.drops.labels(source, "cleared").inc()
            log.info("%s read has %d %s again: the held drop is cleared", source, read, items)
        return False

    def _report_holds(self) -> None:
        holds = {hold.source: hold for hold in self.drops_held()}
        self._drop_sources |= holds.keys()
        for source in self._drop_sources:
            hold = holds.get(source)
            self.metrics.drop_held.labels(source).set(1 if hold else 0)
            self.metrics.drop_items.labels(source, "kept").set(hold.kept if hold else 0)
            self.metrics.drop_items.labels(source, "read").set(hold.read if hold else 0)

    def drops_held(self) -> tuple[Hold, ...]:
        """Every source whose latest read is held, by source."""
        with self._lock:
            return self._guard.holds

    def confirm_drops(self) -> tuple[Hold, ...]:
        """Publish every held read now (an operator's confirmation); the holds it ended."""
        with self._refreshing:
            with self._lock:
                released = self._guard.release_all()
            held_read, self._held_read = self._held_read, None
            if released and held_read is not None:
                read, results = held_read
                for hold in released:
                    self.metrics.drops.labels(hold.source, "operator").inc()
                    log.warning(
                        "%s drop from %d to %d confirmed by an operator: published",
                        hold.source,
                        hold.kept,
                        hold.read,
                    )
                self._publish_read(self._with_clusters(read, results, frozenset()))
            self._report_holds()
            return released

    def _publish(
        self, document: CatalogDocument, snapshot: Snapshot, *, from_store: bool = False
    ) -> None:
        with self._lock:
            self._document = document
            self._snapshot = snapshot
            self._from_store = from_store
        self.metrics.entities.set(document.entity_count)
        for severity in ("error", "warning"):
            count = sum(p.severity == severity for p in document.problems)
            self.metrics.problems.labels(severity).set(count)

    def document(self) -> CatalogDocument:
        """The catalog to serve now, or ``NotReady`` when there has never been one."""
        document = self._document
        if document is None:
            raise NotReady("the model registry has not been read yet and no snapshot was kept")
        return document

    def snapshot(self) -> Snapshot:
        """The snapshot behind the served catalog, or ``NotReady`` as ``document``."""
        with self._lock:
            snapshot = self._snapshot
        if snapshot is None:
            raise NotReady("the model registry has not been read yet and no snapshot was kept")
        return snapshot

    def snapshot_age_seconds(self) -> float | None:
        """Seconds since the served snapshot was read from the registry."""
        document = self._document
        if document is None:
            return None
        return max(0.0, (self.clock() - document.snapshot_taken_at).total_seconds())

    @property
    def stale(self) -> bool:
        """Whether the served snapshot is not the outcome of the latest read."""
        failing = [self._health, *self._clusters.values()]
        return self._document is not None and (
            self._from_store
            or any(h.consecutive_failures > 0 for h in failing)
            or bool(self.drops_held())
        )

    def health(self) -> dict[str, object]:
        """Readiness report: each source's state and the served snapshot's age."""
        document = self._document
        return {
            "ready": document is not None,
            "stale": self.stale,
            "snapshot": None
            if document is None
            else {
                "taken_at": _iso(document.snapshot_taken_at),
                "age_seconds": round(self.snapshot_age_seconds() or 0.0, 3),
                "models": document.model_count,
                "entities": document.entity_count,
                "problems": len(document.problems),
            },
            "sources": {
                health.name: health.as_dict() for health in (self._health, *self._clusters.values())
            },
            "drops_held": [hold.as_dict() for hold in self.drops_held()],
        }

    def start(self) -> None:
        """Load what was kept, then refresh in a background thread until ``stop``."""
        self.load_kept()
        self._runner.start()

    def refresh_soon(self) -> None:
        """Refresh now, or when the debounce allows: the registry said something changed."""
        with self._lock:
            self._full_asked = True
        self._runner.wake()

    def refresh_model_soon(self, name: str) -> None:
        """Read ``name`` again soon (the registry said it changed), without a full read.

        Past ``NAMED_READS_MAX`` names before the next refresh, a full read is asked for
        instead, so a burst of webhooks neither grows the set nor costs a request per model.
        """
        with self._lock:
            if len(self._named) < NAMED_READS_MAX:
                self._named.add(name)
            else:
                self._full_asked = True
        self._runner.wake()

    def stop(self) -> None:
        """Ask the refresh thread to end and wait briefly for it."""
        self._runner.stop()
        self.registry.close()
        if self.deployments is not None:
            self.deployments.close()

    def _refresh_in_background(self) -> float:
        """A full read every interval; between them, only the models webhooks named.

        Returns the time left until the next full read, when the loop runs again unless a
        webhook wakes it first.
        """
        with self._lock:
            names, self._named = self._named, set()
            full, self._full_asked = self._full_asked, False
        now = time.monotonic()
        due = self._last_full is None or now - self._last_full >= self.interval_seconds
        if names and not (due or full):
            self.refresh_models(names)
        else:
            self._last_full = now
            self.refresh()
        last = self._last_full if self._last_full is not None else now
        return max(0.0, last + self.interval_seconds - time.monotonic())


def with_models(snapshot: Snapshot, models: Iterable[RegisteredModel]) -> Snapshot:
    """``snapshot`` with ``models`` in place of those of the same name, new ones added.

    Models stay in name order, as a full read gives them, so an equal registry gives an
    equal snapshot whichever way it was read.
    """
    fresh = {model.name: model for model in models}
    if not fresh:
        return snapshot
    result = [fresh.pop(model.name, model) for model in snapshot.models]
    if fresh:
        result += fresh.values()
        result.sort(key=lambda model: model.name)
    return replace(snapshot, models=tuple(result))


def _succeeded(health: SourceHealth, at: datetime) -> None:
    health.last_success = at
    health.consecutive_failures = 0
    health.last_error = None


def _failed(health: SourceHealth, at: datetime, reason: str) -> None:
    health.last_failure = at
    health.last_error = scrub_text(reason)
    health.consecutive_failures += 1


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
