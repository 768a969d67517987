"""The catalog service holds a read that lost every model, or every server of a cluster."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from prometheus_client import generate_latest

from support.domain import model_server as server
from support.domain import registered_model
from trellis.catalog import CatalogOptions
from trellis.model import ClusterRead, Deployment, RegisteredModel, Snapshot
from trellis.services.catalog_refresh import CatalogService
from trellis.services.drop_guard import DropPolicy
from trellis.sources.snapshot_file import SnapshotFile

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
POLICY = DropPolicy(max_share=0.5, confirm_seconds=600)
FLEET = tuple(registered_model(f"model-{i}") for i in range(10))


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Registry:
    """A registry port answering whatever models the test sets, read at the clock's time."""

    clock: Clock
    models: tuple[RegisteredModel, ...] = FLEET
    name: str = "mlflow"

    def read(self) -> Snapshot:
        return Snapshot(models=self.models, taken_at=self.clock(), registry="sqlite:///x")

    def close(self) -> None:
        pass


@dataclass
class Clusters:
    """A deployments port: each cluster lists the servers the test sets."""

    clock: Clock
    servers: dict[str, tuple[Deployment, ...]] = field(default_factory=dict)

    def read(self) -> Mapping[str, tuple[ClusterRead, tuple[Deployment, ...]]]:
        return {c: (ClusterRead(c, True, self.clock()), s) for c, s in self.servers.items()}

    def close(self) -> None:
        pass


def build(tmp_path, registry: Registry, clusters: Clusters | None = None) -> CatalogService:
    return CatalogService(
        registry=registry,
        store=SnapshotFile(tmp_path / "snapshot.json"),
        options=CatalogOptions(),
        interval_seconds=60,
        clock=registry.clock,
        deployments=clusters,
        drop_policy=POLICY,
    )


def metric(service: CatalogService, line: str) -> bool:
    return line in generate_latest(service.metrics.registry).decode()


def test_a_registry_read_with_no_models_is_held_and_nothing_is_published(tmp_path, caplog):
    clock = Clock()
    registry = Registry(clock)
    service = build(tmp_path, registry)
    assert metric(service, 'trellis_catalog_drop_held{source="mlflow"} 0.0')
    document = service.refresh()
    assert document is not None and document.model_count == 10
    kept_file = (tmp_path / "snapshot.json").read_bytes()

    registry.models = ()
    clock.advance(60)
    with caplog.at_level(logging.WARNING, logger="trellis.services.catalog_refresh"):
        assert service.refresh() is None
    assert service.document() is document
    assert (tmp_path / "snapshot.json").read_bytes() == kept_file
    assert service.stale
    report = service.health()
    assert report["drops_held"] == [
        {
            "source": "mlflow",
            "kept": 10,
            "read": 0,
            "since": clock.now.isoformat(),
            "last_read": clock.now.isoformat(),
            "reads": 1,
            "confirms_at": (clock.now + timedelta(seconds=600)).isoformat(),
        }
    ]
    assert report["sources"]["mlflow"]["state"] == "ok"  # the read worked; it is held
    assert metric(service, 'trellis_catalog_drop_held{source="mlflow"} 1.0')
    assert metric(service, 'trellis_catalog_drop_held_items{snapshot="kept",source="mlflow"} 10.0')
    assert metric(service, 'trellis_catalog_drops_total{outcome="held",source="mlflow"} 1.0')
    warning = next(r for r in caplog.records if "held" in r.getMessage())
    assert warning.levelno == logging.WARNING
    assert "0 models" in warning.getMessage() and "has 10" in warning.getMessage()


def test_a_drop_past_the_share_is_held_and_a_read_back_to_normal_clears_it(tmp_path):
    clock = Clock()
    registry = Registry(clock)
    service = build(tmp_path, registry)
    document = service.refresh()
    registry.models = FLEET[:4]  # 60 % gone
    assert service.refresh() is None
    assert service.document() is document
    registry.models = FLEET
    clock.advance(60)
    assert service.refresh() is not None
    assert not service.stale and service.health()["drops_held"] == []
    assert metric(service, 'trellis_catalog_drop_held{source="mlflow"} 0.0')
    assert metric(service, 'trellis_catalog_drops_total{outcome="cleared",source="mlflow"} 1.0')
    registry.models = FLEET[:5]  # exactly the allowed share: published at once
    assert service.refresh() is not None
    assert service.document().model_count == 5


