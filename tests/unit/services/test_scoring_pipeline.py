"""One scoring run against fakes: outcomes, unknowns, store failures and definition reloads."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import pytest

from support.fakes import FakePrometheus
from support.scoring_scene import (
    MODEL,
    NOW,
    OPTIONS,
    ORPHAN,
    FakeScaffolder,
    Scene,
    error_ratio,
    outcomes,
    repository_survey,
    server_ref,
)
from support.timing import scaled
from trellis.errors import ConfigError, SourceUnavailable
from trellis.model import ModelVersion, Sample
from trellis.observability.fleet import FLEET_FACTS, plan_fleet_queries
from trellis.observability.queries import hub_recorded_names
from trellis.scorecards import DefinitionError
from trellis.sources.fact_store import FactStore

MODEL_PASSES = {"has-owner": "passed", "has-signature": "passed"}


@pytest.fixture
def scene(tmp_path: Path) -> Scene:
    return Scene(tmp_path)


def test_every_entity_gets_every_check_that_applies(scene: Scene) -> None:
    scorer = scene.scorer()
    try:
        report = scorer.run_once()
        assert outcomes(scorer, MODEL) == MODEL_PASSES
        # No owner; no champion, so its signature is unknown rather than failed.
        assert outcomes(scorer, ORPHAN) == {"has-owner": "failed", "has-signature": "unknown"}
        assert outcomes(scorer, server_ref(scorer)) == {"few-errors": "failed"}
    finally:
        scorer.stop()
    assert report.at == NOW
    assert report.entities == 3
    assert report.outcomes == {"passed": 2, "failed": 2, "unknown": 1}
    assert report.unavailable == {}


def test_the_fleet_is_asked_once_per_serving_fact_and_champions_in_one_batch(scene: Scene) -> None:
    scorer = scene.scorer()
    try:
        scorer.run_once()
    finally:
        scorer.stop()
    assert scene.prometheus is not None
    assert len(scene.prometheus.queries) == len(FLEET_FACTS)
    assert scene.registry.asked_details == [(("fraud", 1),)]


def test_fleet_queries_read_the_recorded_series_prometheus_has_at_each_run(scene: Scene) -> None:
    hub = frozenset(hub_recorded_names())
    recorded = [frozenset[str]()]
    scorer = scene.scorer(recorded=lambda: recorded[0])
    assert scene.prometheus is not None
    try:
        scorer.run_once()
        raw = sorted(scene.prometheus.queries)
        scene.prometheus.queries.clear()
        recorded[0] = hub  # the rules were installed since
        scorer.run_once()
    finally:
        scorer.stop()
    windows = (OPTIONS.policy.serving_window_seconds, OPTIONS.availability_window_seconds)
    assert raw == sorted(q.promql for q in plan_fleet_queries(*windows))
    wanted = sorted(q.promql for q in plan_fleet_queries(*windows, hub))
    assert sorted(scene.prometheus.queries) == wanted != raw


def test_prometheus_down_leaves_serving_checks_unknown_and_the_rest_evaluated(scene: Scene) -> None:
    query = next(iter(error_ratio(0.0)))
    scene.prometheus = FakePrometheus(failing={query: "connection refused"})
    scorer = scene.scorer()
    try:
        report = scorer.run_once()
        server = server_ref(scorer)
        assert outcomes(scorer, server) == {"few-errors": "unknown"}
        assert outcomes(scorer, MODEL) == MODEL_PASSES
        serving = scorer.queries.latest_facts(server, ["prometheus-serving"])
    finally:
        scorer.stop()
    reason = "Prometheus could not be read: prometheus unavailable: connection refused"
    assert report.unavailable == {"prometheus-serving": reason}
    assert serving["prometheus-serving"].unknown["errorRatio"] == reason


def test_no_prometheus_is_not_an_outage_but_its_facts_are_unknown(scene: Scene) -> None:
    scene.prometheus = None
    scorer = scene.scorer()
    try:
        report = scorer.run_once()
        kept, _ = scorer.queries.kept([server_ref(scorer)])
    finally:
        scorer.stop()
    assert report.unavailable == {}
    (few_errors,) = kept[server_ref(scorer)].values()
    assert few_errors.outcome.value == "unknown"
    assert "TRELLIS_PROMETHEUS__URL is not set" in " ".join(few_errors.reasons)


def test_champion_details_that_fail_make_only_their_facts_unknown(scene: Scene) -> None:
    scorer = scene.scorer()
    scene.registry.failing = "timed out"
    try:
        report = scorer.run_once()
        assert outcomes(scorer, MODEL) == {"has-owner": "passed", "has-signature": "unknown"}
        facts = scorer.queries.latest_facts(MODEL, ["mlflow-registry"])["mlflow-registry"]
    finally:
        scorer.stop()
    reason = "champion details could not be read: mlflow unavailable: timed out"
    assert report.unavailable == {"mlflow-registry": reason}
    assert facts.unknown["hasSignature"] == reason
    assert facts.facts["hasOwner"] is True


def test_servers_of_a_cluster_that_could_not_be_read_have_unknown_deployment_facts(
    scene: Scene,
) -> None:
    scene.failed_cluster = "forbidden"
    scorer = scene.scorer()
    try:
        scorer.run_once()
        rows = scorer.queries.latest_facts(server_ref(scorer), ["kubernetes-deployments"])
    finally:
        scorer.stop()
    assert rows["kubernetes-deployments"].unknown["readyReplicas"] == (
        "cluster 'eu' could not be read: forbidden"
    )


def test_generated_repositories_are_scored_on_their_blueprint_fact(scene: Scene) -> None:
    scene.scaffolder = FakeScaffolder(repository_survey("1.0.0", ("1.0.0", "1.1.0")))
    scorer = scene.scorer()
    try:
        report = scorer.run_once()
        repository = scorer.queries.entity("component:team/app")
        assert outcomes(scorer, "component:team/app") == {"up-to-date": "failed"}
    finally:
        scorer.stop()
    assert report.entities == 4
    assert repository is not None
    assert repository["metadata"]["annotations"] == {"trellis.dev/blueprint": "ml-model"}


def test_a_blueprint_source_that_fails_is_reported(scene: Scene) -> None:
    scene.scaffolder = FakeScaffolder(failing=ConfigError("no such repository"))
    scorer = scene.scorer()
    try:
        report = scorer.run_once()
    finally:
        scorer.stop()
    assert report.unavailable == {
        "blueprint": "the blueprint source could not be read: no such repository"
    }
    assert outcomes(scorer, MODEL) == MODEL_PASSES


class ClosedStore(FactStore):
    """A fact store that says whether it was closed."""

    closed = False

    def close(self) -> None:
        self.closed = True
        super().close()


class BrokenStore(FactStore):
    """A fact store whose writes fail, as a full disk or a lost database would."""

    def write(self, *args: object, **kwargs: object) -> NoReturn:
        raise SourceUnavailable("fact store", "disk I/O error")


def test_a_store_that_fails_is_reported_and_the_next_good_run_clears_it(scene: Scene) -> None:
    broken = scene.scorer(store=BrokenStore(scene.database))
    try:
        with pytest.raises(SourceUnavailable) as raised:
            broken.run_once()
        health = broken.queries.health()
    finally:
        broken.stop()
    assert raised.value.source == "scorecards"
    assert health["state"] == "unavailable"
    assert health["reason"] == "fact store: disk I/O error"
    assert health["last_run"] is None

    scorer = scene.scorer()
    try:
        scorer.run_once()
        assert scorer.queries.health()["state"] == "ok"
    finally:
        scorer.stop()


def test_a_broken_edit_of_the_definitions_keeps_the_last_valid_set(scene: Scene) -> None:
    scorer = scene.scorer()
    try:
        scorer.run_once()
        (scene.directory / "models.yaml").write_text("name: models\nchecks: [oops\n")
        report = scorer.run_once()
        names = {s.name for s in scorer.queries.scorecards()}
        health = scorer.queries.health()
    finally:
        scorer.stop()
    assert names == {"models", "servers", "repositories"}
    assert report.outcomes["passed"] == 2
    assert health["state"] == "ok"
    assert "models.yaml" in str(health["definitions"])


def test_definitions_never_valid_make_the_scorecards_unavailable(scene: Scene) -> None:
    scene.directory.mkdir()
    (scene.directory / "models.yaml").write_text("name: [\n")
    scorer = scene.scorer()
    try:
        with pytest.raises(DefinitionError):
            scorer.run_once()
        health = scorer.queries.health()
    finally:
        scorer.stop()
    assert health["state"] == "unavailable"
    assert str(health["reason"]).startswith("no valid scorecard definitions: ")


def test_the_background_scorer_runs_and_stop_releases_its_sources(scene: Scene) -> None:
    store = ClosedStore(scene.database)
    scorer = scene.scorer(store=store, interval_seconds=3_600.0)
    scorer.start()
    try:
        deadline = time.monotonic() + scaled(10)
        while scorer.queries.health()["last_run"] is None and time.monotonic() < deadline:
            time.sleep(0.01)
        health = scorer.queries.health()
    finally:
        scorer.stop()
    assert health["last_run"] is not None
    assert health["last_error"] is None
    assert scene.prometheus is not None and scene.prometheus.closed
    assert store.closed


def test_a_background_run_that_fails_is_kept_as_the_last_error(scene: Scene) -> None:
    scene.directory.mkdir()
    (scene.directory / "models.yaml").write_text("name: [\n")
    scorer = scene.scorer(interval_seconds=3_600.0)
    scorer.start()
    try:
        deadline = time.monotonic() + scaled(10)
        while scorer.queries.health()["last_error"] is None and time.monotonic() < deadline:
            time.sleep(0.01)
        health = scorer.queries.health()
    finally:
        scorer.stop()
    assert str(health["last_error"]).startswith("no valid scorecard definitions: ")


def test_the_registry_is_read_while_every_fleet_query_is_still_out(scene: Scene) -> None:
    """The champion details are not queued behind the fleet queries: the facts and the
    models' checks are meant to be worked out while Prometheus answers."""
    details_asked = threading.Event()
    seen_while_waiting: list[bool] = []

    class SlowPrometheus(FakePrometheus):
        def query(self, promql: str, at: datetime | None = None) -> list[Sample]:
            seen_while_waiting.append(details_asked.wait(scaled(10)))
            return super().query(promql, at)

    read_details = scene.registry.version_details

    def version_details(versions: Sequence[ModelVersion]) -> dict[tuple[str, int], Any]:
        details_asked.set()
        return read_details(versions)

    scene.prometheus = SlowPrometheus(samples=error_ratio(0.5))
    scene.registry.version_details = version_details  # type: ignore[method-assign]
    scorer = scene.scorer()
    try:
        scorer.run_once()
    finally:
        scorer.stop()
    assert seen_while_waiting == [True] * len(FLEET_FACTS)
