"""The catalog service with several clusters: one failing cluster keeps its servers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from support.domain import model_server as server
from trellis.catalog import CatalogOptions
from trellis.errors import SourceUnavailable
from trellis.model import ClusterRead, Deployment, Snapshot
from trellis.services.catalog_refresh import CatalogService, merge_clusters
from trellis.sources.snapshot_file import SnapshotFile

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


@dataclass
class Registry:
    """A registry port that answers an empty registry, or fails when told to."""

    name: str = "mlflow"
    fail: bool = False

    def read(self) -> Snapshot:
        if self.fail:
            raise SourceUnavailable("mlflow", "down")
        return Snapshot(models=(), taken_at=datetime.now(UTC), registry="sqlite:///x")

    def close(self) -> None:
        pass


@dataclass
class Clusters:
    """A deployments port whose answers the test sets per read."""

    answers: list[Mapping[str, tuple[ClusterRead, tuple[Deployment, ...]]]] = field(
        default_factory=list
    )
    closed: bool = False

    def read(self) -> Mapping[str, tuple[ClusterRead, tuple[Deployment, ...]]]:
        return self.answers.pop(0)

    def close(self) -> None:
        self.closed = True


def ok(cluster: str, *servers: Deployment) -> tuple[ClusterRead, tuple[Deployment, ...]]:
    return ClusterRead(cluster, True, T0), servers


def failed(cluster: str) -> tuple[ClusterRead, tuple[Deployment, ...]]:
    return ClusterRead(cluster, False, T0 + timedelta(minutes=1), "timed out after 5 s"), ()


def test_merge_keeps_a_failed_clusters_previous_servers_only():
    previous = Snapshot(
        models=(),
        taken_at=T0,
        registry="x",
        deployments=(server("hub", "a"), server("edge", "b"), server("edge", "c")),
    )
    deployments, clusters = merge_clusters(
        previous, {"hub": ok("hub", server("hub", "a", ready=2)), "edge": failed("edge")}
    )
    assert [(d.cluster, d.name, d.ready_replicas) for d in deployments] == [
        ("edge", "b", 1),
        ("edge", "c", 1),
        ("hub", "a", 2),
    ]
    assert clusters["edge"].ok is False and clusters["hub"].ok is True
    assert merge_clusters(None, {"edge": failed("edge")})[0] == ()
    # A cluster whose drop to zero is held keeps its servers like a failed one.
    held, _ = merge_clusters(previous, {"hub": ok("hub"), "edge": ok("edge")}, held={"edge"})
    assert [(d.cluster, d.name) for d in held] == [("edge", "b"), ("edge", "c")]


def service(tmp_path, registry: Registry, clusters: Clusters) -> CatalogService:
    return CatalogService(
        registry=registry,
        store=SnapshotFile(tmp_path / "snapshot.json"),
        options=CatalogOptions(),
        interval_seconds=60,
        deployments=clusters,
    )


def test_a_failing_cluster_marks_the_catalog_stale_and_keeps_its_servers(tmp_path):
    clusters = Clusters(
        [
            {"hub": ok("hub", server("hub", "a")), "edge": ok("edge", server("edge", "b"))},
            {"hub": ok("hub", server("hub", "a")), "edge": failed("edge")},
            {"hub": ok("hub", server("hub", "a")), "edge": ok("edge", server("edge", "c"))},
        ]
    )
    catalog = service(tmp_path, Registry(), clusters)
    catalog.refresh()
    assert not catalog.stale
    catalog.refresh()
    assert catalog.stale
    health = catalog.health()["sources"]
    assert health["kubernetes:edge"]["state"] == "failing"
    assert health["kubernetes:edge"]["last_error"] == "timed out after 5 s"
    assert health["kubernetes:hub"]["state"] == "ok"
    kept = SnapshotFile(tmp_path / "snapshot.json").load()
    assert kept is not None and [d.name for d in kept.deployments] == ["b", "a"]
    catalog.refresh()  # the cluster answers again, with its server replaced
    assert not catalog.stale
    kept = SnapshotFile(tmp_path / "snapshot.json").load()
    assert kept is not None and [d.name for d in kept.deployments] == ["c", "a"]
    catalog.stop()
    assert clusters.closed


def test_a_registry_outage_changes_nothing_served(tmp_path):
    registry = Registry()
    catalog = service(tmp_path, registry, Clusters([{"hub": ok("hub", server("hub", "a"))}]))
    document = catalog.refresh()
    registry.fail = True
    assert catalog.refresh() is None
    assert catalog.document() is document
    assert catalog.stale
