"""Champion details read through ``RestRegistry`` from runs and ``MLmodel`` files recorded
from a real tracking server: what is read, what is kept, and what becomes a problem.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from support.recorded import Replay, client, mlflow_snapshot, recording
from trellis.errors import SourceUnavailable
from trellis.model import ModelVersion
from trellis.sources.mlflow import RestRegistry

EXPERIMENTS = "/api/2.0/mlflow/experiments/search"
RUNS = "/api/2.0/mlflow/runs/search"
ARTIFACT = "/model-versions/get-artifact"
RECORDINGS = [
    "experiments-search",
    "runs-search",
    "get-artifact.signed",
    "get-artifact.unsigned",
    "get-artifact.missing",
]


def fraud_versions() -> list[ModelVersion]:
    fraud = {m.name: m for m in mlflow_snapshot().models}["fraud-detector"]
    return list(fraud.versions)


def recorded_replay() -> Replay:
    # The run search is matched by route: what it asks for is checked by the tests.
    return Replay(
        [recording("mlflow", name) for name in RECORDINGS],
        loose=frozenset({"experiment_ids", "filter", "max_results"}),
    )


@pytest.fixture
def answers() -> Replay:
    return recorded_replay()


@pytest.fixture
def registry(answers: Replay) -> Iterator[RestRegistry]:
    source = RestRegistry(client(answers), label="recorded")
    yield source
    source.close()


def test_signature_datasets_and_metrics_of_each_version(registry, answers):
    details = registry.version_details(fraud_versions())

    signed, unsigned, no_run = (details[("fraud-detector", n)] for n in (1, 2, 3))
    assert signed.has_signature is True
    assert signed.datasets == ("train-set", "s3://bucket/holdout.csv")
    assert dict(signed.metrics or {}) == {"loss": 0.25, "auc": 0.93}
    assert signed.problems == ()
    assert unsigned.has_signature is False
    assert dict(unsigned.metrics or {}) == {"loss": 0.4}
    # A version without a run logged nothing: known and empty, not unknown.
    assert no_run.datasets == () and dict(no_run.metrics or {}) == {}
    assert no_run.has_signature is None
    assert no_run.problems == ("MLmodel of fraud-detector version 3 could not be read: HTTP 500",)


def test_the_runs_are_found_in_one_search_of_the_active_experiments(registry, answers):
    versions = fraud_versions()

    registry.version_details(versions)

    (search,) = [r for r in answers.requests if r.url.path == RUNS]
    body = json.loads(search.content)
    experiments = recording("mlflow", "experiments-search")["body"]["experiments"]
    assert sorted(body["experiment_ids"]) == sorted(e["experiment_id"] for e in experiments)
    run_ids = sorted(v.run_id for v in versions if v.run_id)
    assert body["filter"] == "attributes.run_id IN (" + ", ".join(f"'{r}'" for r in run_ids) + ")"
    assert body["max_results"] == len(run_ids) and body["run_view_type"] == "ACTIVE_ONLY"
    artifacts = sorted(r.url.params["version"] for r in answers.requests if r.url.path == ARTIFACT)
    assert artifacts == ["1", "2", "3"]


def test_what_is_final_is_kept_and_only_the_rest_is_read_again(registry, answers):
    versions = fraud_versions()
    first = registry.version_details(versions)
    answers.requests.clear()

    again = registry.version_details(versions)

    assert again == first
    # The finished run's version is kept whole; the running run is searched again; the
    # signatures, and the MLmodel that could not be read, are not asked for again.
    assert answers.paths() == [EXPERIMENTS, RUNS]
    (search,) = answers.requests[1:]
    running = [v.run_id for v in versions if v.version == 2]
    assert json.loads(search.content)["filter"] == f"attributes.run_id IN ('{running[0]}')"


def test_an_mlmodel_read_that_times_out_is_a_problem_of_that_version_only():
    replayed = recorded_replay()

    def slow_artifacts(request: httpx.Request) -> httpx.Response:
        if request.url.path == ARTIFACT and request.url.params["version"] == "2":
            raise httpx.ReadTimeout("no answer", request=request)
        return replayed(request)

    registry = RestRegistry(client(slow_artifacts), label="recorded")
    try:
        details = registry.version_details(fraud_versions())
    finally:
        registry.close()

    assert details[("fraud-detector", 1)].has_signature is True
    unsigned = details[("fraud-detector", 2)]
    assert unsigned.has_signature is None
    assert unsigned.problems == (
        "MLmodel of fraud-detector version 2 could not be read: "
        "no answer within the client's timeout",
    )


def test_a_registry_that_cannot_be_reached_fails_the_whole_read():
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    registry = RestRegistry(client(unreachable), label="recorded")
    try:
        with pytest.raises(SourceUnavailable) as caught:
            registry.version_details(fraud_versions())
    finally:
        registry.close()

    assert caught.value.reason.startswith("ConnectError reading ")


def test_an_mlmodel_that_is_not_yaml_is_a_problem_not_a_crash():
    replayed = recorded_replay()

    def garbled(request: httpx.Request) -> httpx.Response:
        if request.url.path == ARTIFACT and request.url.params["version"] == "1":
            return httpx.Response(200, text="signature: [unclosed")
        return replayed(request)

    registry = RestRegistry(client(garbled), label="recorded")
    try:
        signed = registry.version_details(fraud_versions())[("fraud-detector", 1)]
    finally:
        registry.close()

    assert signed.has_signature is None
    assert signed.problems == (
        "MLmodel of fraud-detector version 1 could not be read: not valid YAML",
    )
    assert signed.datasets == ("train-set", "s3://bucket/holdout.csv")
