"""Scorers of several replicas sharing one fact store: only the lease holder runs.

Each replica is a ``Scorer`` with a ``FactStore`` of its own on one SQLite file, and a fake
lease on one shared holder (the real lease, a PostgreSQL advisory lock, is proven in
``tests/integration/test_replicas.py``).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest

from support.fakes import FakeLease, LeaseHolder
from support.scoring_scene import MODEL, NOW, ORPHAN, Scene
from trellis.errors import SourceUnavailable
from trellis.services.scoring.scorer import Scorer
from trellis.sources.fact_store import FactStore

LOGGER = "trellis.services.scoring"


@pytest.fixture
def scene(tmp_path: Path) -> Scene:
    return Scene(tmp_path)


def replicas(scene: Scene, *names: str, **lease: object) -> list[Scorer]:
    shared = LeaseHolder()
    return [scene.scorer(lease=FakeLease(shared, name, **lease)) for name in names]  # type: ignore[arg-type]


def runs_kept(scene: Scene) -> list[str]:
    """The replica of each run the store kept, oldest first."""
    store = FactStore(scene.database)
    try:
        return [run.replica for run in store.runs(NOW - timedelta(days=1))]
    finally:
        store.close()


def test_only_the_holder_runs_and_the_follower_answers_alike(scene: Scene) -> None:
    leader, follower = replicas(scene, "a", "b")
    try:
        for _ in range(3):
            leader.run_round()
            follower.run_round()
        assert (leader.leading, follower.leading) == (True, False)
        assert runs_kept(scene) == ["a", "a", "a"]
        assert follower.state.last is None  # it never ran ...
        # ... yet it read the definitions and answers every route as the leader does.
        assert follower.queries.scorecards() == leader.queries.scorecards()
        for ref in (MODEL, ORPHAN):
            assert follower.queries.entity_report(ref) == leader.queries.entity_report(ref)
        assert follower.queries.kept(None) == leader.queries.kept(None)
        fleet = follower.queries.fleet_report()
        assert fleet == leader.queries.fleet_report()
        assert fleet["lastRun"]["at"] == NOW.isoformat() and fleet["entities"] == 3
    finally:
        leader.stop()
        follower.stop()


def test_when_the_leader_goes_the_follower_takes_over_at_its_next_round(scene: Scene) -> None:
    leader, follower = replicas(scene, "a", "b")
    try:
        leader.run_round()
        follower.run_round()
        leader.stop()  # gives the lease up, as a dead leader's connection would
        follower.run_round()
        assert follower.leading and not leader.leading
        assert runs_kept(scene) == ["a", "b"]
        assert follower.state.last is not None
    finally:
        follower.stop()


def test_a_leader_that_loses_the_lease_during_a_run_keeps_nothing(
    scene: Scene, caplog: pytest.LogCaptureFixture
) -> None:
    # The lease holds when the round begins and is gone when the run would keep its results.
    (scorer,) = replicas(scene, "a", lose_after=1)
    try:
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            scorer.run_round()
        assert not scorer.leading
        assert scorer.state.last is None
        assert scorer.queries.kept(None) == ({}, None)
        assert runs_kept(scene) == []
        assert any("lost the scorer's lease during a run" in r.getMessage() for r in caplog.records)
    finally:
        scorer.stop()


def test_each_change_of_leadership_is_logged_once(
    scene: Scene, caplog: pytest.LogCaptureFixture
) -> None:
    leader, follower = replicas(scene, "a", "b")
    try:
        with caplog.at_level(logging.INFO, logger=LOGGER):
            for _ in range(2):
                leader.run_round()
                follower.run_round()
            leader.stop()
            follower.run_round()
        changes = [r.getMessage() for r in caplog.records if "runs the scorer" in r.getMessage()]
        assert len(changes) == 3, changes
        assert changes[0].startswith("this replica (a) now runs the scorer")
        assert changes[1].startswith("another replica runs the scorer; this one (b)")
        assert changes[2].startswith("this replica (b) now runs the scorer")
    finally:
        follower.stop()


def test_without_a_lease_the_only_replica_always_runs(scene: Scene) -> None:
    scorer = scene.scorer()
    try:
        assert scorer.leading
        scorer.run_round()
        scorer.run_round()
        assert scorer.state.last is not None
        assert len(runs_kept(scene)) == 2
    finally:
        scorer.stop()


class UnreachableStore(FactStore):
    """A fact store whose database cannot be reached."""

    def open(self) -> None:
        raise SourceUnavailable("fact store", "connection refused")


def test_a_follower_whose_store_cannot_be_reached_says_why(scene: Scene) -> None:
    shared = LeaseHolder(holder="another replica")
    follower = scene.scorer(store=UnreachableStore(scene.database), lease=FakeLease(shared, "b"))
    try:
        follower.run_round()
        health = follower.queries.health()
    finally:
        follower.stop()
    assert not follower.leading
    assert health["state"] == "unavailable"
    assert health["reason"] == "fact store: connection refused"
    assert health["last_error"] == "scorecards unavailable: fact store: connection refused"
