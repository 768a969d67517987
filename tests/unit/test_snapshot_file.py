import json
from datetime import UTC, datetime

from trellis.model import (
    ClusterRead,
    Condition,
    Deployment,
    ModelVersion,
    RegisteredModel,
    Snapshot,
)
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
        deployments=(
            Deployment(
                cluster="hub",
                region="eu-west-1",
                namespace="fraud",
                name="fraud-detector",
                kind="InferenceService",
                runtime="kserve-mlserver",
                model_name="名前 🔥",
                model_version="champion",
                ready_replicas=1,
                desired_replicas=2,
                gpu_requests=1,
                gpu_limits=1,
                gpu_product="NVIDIA-A10G",
                url=None,
                conditions=(Condition("Ready", "False", "Pending", "waiting"),),
                network_policy=True,
                selector={"serving.kserve.io/inferenceservice": "fraud-detector"},
                labels={"trellis.dev/region": "eu-west-1"},
                runs_as_non_root=False,
            ),
        ),
        clusters={"hub": ClusterRead("hub", False, T0, "timed out")},
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


def test_a_snapshot_kept_before_deployments_existed_still_loads(tmp_path):
    store = SnapshotFile(tmp_path / "snapshot.json")
    store.path.write_text(
        '{"format": 1, "snapshot": {"models": [], "taken_at": "2026-03-01T12:00:00+00:00",'
        ' "registry": "sqlite:///x"}}'
    )
    loaded = store.load()
    assert loaded is not None and loaded.deployments == () and loaded.clusters == {}


def test_a_format_2_snapshot_kept_before_runs_as_non_root_existed_reads_it_as_not_said(tmp_path):
    store = SnapshotFile(tmp_path / "snapshot.json")
    deployment = {
        "cluster": "hub", "region": "eu-west-1", "namespace": "n", "name": "d",
        "kind": "Deployment", "runtime": "vllm", "model_name": "m", "model_version": None,
        "ready_replicas": 1, "desired_replicas": 1, "gpu_requests": 0, "gpu_limits": 0,
        "gpu_product": None, "url": None, "network_policy": False, "conditions": [],
        "selector": {"app": "d"}, "labels": {},
    }  # fmt: skip
    store.path.write_text(
        json.dumps(
            {
                "format": 2,
                "snapshot": {
                    "models": [],
                    "taken_at": "2026-03-01T12:00:00+00:00",
                    "registry": "sqlite:///x",
                    "deployments": [deployment],
                },
            }
        )
    )
    loaded = store.load()
    assert loaded is not None and [d.runs_as_non_root for d in loaded.deployments] == [None]