def test_reads_that_repeat_the_drop_for_the_period_publish_it(tmp_path):
    clock = Clock()
    registry = Registry(clock)
    service = build(tmp_path, registry)
    service.refresh()
    registry.models = ()
    service.refresh()
    clock.advance(599)
    assert service.refresh() is None
    clock.advance(1)
    published = service.refresh()
    assert published is not None and published.model_count == 0
    assert not service.stale
    kept = SnapshotFile(tmp_path / "snapshot.json").load()
    assert kept is not None and kept.models == ()
    assert metric(service, 'trellis_catalog_drops_total{outcome="confirmed",source="mlflow"} 1.0')


def test_an_operator_publishes_the_held_read_at_once(tmp_path):
    clock = Clock()
    registry = Registry(clock)
    service = build(tmp_path, registry)
    service.refresh()
    assert service.confirm_drops() == ()  # nothing held, nothing done
    registry.models = FLEET[:1]
    service.refresh()
    released = service.confirm_drops()
    assert [(h.source, h.kept, h.read) for h in released] == [("mlflow", 10, 1)]
    assert service.document().model_count == 1
    assert not service.stale
    assert metric(service, 'trellis_catalog_drops_total{outcome="operator",source="mlflow"} 1.0')
    kept = SnapshotFile(tmp_path / "snapshot.json").load()
    assert kept is not None and [m.name for m in kept.models] == ["model-0"]


def test_a_restart_against_an_empty_registry_keeps_serving_the_kept_snapshot(tmp_path):
    clock = Clock()
    registry = Registry(clock)
    build(tmp_path, registry).refresh()
    registry.models = ()
    restarted = build(tmp_path, registry)
    assert restarted.load_kept()
    assert restarted.refresh() is None
    assert restarted.document().model_count == 10
    assert restarted.health()["drops_held"][0]["kept"] == 10


def test_a_cluster_that_lists_no_servers_is_held_alone(tmp_path):
    clock = Clock()
    clusters = Clusters(
        clock,
        {"hub": (server("hub", "a"), server("hub", "b")), "edge": (server("edge", "c"),)},
    )
    service = build(tmp_path, Registry(clock), clusters)
    service.refresh()
    clusters.servers = {"hub": (server("hub", "a"),), "edge": ()}  # hub lost half: by design
    clock.advance(60)
    document = service.refresh()
    assert document is not None  # the registry and the hub move on
    served = [(d.cluster, d.name) for d in service.snapshot().deployments]
    assert served == [("edge", "c"), ("hub", "a")]
    kept = SnapshotFile(tmp_path / "snapshot.json").load()
    assert kept is not None and [d.name for d in kept.deployments] == ["c", "a"]
    assert service.stale
    assert [h["source"] for h in service.health()["drops_held"]] == ["kubernetes:edge"]
    assert metric(service, 'trellis_catalog_drop_held{source="kubernetes:edge"} 1.0')

    clock.advance(600)
    service.refresh()
    assert [(d.cluster, d.name) for d in service.snapshot().deployments] == [("hub", "a")]
    assert not service.stale


def test_an_operator_confirms_a_clusters_drop(tmp_path):
    clock = Clock()
    clusters = Clusters(clock, {"edge": (server("edge", "c"),)})
    registry = Registry(clock)
    service = build(tmp_path, registry, clusters)
    service.refresh()
    clusters.servers = {"edge": ()}
    registry.models = ()  # both held at once
    service.refresh()
    assert [h.source for h in service.drops_held()] == ["kubernetes:edge", "mlflow"]
    assert service.snapshot().deployments != ()
    assert [h.source for h in service.confirm_drops()] == ["kubernetes:edge", "mlflow"]
    assert service.snapshot().deployments == () and service.snapshot().models == ()
    assert service.drops_held() == ()
