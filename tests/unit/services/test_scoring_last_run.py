"""Runs that score only what changed: the same results, facts and roll-up as scoring it all.

The scene's fakes change between runs; a scorer that keeps its last run is compared after
every run with a fresh scorer (nothing kept) over the same sources, writing its own store.
"""

from __future__ import annotations

import gc
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import trellis.services.scoring.last_run as last_run_module
from support.fakes import FakeLease, LeaseHolder
from support.scoring_scene import (
    DETAILS,
    FRAUD,
    MODEL,
    NOW,
    ORPHAN,
    ORPHANED,
    Scene,
    error_ratio,
    outcomes,
    server_ref,
    write_definitions,
)
from trellis.errors import SourceUnavailable
from trellis.scorecards.scoring import Outcome, compile_checks, run_checks
from trellis.services.scoring.definitions import Definitions
from trellis.services.scoring.last_run import Evaluation, LastRun, Scored, digests_of
from trellis.services.scoring.scorer import Scorer
from trellis.sources.fact_store import FactStore

RETRIEVERS = ["mlflow-registry", "k8s-deployments", "prometheus-serving", "blueprint", "lineage"]


@pytest.fixture
def scene(tmp_path: Path) -> Scene:
    return Scene(tmp_path)


@pytest.fixture
def evaluated(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many times each entity's checks were run, by the entity's kind."""
    counts: Counter[str] = Counter()

    def counting(checks: Any, entity: Any, facts: Any, **options: Any) -> Any:
        counts[str(entity.get("kind"))] += 1
        return run_checks(checks, entity, facts, **options)

    monkeypatch.setattr(last_run_module, "run_checks", counting)
    return counts


def at(scorer: Scorer, moment: datetime, scene: Scene) -> None:
    """Score the scene as it is now, at ``moment``."""
    scorer.pipeline.catalog = scene.catalog()
    scorer.pipeline.clock = lambda: moment


def state(scorer: Scorer) -> dict[str, Any]:
    """Everything a run leaves that a reader sees, but when results were first so."""
    kept, _ = scorer.queries.kept(None)
    results = {
        ref: {c: (o.outcome.value, o.reasons, dict(o.facts)) for c, o in checks.items()}
        for ref, checks in kept.items()
    }
    facts = {
        ref: {
            r: (row.timestamp, dict(row.facts), dict(row.unknown))
            for r, row in scorer.queries.latest_facts(ref, RETRIEVERS).items()
        }
        for ref in scorer.queries.entities()
    }
    fleet = scorer.queries.fleet_report()
    assert scorer.state.last is not None
    return {
        "results": results,
        "facts": facts,
        "rollup": fleet["scorecards"],
        "outcomes": dict(scorer.state.last.outcomes),
        "facts_written": scorer.state.last.facts_written,
    }


def test_a_run_over_unchanged_sources_evaluates_nothing_and_moves_only_the_readings(
    scene: Scene, evaluated: Counter[str]
) -> None:
    scorer = scene.scorer()
    try:
        first = scorer.run_once()
        before = state(scorer)
        evaluated.clear()
        at(scorer, NOW + timedelta(minutes=5), scene)
        second = scorer.run_once()
        after = state(scorer)
    finally:
        scorer.stop()
    assert sum(evaluated.values()) == 0
    assert second.outcomes == first.outcomes and second.facts_written == 0
    assert after["results"] == before["results"] and after["rollup"] == before["rollup"]
    # Each fact's latest reading is the second run's, its values those of the first.
    for ref, rows in after["facts"].items():
        assert rows, ref
        for retriever, (read_at, values, unknown) in rows.items():
            assert read_at == NOW + timedelta(minutes=5)
            assert (values, unknown) == before["facts"][ref][retriever][1:]


def test_only_the_entity_whose_facts_changed_is_evaluated_again(
    scene: Scene, evaluated: Counter[str]
) -> None:
    scorer = scene.scorer()
    assert scene.prometheus is not None
    try:
        scorer.run_once()
        server = server_ref(scorer)
        assert outcomes(scorer, server) == {"few-errors": "failed"}
        evaluated.clear()
        scene.prometheus.samples = error_ratio(0.0)
        at(scorer, NOW + timedelta(minutes=1), scene)
        report = scorer.run_once()
        assert outcomes(scorer, server) == {"few-errors": "passed"}
        assert outcomes(scorer, ORPHAN) == {"has-owner": "failed", "has-signature": "unknown"}
    finally:
        scorer.stop()
    assert evaluated == {"Component": 1}
    assert report.outcomes == {"passed": 3, "failed": 1, "unknown": 1}
    assert report.facts_written == 1  # the server's serving facts; its deployment is unchanged


def test_changed_definitions_evaluate_every_entity_again(
    scene: Scene, evaluated: Counter[str]
) -> None:
    scorer = scene.scorer()
    try:
        scorer.run_once()
        evaluated.clear()
        servers = scene.directory / "servers.yaml"
        servers.write_text(servers.read_text().replace("value: 0.01", "value: 0.9"))
        scorer.run_once()
        assert outcomes(scorer, server_ref(scorer)) == {"few-errors": "passed"}
    finally:
        scorer.stop()
    assert sum(evaluated.values()) == 3


def test_true_one_and_one_point_zero_are_different_facts() -> None:
    digests = [digests_of({"r": {"x": value}}) for value in (True, 1, 1.0)]
    assert len(set(digests)) == 3
    assert digests_of({"r": {"x": [1, {"y": None}]}}) == digests_of({"r": {"x": [1, {"y": None}]}})
    unpicklable = {"r": {"x": lambda: 1}}
    assert digests_of(unpicklable) != digests_of(unpicklable)  # never taken as unchanged


def test_an_entity_that_changed_is_scored_again_though_its_facts_did_not() -> None:
    # A scorecard's filter reads the entity: a new type may make other scorecards apply.
    entity = {"kind": "Resource", "spec": {"type": "ai-model"}}
    digests = digests_of({"r": {"x": 1}, "s": {"y": 2}})
    last = Scored(entity, ("r", "s"), digests, (("c", Outcome.PASSED),), ("bronze",))
    assert last.reads_like(entity, ("r", "s"))
    assert last.reads_like({"kind": "Resource", "spec": {"type": "ai-model"}}, ("r", "s"))
    assert not last.reads_like({"kind": "Resource", "spec": {"type": "dataset"}}, ("r", "s"))
    assert not last.reads_like(entity, ("r", "s", "t"))  # one more
    assert not last.reads_like(entity, ("r",))  # one gone
    assert not last.reads_like(entity, ("s", "r"))  # read in another order
    assert last.unchanged(digests) == {"r", "s"}
    assert last.unchanged(digests_of({"r": {"x": 1}, "s": {"y": 3}})) == {"r"}


def test_only_the_checks_that_read_a_changed_retriever_run_again(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[frozenset[str] | None] = []

    def spying(checks: Any, entity: Any, facts: Any, changed: Any = None) -> Any:
        asked.append(None if changed is None else frozenset(changed))
        return run_checks(checks, entity, facts, changed=changed)

    monkeypatch.setattr(last_run_module, "run_checks", spying)
    scorer = scene.scorer()
    assert scene.prometheus is not None
    try:
        scorer.run_once()
        asked.clear()
        scene.prometheus.samples = error_ratio(0.0)
        at(scorer, NOW + timedelta(minutes=1), scene)
        scorer.run_once()
    finally:
        scorer.stop()
    assert asked == [frozenset({"prometheus-serving"})]


Step = Callable[[Scene, random.Random], None]


def _ratio(scene: Scene, rng: random.Random) -> None:
    assert scene.prometheus is not None
    scene.prometheus.samples = error_ratio(rng.choice([0.0, 0.005, 0.5]))


def _owner(scene: Scene, rng: random.Random) -> None:
    tags = rng.choice([{"owner": "risk"}, {"owner": "fraud-team"}, {}])
    scene.registry.models = (replace(FRAUD, tags=tags), *scene.registry.models[1:])


def _signature(scene: Scene, rng: random.Random) -> None:
    scene.registry.details = {("fraud", 1): replace(DETAILS, has_signature=rng.random() < 0.5)}


def _cluster(scene: Scene, rng: random.Random) -> None:
    scene.failed_cluster = rng.choice([None, None, "connection refused"])


def _prometheus_down(scene: Scene, rng: random.Random) -> None:
    assert scene.prometheus is not None
    query = next(iter(error_ratio(0.0)))
    scene.prometheus.failing = rng.choice([{}, {query: "connection refused"}])


def _orphan(scene: Scene, rng: random.Random) -> None:
    scene.registry.models = (scene.registry.models[0], *([ORPHANED] if rng.random() < 0.7 else []))


def _threshold(scene: Scene, rng: random.Random) -> None:
    servers = scene.directory / "servers.yaml"
    text = servers.read_text()
    now = text.split("operator: lessThan, value: ")[1].split("}")[0]
    servers.write_text(text.replace(f"value: {now}}}", f"value: {rng.choice(['0.01', '0.9'])}}}"))


STEPS: list[Step] = [_ratio, _owner, _signature, _cluster, _prometheus_down, _orphan, _threshold]


def _fresh(scene: Scene, tmp_path: Path) -> Iterator[Scorer]:
    """A scorer that keeps nothing between runs: a new one, with a new store object, each time."""
    database = f"sqlite:///{tmp_path / 'fresh.db'}"
    while True:
        yield scene.scorer(store=FactStore(database))


@pytest.mark.parametrize("seed", range(4))
def test_scoring_what_changed_leaves_what_scoring_everything_leaves(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    scene = Scene(tmp_path)
    kept = scene.scorer()
    fresh = _fresh(scene, tmp_path)
    try:
        for step in range(14):
            moment = NOW + timedelta(minutes=step)
            for change in rng.sample(STEPS, k=rng.randint(0, 2)):
                change(scene, rng)
            at(kept, moment, scene)
            kept.run_once()
            full = next(fresh)
            try:
                at(full, moment, scene)
                full.run_once()
                assert state(kept) == state(full), f"seed {seed}, step {step}"
            finally:
                full.stop()
    finally:
        kept.stop()


def test_a_replica_that_leads_again_rewrites_what_another_replaced(scene: Scene) -> None:
    """A leads, B takes over and writes another outcome, A leads again and finds its own.

    A wrote ``failed`` before; B replaced it with ``passed``. Had A trusted what it last
    wrote, its ``failed`` would have seemed stored already and B's would have stood.
    """
    shared = LeaseHolder()
    a, b = (scene.scorer(lease=FakeLease(shared, name)) for name in ("a", "b"))
    assert scene.prometheus is not None
    try:
        a.run_round()
        server = server_ref(a)
        shared.holder = "b"
        scene.prometheus.samples = error_ratio(0.0)
        at(b, NOW + timedelta(minutes=1), scene)
        a.run_round()  # follows
        b.run_round()
        assert outcomes(b, server) == {"few-errors": "passed"}
        shared.holder = "a"
        scene.prometheus.samples = error_ratio(0.5)
        at(a, NOW + timedelta(minutes=2), scene)
        b.run_round()  # follows
        a.run_round()
        assert a.leading and not b.leading
        assert outcomes(a, server) == outcomes(b, server) == {"few-errors": "failed"}
        assert outcomes(a, MODEL) == {"has-owner": "passed", "has-signature": "passed"}
    finally:
        a.stop()
        b.stop()


def test_a_run_pauses_the_cyclic_collector_and_restores_it(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []

    def spying(checks: Any, entity: Any, facts: Any, **options: Any) -> Any:
        seen.append(gc.isenabled())
        return run_checks(checks, entity, facts, **options)

    monkeypatch.setattr(last_run_module, "run_checks", spying)
    scorer = scene.scorer()
    try:
        assert gc.isenabled()
        scorer.run_once()
        assert gc.isenabled()
    finally:
        scorer.stop()
    assert seen == [False, False, False]


def test_after_a_write_that_failed_the_next_run_scores_and_writes_everything(
    scene: Scene, evaluated: Counter[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store rolled the write back: what the run scored must not be taken as stored."""
    scorer = scene.scorer()
    store = scorer.queries.store
    assert scene.prometheus is not None
    try:
        scorer.run_once()
        scene.prometheus.samples = error_ratio(0.0)
        at(scorer, NOW + timedelta(minutes=1), scene)
        real_write = store.write

        def failing(*args: Any, **kwargs: Any) -> Any:
            raise SourceUnavailable("fact store", "disk full")

        monkeypatch.setattr(store, "write", failing)
        with pytest.raises(SourceUnavailable):
            scorer.run_once()
        monkeypatch.setattr(store, "write", real_write)
        evaluated.clear()
        at(scorer, NOW + timedelta(minutes=2), scene)
        scorer.run_once()
        assert outcomes(scorer, server_ref(scorer)) == {"few-errors": "passed"}
    finally:
        scorer.stop()
    assert sum(evaluated.values()) == 3  # every entity, not only the one that changed


def test_a_check_whose_retriever_is_gone_is_run_again(tmp_path: Path) -> None:
    """Scored afresh, a check that reads facts no retriever gave is unknown, not kept."""
    scorecards = Definitions(write_definitions(tmp_path / "scorecards")).reload()
    checks = compile_checks(scorecards)
    server = {"kind": "Component", "spec": {"type": "model-server"}}
    last_run = LastRun()
    first = Evaluation(checks, scorecards, last_run)
    first.evaluate("s", server, {"k8s-deployments": {}, "prometheus-serving": {"errorRatio": 0.5}})
    last_run.keep(checks, first.scored)
    second = Evaluation(checks, scorecards, last_run)
    second.evaluate("s", server, {"k8s-deployments": {}})
    assert second.by_entity["s"]["few-errors"].outcome is Outcome.UNKNOWN
    assert second.scored["s"].outcomes == (("few-errors", Outcome.UNKNOWN),)
    assert second.unchanged == []  # facts from other retrievers: written again, not confirmed


def test_a_clock_that_steps_back_leaves_what_scoring_everything_leaves(
    scene: Scene, tmp_path: Path
) -> None:
    """The store keeps the newer rows over an older run's; the run after must not trust it."""
    kept = scene.scorer()
    assert scene.prometheus is not None
    try:
        for minutes, ratio in ((10, 0.5), (9, 0.0), (15, 0.0)):
            scene.prometheus.samples = error_ratio(ratio)
            at(kept, NOW + timedelta(minutes=minutes), scene)
            kept.run_once()
        full = next(_fresh(scene, tmp_path))
        try:
            at(full, NOW + timedelta(minutes=15), scene)
            full.run_once()
            ours, theirs = state(kept), state(full)
        finally:
            full.stop()
    finally:
        kept.stop()
    assert ours["results"] == theirs["results"]
    assert ours["facts"] == theirs["facts"]
    assert ours["results"][server_ref(kept)]["few-errors"][0] == "passed"
