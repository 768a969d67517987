from datetime import UTC, datetime

from trellis.model import ModelVersion, RegisteredModel, Snapshot
from trellis.sources.snapshot_file import SnapshotFile

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_a_snapshot_survives_a_round_trip(tmp_path):
    snapshot = Snapshot(
        models=(
            RegisteredModel(
                "名前 🔥",
                "d",
                {"owner": "x"},
                {"champion": 1},
                T0,
                T0,
                (ModelVersion("名前 🔥", 1, "READY", "s3://x", "run1", "", {"k": "v"}, T0, T0),),
            ),
        ),
        taken_at=T0,
        registry="http://mlflow",
    )
    store = SnapshotFile(tmp_path / "state" / "snapshot.json")
    store.save(snapshot)
    assert store.load() == snapshot
    assert not list((tmp_path / "state").glob(".snapshot-*"))


def test_missing_or_damaged_files_read_as_no_snapshot(tmp_path):
    store = SnapshotFile(tmp_path / "snapshot.json")
    assert store.load() is None
    store.path.write_text("{not json")
    assert store.load() is None
    store.path.write_text('{"format": 99, "snapshot": {}}')
    assert store.load() is None
    store.path.write_text('{"format": 1, "snapshot": {"models": [{"name": 1}]}}')
    assert store.load() is None
