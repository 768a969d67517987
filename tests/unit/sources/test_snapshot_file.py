import json
import logging
import re
from datetime import UTC, datetime

import pytest

from trellis.model import (
    ClusterRead,
    Condition,
    Deployment,
    ModelVersion,
    RegisteredModel,
    Snapshot,
)
from trellis.sources.bad_files import set_aside
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


def _kept(taken_at: str = "2026-03-01T12:00:00+00:00", **model) -> dict:
    """A format 2 file of one model, with ``model``'s fields replacing the good ones."""
    good = {
        "name": "fraud-detector", "description": "d", "tags": {"owner": "risk"},
        "aliases": {"champion": 1}, "created_at": "2026-03-01T12:00:00+00:00",
        "updated_at": "2026-03-01T12:00:00+00:00", "versions": [],
    }  # fmt: skip
    snapshot = {"models": [{**good, **model}], "taken_at": taken_at, "registry": "sqlite:///x"}
    return {"format": 2, "snapshot": snapshot}


def test_a_missing_file_is_no_snapshot_and_nothing_is_set_aside(tmp_path):
    store = SnapshotFile(tmp_path / "snapshot.json")
    assert store.load() is None
    assert store.set_aside == [] and list(tmp_path.iterdir()) == []


BAD_FILES = {
    "a number as a name": json.dumps(_kept(name=5)),
    "a list as a tag value": json.dumps(_kept(tags={"owner": ["risk"]})),
    "a null description": json.dumps(_kept(description=None)),
    "a float as an alias's version": json.dumps(_kept(aliases={"champion": 1.0})),
    "a time without a time zone": json.dumps(_kept(created_at="2026-03-01T12:00:00")),
    "a naive taken_at": json.dumps(_kept(taken_at="2026-03-01T12:00:00")),
    "an unknown format": json.dumps({**_kept(), "format": 99}),
    "a list instead of an object": "[1, 2, 3]",
    "not JSON": "{broken",
    "not text": "\udcff\x00garbage",
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_file_that_does_not_fit_the_schema_is_set_aside_with_its_bytes(tmp_path, case, caplog):
    content = BAD_FILES[case].encode("utf-8", "surrogateescape")
    path = tmp_path / "snapshot.json"
    path.write_bytes(content)
    store = SnapshotFile(path)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H")

    assert store.load() is None

    assert not path.exists()
    [kept] = tmp_path.iterdir()
    assert re.fullmatch(r"snapshot\.json\.bad-\d{8}T\d{6}Z", kept.name), kept.name
    assert kept.name.startswith(f"snapshot.json.bad-{stamp}")
    assert kept.read_bytes() == content
    assert [(r.path, r.kept_as) for r in store.set_aside] == [(path, kept)]
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert str(path) in warning.getMessage() and kept.name in warning.getMessage()
    assert "fraud-detector" not in warning.getMessage()  # never the file's contents


def test_the_reasons_name_the_fields_that_do_not_fit(tmp_path):
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(_kept(name=5, tags={"owner": ["risk"]})))
    store = SnapshotFile(path)
    assert store.load() is None
    [record] = store.set_aside
    assert "snapshot.models.0.name: Input should be a valid string" in record.reason
    assert "snapshot.models.0.tags.owner" in record.reason


def test_a_second_bad_file_in_the_same_second_gets_its_own_name(tmp_path):
    path = tmp_path / "snapshot.json"
    moment = datetime(2026, 12, 2, 21, 45, tzinfo=UTC)
    first = set_aside(path, "x", clock=lambda: moment) if path.write_text("1") else None
    second = set_aside(path, "y", clock=lambda: moment) if path.write_text("2") else None
    assert first is not None and second is not None
    assert first.kept_as.name == "snapshot.json.bad-20261202T214500Z"
    assert second.kept_as.name == "snapshot.json.bad-20261202T214500Z-2"
    assert first.kept_as.read_text() == "1" and second.kept_as.read_text() == "2"


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
    assert loaded.deployments[0].adapters == ()  # kept before adapters were read


@pytest.mark.parametrize(
    "make",
    [
        lambda naive: Snapshot(models=(), taken_at=naive, registry="r"),
        lambda naive: ClusterRead("hub", True, naive),
        lambda naive: RegisteredModel("m", "", {}, {}, T0, naive),
        lambda naive: ModelVersion("m", 1, "READY", "s", None, "", {}, naive, T0),
    ],
)
def test_the_domain_never_holds_a_time_without_a_time_zone(make):
    with pytest.raises(ValueError, match="time zone"):
        make(datetime(2026, 3, 1, 12))


def test_the_adapters_a_server_loads_survive_a_round_trip(tmp_path):
    server = Deployment(
        cluster="edge", region="ap-south-1", namespace="llm", name="qwen", kind="Deployment",
        runtime="vllm", model_name="qwen2-0.5b", model_version="champion", ready_replicas=1,
        desired_replicas=1, gpu_requests=1, gpu_limits=1, gpu_product=None, url=None,
        conditions=(), network_policy=True, selector={"app": "qwen"},
        adapters=("qwen2-0.5b-ap-south-1", "qwen2-0.5b-eu-west-1"),
    )  # fmt: skip
    store = SnapshotFile(tmp_path / "snapshot.json")
    store.save(Snapshot(models=(), taken_at=T0, registry="x", deployments=(server,)))
    loaded = store.load()
    assert loaded is not None and loaded.deployments[0].adapters == server.adapters


def test_a_file_written_after_one_model_changed_is_the_file_written_whole(tmp_path):
    def model(name: str, description: str = "") -> RegisteredModel:
        return RegisteredModel(name, description, {"owner": "x"}, {}, T0, T0, ())

    first = Snapshot(models=(model("a"), model("b")), taken_at=T0, registry="r")
    second = Snapshot(
        models=(model("a"), model("b", "changed"), model("c")), taken_at=T0, registry="r"
    )
    kept = SnapshotFile(tmp_path / "kept.json")
    kept.save(first)
    kept.save(second)
    fresh = SnapshotFile(tmp_path / "fresh.json")
    fresh.save(second)
    assert kept.path.read_bytes() == fresh.path.read_bytes()
    written = json.loads(kept.path.read_bytes())
    assert [m["description"] for m in written["snapshot"]["models"]] == ["", "changed", ""]
    assert SnapshotFile(kept.path).load() == second
