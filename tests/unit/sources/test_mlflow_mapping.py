"""Registry JSON recorded from a real tracking server, mapped to the domain.

Names, tags and descriptions are free text in MLflow: the mapping keeps them exactly,
whatever they hold, since catalog names are derived from them later.
"""

from __future__ import annotations

from datetime import UTC, datetime

from support.recorded import mlflow_snapshot, recording
from trellis.sources.mlflow import to_domain
from trellis.sources.mlflow.mapping import points, run_facts

HOSTILE = "Façade 'détection' \"v2\" <b>&amp; 🔥 %2F 名前  "


def _body(name: str) -> dict:
    return recording("mlflow", name)["body"]


def test_every_model_is_kept_with_its_versions_in_order():
    snapshot = mlflow_snapshot()  # through to_domain

    assert [m.name for m in snapshot.models] == [HOSTILE, "fraud-detector", "zz-empty"]
    by_name = {m.name: m for m in snapshot.models}
    assert [v.version for v in by_name["fraud-detector"].versions] == [1, 2, 3]
    assert by_name["zz-empty"].versions == ()
    assert snapshot.registry == "recorded"


def test_a_hostile_name_and_its_tags_are_kept_exactly():
    hostile = {m.name: m for m in mlflow_snapshot().models}[HOSTILE]

    assert hostile.tags == {"owner": "Risk ML 🔥", "tags": "a b,,UPPER"}
    (version,) = hostile.versions
    assert version.model_name == HOSTILE
    assert version.tags == {"note": "n\nl"}
    assert version.run_id is None


def test_aliases_descriptions_sources_and_times_come_from_the_answer():
    fraud = {m.name: m for m in mlflow_snapshot().models}["fraud-detector"]

    assert fraud.aliases == {"champion": 1, "challenger": 2}
    assert fraud.description == "Flags card payments that look fraudulent."
    assert fraud.tags == {"owner": "group:default/risk", "system": "payments"}
    first, second, third = fraud.versions
    assert first.source.startswith("models:/m-") and first.run_id
    assert second.run_id and second.run_id != first.run_id
    assert third.source == "s3://nowhere/fraud/3" and third.run_id is None
    assert first.status == "READY"
    assert first.created_at.tzinfo is UTC
    assert fraud.created_at < first.created_at < third.created_at
    assert fraud.updated_at >= third.created_at


def test_versions_of_a_model_missing_from_the_model_pages_are_left_out():
    versions = _body("model-versions-search.page-1")["model_versions"]

    snapshot = to_domain([], versions, registry="recorded")

    assert snapshot.models == ()


def test_metric_history_points_are_ordered_by_step_then_time():
    metrics = _body("metrics-get-history")["metrics"]

    history = points(reversed(metrics))

    assert [(p.step, p.value) for p in history] == [(0, 0.9), (1, 0.5), (2, 0.25)]
    assert history[0].timestamp == datetime.fromtimestamp(1_700_000_000, tz=UTC)


def test_a_finished_run_gives_its_datasets_in_order_and_its_latest_metrics():
    runs = {r["info"]["run_name"]: r for r in _body("runs-search")["runs"]}

    trained = run_facts(runs["trained"])

    # The second dataset has no name: the URI its source names stands for it.
    assert trained.datasets == ("train-set", "s3://bucket/holdout.csv")
    assert dict(trained.metrics) == {"loss": 0.25, "auc": 0.93}
    assert trained.finished


def test_a_running_run_is_not_finished_and_has_no_datasets():
    runs = {r["info"]["run_name"]: r for r in _body("runs-search")["runs"]}

    running = run_facts(runs["running"])

    assert running.datasets == ()
    assert dict(running.metrics) == {"loss": 0.4}
    assert not running.finished
