"""Champion details (signature, dataset lineage, metrics) from a real MLflow registry.

One registry is seeded through MLflow's own client with real logged models (tiny
scikit-learn models saved by ``mlflow.sklearn``, with and without a signature), runs with
metrics and dataset inputs, and versions of every source kind; then both adapters read it:
``RestRegistry`` through a real tracking server, ``SqlRegistry`` through the same SQLite file.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
import yaml

from support.registry import client
from support.services import MlflowServer, free_port, mlflow_server
from support.timing import scaled
from trellis.errors import SourceUnavailable
from trellis.model import ModelVersion
from trellis.ports import RegistrySource
from trellis.sources.mlflow import RestRegistry, SqlRegistry

pytestmark = pytest.mark.mlflow

RUNS_SEARCH = "/api/2.0/mlflow/runs/search"
EXPERIMENTS_SEARCH = "/api/2.0/mlflow/experiments/search"
ARTIFACT = "/model-versions/get-artifact"
VERSION_GET = "/api/2.0/mlflow/model-versions/get"
VERSIONS_SEARCH = "/api/2.0/mlflow/model-versions/search"
LOGGED_MODEL_GET = "/api/2.0/mlflow/logged-models"
#: Runs are searched in batches of this many (the adapters' default is larger): a small
#: batch shows the batching with few runs to seed.
BATCH = 10
BULK = 20  # with the named models, runs for three search batches


@dataclass(frozen=True)
class Expected:
    has_signature: bool | None
    datasets: tuple[str, ...] | None
    metrics: dict[str, float] | None


@dataclass
class Seeded:
    db: Path
    expected: dict[tuple[str, int], Expected] = field(default_factory=dict)
    runs: set[str] = field(default_factory=set)
    #: The MLmodel file of the ``broken`` model's logged model, moved away by one test.
    broken: Path = Path()

    @property
    def uri(self) -> str:
        return f"sqlite:///{self.db}"


def _local(uri: str) -> Path:
    return Path(urlparse(uri).path) if uri.startswith("file:") else Path(uri)


def seed_details(db: Path, scratch: Path) -> Seeded:
    """Every case the details read must tell apart, in one registry."""
    import pandas as pd
    from mlflow import sklearn as mlflow_sklearn
    from mlflow.entities import Dataset, DatasetInput, InputTag, LoggedModelStatus, Metric
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    seeded = Seeded(db)
    mlflow = client(seeded.uri)
    artifacts = db.parent / "artifacts"
    experiment = mlflow.create_experiment("details", artifact_location=str(artifacts / "1"))
    features = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    tiny = LogisticRegression().fit(features, [0, 1, 0, 1])
    signature = infer_signature(features, tiny.predict(features))

    def run(metrics: dict[str, list[float]], datasets: list[Dataset], where: str) -> str:
        run_id = mlflow.create_run(where).info.run_id
        mlflow.log_batch(
            run_id,
            metrics=[
                Metric(key, value, 1_700_000_000_000 + step, step)
                for key, values in metrics.items()
                for step, value in enumerate(values)
            ],
        )
        if datasets:
            context = [InputTag("mlflow.data.context", "training")]
            mlflow.log_inputs(run_id, [DatasetInput(d, context) for d in datasets])
        mlflow.set_terminated(run_id)
        seeded.runs.add(run_id)
        return run_id

    def saved(signed: bool) -> Path:
        """A real model folder (``MLmodel``, pickled model, environment files)."""
        local = scratch / f"model-{len(list(scratch.iterdir()))}"
        mlflow_sklearn.save_model(
            tiny, local, signature=signature if signed else None, pip_requirements=[]
        )
        return local

    def logged_model(run_id: str, signed: bool, where: str = experiment) -> tuple[str, Path]:
        """An MLflow 3 logged model of the run, as ``log_model`` makes one."""
        model = mlflow.create_logged_model(where, name="model", source_run_id=run_id)
        mlflow.log_model_artifacts(model.model_id, str(saved(signed)))
        mlflow.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
        folder = _local(mlflow.get_logged_model(model.model_id).artifact_location)
        return model.model_id, folder / "MLmodel"

    def register(
        name: str, source: str, run_id: str | None, expected: Expected, champion: bool = True
    ) -> None:
        if not mlflow.search_registered_models(f"name = '{name}'"):
            mlflow.create_registered_model(name)
        version = mlflow.create_model_version(name, source=source, run_id=run_id)
        if champion:
            mlflow.set_registered_model_alias(name, "champion", version.version)
        seeded.expected[(name, int(version.version))] = expected

    train = Dataset("train-set", "d1", "s3", '{"uri": "s3://bucket/train.csv"}')
    unnamed = Dataset("", "d2", "s3", '{"uri": "s3://bucket/holdout.csv"}')

    metrics = {"loss": [0.9, 0.4, 0.2], "accuracy": [0.81, 0.93]}
    signed_run = run(metrics, [train, unnamed], experiment)
    shared, shared_mlmodel = logged_model(signed_run, signed=True)
    register(
        "signed",
        f"models:/{shared}",
        signed_run,
        Expected(True, ("train-set", "s3://bucket/holdout.csv"), {"loss": 0.2, "accuracy": 0.93}),
    )

    # A runs: source naming the run's MLflow 3 logged model, as ``runs:/<run>/model`` does.
    register(
        "runs-uri",
        f"runs:/{signed_run}/model",
        signed_run,
        Expected(True, ("train-set", "s3://bucket/holdout.csv"), {"loss": 0.2, "accuracy": 0.93}),
    )

    unsigned_run = run({"rmse": [2.0, 1.5]}, [], experiment)
    model, _ = logged_model(unsigned_run, signed=False)
    register("unsigned", f"models:/{model}", unsigned_run, Expected(False, (), {"rmse": 1.5}))

    # MLflow 2 style: the model is a folder of the run's artifacts, the source a runs: URI.
    legacy_run = run({"f1": [0.7]}, [Dataset("legacy-data", "d3", "local", "{}")], experiment)
    mlflow.log_artifacts(legacy_run, str(saved(signed=True)), "model")
    register(
        "legacy",
        f"runs:/{legacy_run}/model",
        legacy_run,
        Expected(True, ("legacy-data",), {"f1": 0.7}),
    )

    broken_run = run({"auc": [0.88]}, [train], experiment)
    model, seeded.broken = logged_model(broken_run, signed=True)
    register(
        "broken", f"models:/{model}", broken_run, Expected(True, ("train-set",), {"auc": 0.88})
    )

    # A version without a run (its source a plain artifact location): nothing was logged for
    # it, which is known, not unknown.
    register("no-run", str(shared_mlmodel.parent), None, Expected(True, (), {}))

    # A run whose experiment was deleted afterwards: its details are a problem, not a crash.
    gone = mlflow.create_experiment("gone", artifact_location=str(artifacts / "gone"))
    orphan_run = run({"mae": [3.0]}, [train], gone)
    model, _ = logged_model(orphan_run, signed=True, where=gone)
    register("orphan", f"models:/{model}", orphan_run, Expected(True, None, None))
    mlflow.delete_experiment(gone)

    for number in range(BULK):
        bulk_run = run({"score": [number / 1000]}, [], experiment)
        expected = Expected(True, (), {"score": number / 1000})
        register("bulk", f"models:/{shared}", bulk_run, expected, champion=number == 0)
    return seeded


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    folder = tmp_path_factory.mktemp("details")
    scratch = folder / "scratch"
    scratch.mkdir()
    db = folder / "mlflow.db"
    with pytest.MonkeyPatch.context() as patch:
        # MLflow's SQL registry resolves a ``models:/`` source with a client on the global
        # tracking URI, whatever the client that registers the version was given.
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
        return seed_details(db, scratch)


@pytest.fixture(scope="module")
def server(seeded: Seeded) -> Iterator[MlflowServer]:
    with mlflow_server(seeded.db) as running:
        yield running


@contextmanager
def rest(url: str, requests: list[str] | None = None) -> Iterator[RestRegistry]:
    hooks = {"request": [lambda r: requests.append(r.url.path)]} if requests is not None else {}
    with httpx.Client(base_url=url, timeout=scaled(30), event_hooks=hooks) as http:
        registry = RestRegistry(http, label=url, run_batch_size=BATCH)
        try:
            yield registry
        finally:
            registry.close()


@contextmanager
def sql(uri: str) -> Iterator[SqlRegistry]:
    registry = SqlRegistry(uri, label="sqlite", timeout_seconds=scaled(60), run_batch_size=BATCH)
    try:
        yield registry
    finally:
        registry.close()


def champions(registry: RegistrySource) -> list[ModelVersion]:
    """Each champion, and every version of ``bulk`` so that the runs fill several batches."""
    return [
        version
        for model in registry.read().models
        for version in model.versions
        if version.version == model.version_for_alias("champion") or model.name == "bulk"
    ]


@pytest.fixture(params=["rest", "sqlite"])
def adapter(
    request: pytest.FixtureRequest, seeded: Seeded, server: MlflowServer
) -> Callable[..., AbstractContextManager[RegistrySource]]:
    """Each adapter over the same registry: REST through the server, SQL on its file."""

    def make(requests: list[str] | None = None) -> AbstractContextManager[RegistrySource]:
        return rest(server.url, requests) if request.param == "rest" else sql(seeded.uri)

    return make


def test_each_version_tells_its_signature_lineage_and_metrics(adapter, seeded: Seeded):
    with adapter() as registry:
        versions = champions(registry)
        details = registry.version_details(versions)

    assert set(details) == set(seeded.expected)
    for key, expected in seeded.expected.items():
        got = details[key]
        assert (got.model_name, got.version) == key
        assert got.has_signature is expected.has_signature, (key, got.problems)
        assert got.datasets == expected.datasets, key
        assert (dict(got.metrics) if got.metrics is not None else None) == expected.metrics, key
        if key[0] == "orphan":
            assert len(got.problems) == 1
            assert "orphan version 1" in got.problems[0]
        else:
            assert got.problems == (), key


def test_details_are_kept_and_never_read_twice(adapter, seeded: Seeded):
    with adapter() as registry:
        versions = champions(registry)
        first = registry.version_details(versions)
        again = registry.version_details(list(reversed(versions)))

    kept = {key for key in seeded.expected if key[0] != "orphan"}
    assert all(again[key] is first[key] for key in kept)  # the same objects: nothing re-read
    # The orphan's run could not be read, so it is read again and still a problem.
    assert again[("orphan", 1)] is not first[("orphan", 1)]
    assert again[("orphan", 1)].metrics is None


def test_runs_are_searched_in_batches_and_kept_details_cost_no_request(
    server: MlflowServer, seeded: Seeded
):
    requests: list[str] = []
    with rest(server.url, requests) as registry:
        versions = champions(registry)
        kept = [v for v in versions if v.model_name != "orphan"]
        requests.clear()
        registry.version_details(versions)

        assert len(seeded.runs) > 2 * BATCH
        assert requests.count(RUNS_SEARCH) == math.ceil(len(seeded.runs) / BATCH)
        assert requests.count(EXPERIMENTS_SEARCH) == 1
        assert requests.count(ARTIFACT) == len(versions)
        assert len(requests) == requests.count(RUNS_SEARCH) + 1 + len(versions)

        requests.clear()
        registry.version_details(kept)
        assert requests == []

        # The orphan's run is searched again; its MLmodel, read the first time, is not.
        registry.version_details(versions)
        assert requests == [EXPERIMENTS_SEARCH, RUNS_SEARCH]


def test_an_unreadable_mlmodel_is_a_problem_of_that_version_and_read_again_later(
    adapter, seeded: Seeded, server: MlflowServer, monkeypatch: pytest.MonkeyPatch
):
    retry = 1.0
    monkeypatch.setattr("trellis.sources.mlflow.details.MLMODEL_RETRY_SECONDS", retry)
    requests: list[str] = []
    hidden = seeded.broken.with_name("MLmodel.hidden")
    with adapter(requests) as registry:
        versions = [v for v in champions(registry) if v.model_name in ("broken", "signed")]
        seeded.broken.rename(hidden)
        try:
            first = registry.version_details(versions)
            requests.clear()
            second = registry.version_details(versions)
            retried = list(requests)
        finally:
            hidden.rename(seeded.broken)
        # Within the retry period the failure is kept: no request per run for it.
        assert registry.version_details(versions)[("broken", 1)].has_signature is None
        time.sleep(retry + 0.1)
        third = registry.version_details(versions)
        requests.clear()
        fourth = registry.version_details(versions)

    for details in (first[("broken", 1)], second[("broken", 1)]):
        assert details.has_signature is None
        assert len(details.problems) == 1
        assert details.problems[0].startswith("MLmodel of broken version 1 could not be read: ")
        # The run was read: only the signature is unknown.
        assert details.datasets == ("train-set",)
        assert details.metrics == {"auc": 0.88}
    assert first[("signed", 1)].has_signature is True
    assert second[("signed", 1)] is first[("signed", 1)]
    if isinstance(registry, RestRegistry):
        assert "HTTP 404" in first[("broken", 1)].problems[0]
        assert retried.count(ARTIFACT) == 0  # not asked again within the retry period
        assert retried.count(RUNS_SEARCH) == 1  # its run was read whole: searched again
    assert third[("broken", 1)].has_signature is True
    assert third[("broken", 1)].problems == ()
    assert fourth[("broken", 1)] is third[("broken", 1)]
    assert requests == []


def test_a_registry_that_cannot_be_reached_is_unavailable(seeded: Seeded, tmp_path: Path):
    with sql(seeded.uri) as registry:
        versions = champions(registry)
    with (
        rest(f"http://127.0.0.1:{free_port()}") as registry,
        pytest.raises(SourceUnavailable, match="ConnectError"),
    ):
        registry.version_details(versions)

    # MLflow makes a missing SQLite file afresh; one that is not a database cannot be read.
    garbage = tmp_path / "mlflow.db"
    garbage.write_bytes(b"this is not an SQLite database" * 100)
    with sql(f"sqlite:///{garbage}") as registry, pytest.raises(SourceUnavailable):
        registry.version_details(versions)


def test_only_the_mlmodel_file_tells_a_signature_not_the_version_or_its_logged_model(
    server: MlflowServer,
):
    """What MLflow 3 answers for a version (get and search) and for the logged model it points
    at carries no signature; the ``MLmodel`` file does, so the adapters read that. Should a
    later MLflow add one to these answers, this fails and the adapters should use it.
    """
    with httpx.Client(base_url=server.url, timeout=scaled(30)) as http:
        got = http.get(VERSION_GET, params={"name": "signed", "version": "1"})
        searched = http.get(VERSIONS_SEARCH, params={"filter": "name = 'signed'"})
        version = got.json()["model_version"]
        model_id = version["source"].removeprefix("models:/")
        logged = http.get(f"{LOGGED_MODEL_GET}/{model_id}")
        mlmodel = http.get(ARTIFACT, params={"name": "signed", "version": "1", "path": "MLmodel"})

    assert model_id.startswith("m-")
    for answer in (got, searched, logged):
        assert answer.status_code == 200, answer.text
        assert "signature" not in answer.text.lower(), answer.text
    assert logged.json()["model"]["info"]["model_id"] == model_id
    assert yaml.safe_load(mlmodel.text)["signature"]["inputs"]
    with rest(server.url) as registry:
        (signed,) = next(m for m in registry.read().models if m.name == "signed").versions
        assert registry.version_details([signed])[("signed", 1)].has_signature is True
