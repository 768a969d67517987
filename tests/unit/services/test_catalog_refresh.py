"""The catalog service against fakes: refresh, a failed read, a restart, its background loop."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest
from prometheus_client import generate_latest

from support.domain import registered_model
from support.fakes import FakeRegistry, catalog_service
from support.timing import eventually
from trellis.errors import NotReady
from trellis.model import Snapshot
from trellis.sources.snapshot_file import SnapshotFile

FLEET = (registered_model("fraud"), registered_model("churn"))


service = catalog_service


def test_nothing_is_served_before_the_first_read(tmp_path):
    catalog = service(tmp_path, FakeRegistry(FLEET))
    with pytest.raises(NotReady):
        catalog.document()
    health = catalog.health()
    assert health["ready"] is False
    assert health["sources"]["mlflow"]["state"] == "unknown"


def test_a_refresh_publishes_the_read_and_keeps_it_on_disk(tmp_path):
    catalog = service(tmp_path, FakeRegistry(FLEET))
    document = catalog.refresh()
    assert document is not None
    assert catalog.document() is document
    assert document.model_count == 2
    assert {m.name for m in catalog.snapshot().models} == {"fraud", "churn"}
    kept = SnapshotFile(tmp_path / "snapshot.json").load()
    assert kept is not None
    assert {m.name for m in kept.models} == {"fraud", "churn"}
    assert catalog.health()["stale"] is False


def test_a_failed_read_keeps_the_last_good_snapshot_and_says_so(tmp_path):
    registry = FakeRegistry(FLEET)
    catalog = service(tmp_path, registry)
    served = catalog.refresh()
    registry.failing = "connection refused"
    assert catalog.refresh() is None
    assert catalog.document() is served
    health = catalog.health()
    assert health["stale"] is True
    assert health["sources"]["mlflow"]["state"] == "failing"
    assert health["sources"]["mlflow"]["last_error"] == "connection refused"
    assert (
        'trellis_source_errors_total{source="mlflow"} 1.0'
        in generate_latest(catalog.metrics.registry).decode()
    )
    registry.failing = None
    assert catalog.refresh() is not None
    assert catalog.health()["sources"]["mlflow"]["consecutive_failures"] == 0


def test_a_restart_serves_the_kept_snapshot_while_the_registry_is_down(tmp_path):
    service(tmp_path, FakeRegistry(FLEET)).refresh()
    restarted = service(tmp_path, FakeRegistry(FLEET, failing="connection refused"))
    assert restarted.load_kept() is True
    assert restarted.refresh() is None
    assert restarted.document().model_count == 2
    assert restarted.health()["stale"] is True


def test_the_background_loop_refreshes_and_stop_releases_the_sources(tmp_path):
    registry = FakeRegistry(FLEET)
    catalog = service(tmp_path, registry, interval=3_600.0)
    catalog.start()
    try:
        assert eventually(lambda: catalog.health()["ready"])
    finally:
        catalog.stop()
    assert registry.closed
    assert catalog.document().model_count == 2


@dataclass
class CrashingOnce(FakeRegistry):
    """A registry whose first read hits a bug (not an outage)."""

    reads: int = 0

    def read(self) -> Snapshot:
        self.reads += 1
        if self.reads == 1:
            raise RuntimeError("bug")
        return super().read()


def test_a_crashing_refresh_is_logged_and_the_loop_goes_on(tmp_path, caplog):
    registry = CrashingOnce(FLEET)
    catalog = service(tmp_path, registry, interval=0.01)
    with caplog.at_level(logging.ERROR, logger="trellis.services.catalog_refresh"):
        catalog.start()
        try:
            assert eventually(lambda: catalog.health()["ready"])
        finally:
            catalog.stop()
    crashes = [r for r in caplog.records if r.getMessage() == "catalog refresh crashed"]
    assert [r.name for r in crashes] == ["trellis.services.catalog_refresh"]
