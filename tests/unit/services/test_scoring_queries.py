"""The scorecards' query side: reports from the last run and the kept results, and failures."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from support.scoring_scene import MODEL, NOW, ORPHAN, Scene, outcomes
from trellis.errors import NotFound, NotReady, SourceUnavailable
from trellis.sources.fact_store import FactStore


@pytest.fixture
def scene(tmp_path: Path) -> Scene:
    return Scene(tmp_path)


def test_an_entity_report_shows_its_scorecards_checks_and_level(scene: Scene) -> None:
    scorer = scene.scorer()
    try:
        scorer.run_once()
        report = scorer.queries.entity_report(MODEL)
    finally:
        scorer.stop()
    assert report["entity"] == MODEL
    assert report["evaluatedAt"] == NOW.isoformat()
    (models,) = report["scorecards"]
    assert models["name"] == "models"
    assert models["level"] == "gold"  # every check passed, and none is gold
    assert [(c["id"], c["outcome"]) for c in models["checks"]] == [
        ("has-owner", "passed"),
        ("has-signature", "passed"),
    ]


def test_an_entity_no_scorecard_applies_to_is_not_found(scene: Scene) -> None:
    scorer = scene.scorer()
    try:
        scorer.run_once()
        with pytest.raises(NotFound):
            scorer.queries.entity_report("resource:default/nobody")
    finally:
        scorer.stop()


def test_the_fleet_report_counts_entities_at_each_level(scene: Scene) -> None:
    scorer = scene.scorer()
    try:
        scorer.run_once()
        fleet = scorer.queries.fleet_report()
    finally:
        scorer.stop()
    assert fleet["entities"] == 3
    assert fleet["lastRun"]["at"] == NOW.isoformat()
    by_name = {card["name"]: card for card in fleet["scorecards"]}
    assert by_name["models"]["entities"] == 2
    assert by_name["models"]["levels"]["gold"] == 1
    assert by_name["models"]["levels"]["none"] == 1
    assert by_name["servers"]["levels"]["none"] == 1


def test_a_restart_answers_from_the_kept_results_before_its_first_run(scene: Scene) -> None:
    first = scene.scorer()
    try:
        first.run_once()
        before = first.queries.entity_report(ORPHAN)
    finally:
        first.stop()

    again = scene.scorer()
    try:
        again.pipeline.definitions.reload()
        assert again.queries.entity_report(ORPHAN)["scorecards"] == before["scorecards"]
        assert again.queries.fleet_report()["scorecards"] != []
        assert outcomes(again, ORPHAN) == {"has-owner": "failed", "has-signature": "unknown"}
    finally:
        again.stop()


def test_facts_are_kept_as_history_and_answered_by_retriever(scene: Scene) -> None:
    scorer = scene.scorer()
    try:
        scorer.run_once()
        latest = scorer.queries.latest_facts(MODEL, ["mlflow-registry", "blueprint"])
        history = scorer.queries.facts_range(
            MODEL, ["mlflow-registry"], NOW - timedelta(hours=1), NOW + timedelta(hours=1)
        )
    finally:
        scorer.stop()
    assert latest["mlflow-registry"].facts["owner"] == "risk"
    assert latest["blueprint"].unknown == {"blueprint": "no blueprint is recorded for this entity"}
    assert [row.timestamp for row in history["mlflow-registry"]] == [NOW]


def test_no_definitions_read_yet_is_not_ready(scene: Scene) -> None:
    scorer = scene.scorer()
    try:
        with pytest.raises(NotReady):
            scorer.queries.scorecards()
        health = scorer.queries.health()
    finally:
        scorer.stop()
    assert health == {
        "state": "ok",
        "reason": None,
        "definitions": "ok",
        "last_run": None,
        "last_error": None,
    }


class UnreachableStore(FactStore):
    """A fact store whose database cannot be reached, and counts how often it was tried."""

    tries = 0

    def open(self) -> None:
        self.tries += 1
        raise SourceUnavailable("fact store", "connection refused")


def test_a_store_not_reached_since_it_failed_is_not_tried_per_request(scene: Scene) -> None:
    store = UnreachableStore(scene.database)
    scorer = scene.scorer(store=store)
    try:
        with pytest.raises(SourceUnavailable):
            scorer.run_once()
        with pytest.raises(SourceUnavailable) as raised:
            scorer.queries.kept([MODEL])
        health = scorer.queries.health()
    finally:
        scorer.stop()
    assert store.tries == 1
    assert (raised.value.source, raised.value.reason) == (
        "scorecards",
        "fact store: connection refused",
    )
    assert health["state"] == "unavailable"
    assert health["reason"] == "fact store: connection refused"
