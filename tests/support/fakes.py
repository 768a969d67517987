"""Fakes of the ports the services use: an in-memory registry, a canned Prometheus, a lease.

Each satisfies the interface the services type against (``RegistrySource``,
``PrometheusSource``, ``Lease``) with the methods they call, records what it was asked, and fails on
demand with the ``SourceUnavailable`` a real adapter raises.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from trellis.catalog import CatalogOptions
from trellis.errors import NotFound, SourceUnavailable
from trellis.model import (
    ChampionDetails,
    MetricPoint,
    ModelVersion,
    RegisteredModel,
    Sample,
    Series,
    Snapshot,
)
from trellis.services.catalog_refresh import CatalogService
from trellis.sources.snapshot_file import SnapshotFile

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


@dataclass
class FakeRegistry:
    """A registry holding ``models``; champion details and run metrics come from the test."""

    models: tuple[RegisteredModel, ...] = ()
    details: dict[tuple[str, int], ChampionDetails] = field(default_factory=dict)
    #: Metric histories by run id and metric name.
    runs: dict[str, dict[str, list[MetricPoint]]] = field(default_factory=dict)
    clock: Callable[[], datetime] = lambda: T0
    name: str = "mlflow"
    #: Why every read fails; None when reads succeed.
    failing: str | None = None
    asked_details: list[tuple[tuple[str, int], ...]] = field(default_factory=list)
    #: The names each ``read_models`` asked for, and how many full reads were made.
    asked_models: list[tuple[str, ...]] = field(default_factory=list)
    full_reads: int = 0
    closed: bool = False

    def _check(self) -> None:
        if self.failing is not None:
            raise SourceUnavailable(self.name, self.failing)

    def read(self) -> Snapshot:
        self._check()
        self.full_reads += 1
        return Snapshot(models=self.models, taken_at=self.clock(), registry="fake://registry")

    def read_models(self, names: Collection[str]) -> tuple[RegisteredModel, ...] | None:
        self._check()
        self.asked_models.append(tuple(sorted(names)))
        if any("'" in name for name in names):  # as the MLflow adapters: no filter can say it
            return None
        return tuple(m for m in self.models if m.name in names)

    def version_details(
        self, versions: Sequence[ModelVersion]
    ) -> dict[tuple[str, int], ChampionDetails]:
        self.asked_details.append(tuple((v.model_name, v.version) for v in versions))
        self._check()
        keys = ((v.model_name, v.version) for v in versions)
        return {key: self.details[key] for key in keys if key in self.details}

    def run_metric_keys(self, run_id: str) -> list[str]:
        self._check()
        if run_id not in self.runs:
            raise NotFound(f"run {run_id} does not exist")
        return sorted(self.runs[run_id])

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        self._check()
        return list(self.runs[run_id][key])

    def close(self) -> None:
        self.closed = True


@dataclass
class FakePrometheus:
    """A Prometheus answering each query from the first canned answer whose text it contains.

    ``samples`` answer instant queries and ``series`` range queries, both keyed by a piece of
    PromQL (a metric name, say); a query nothing matches has no samples. ``failing`` makes
    every query whose text contains one of its keys fail with the given reason.
    """

    samples: dict[str, list[Sample]] = field(default_factory=dict)
    series: dict[str, list[Series]] = field(default_factory=dict)
    failing: dict[str, str] = field(default_factory=dict)
    label: str = "prometheus"
    queries: list[str] = field(default_factory=list)
    closed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _asked(self, promql: str) -> None:
        with self._lock:
            self.queries.append(promql)
        for piece, reason in self.failing.items():
            if piece in promql:
                raise SourceUnavailable("prometheus", reason)

    def query(self, promql: str, at: datetime | None = None) -> list[Sample]:
        self._asked(promql)
        return next((list(v) for k, v in self.samples.items() if k in promql), [])

    def query_range(
        self, promql: str, start: datetime, end: datetime, step_seconds: float
    ) -> list[Series]:
        self._asked(promql)
        return next((list(v) for k, v in self.series.items() if k in promql), [])

    def close(self) -> None:
        self.closed = True


def labels(server_namespace: str, server: str, region: str) -> Mapping[str, str]:
    """The labels a fleet or page query answers a server's row with."""
    return {"namespace": server_namespace, "inferenceservice": server, "region": region}


@dataclass
class LeaseHolder:
    """Who holds the leases made from it: the stand-in for the database they share."""

    holder: str | None = None


@dataclass
class FakeLease:
    """One replica's lease on a shared ``LeaseHolder``; ``lose_after`` tries drop it once."""

    shared: LeaseHolder
    replica: str
    name: str = "fake lease"
    lose_after: int | None = None
    tries: int = 0
    held: bool = False

    def try_acquire(self) -> bool:
        self.tries += 1
        if self.lose_after is not None and self.tries > self.lose_after:
            self.lose_after = None
            if self.shared.holder == self.replica:
                self.shared.holder = "someone else"  # as if its connection had died
        if self.shared.holder is None:
            self.shared.holder = self.replica
        self.held = self.shared.holder == self.replica
        return self.held

    def release(self) -> None:
        if self.shared.holder == self.replica:
            self.shared.holder = None
        self.held = False


def catalog_service(
    tmp_path: Path, registry: FakeRegistry, interval: float = 60.0
) -> CatalogService:
    """The catalog service over ``registry``, its snapshot kept under ``tmp_path``, at ``T0``."""
    return CatalogService(
        registry=registry,
        store=SnapshotFile(tmp_path / "snapshot.json"),
        options=CatalogOptions(),
        interval_seconds=interval,
        clock=lambda: T0,
    )
