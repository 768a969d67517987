"""What every fact store backend must do: one test class, run against SQLite and PostgreSQL.

A test module subclasses :class:`FactStoreContract` (its name starts with ``Test``) and
overrides the ``url`` fixture with a fresh, empty database of its backend.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from trellis.ports import FactRow, ResultRow, RunRow, WriteStats
from trellis.sources.fact_store import FactStore

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
RETRIEVERS = ("mlflow-registry", "prometheus-serving", "kubernetes-deployments")
FRAUD = "resource:default/fraud-detector"
CHURN = "resource:default/churn-model"

#: Entity refs as hostile as a free-text MLflow name can make them.
HOSTILE_REFS = (
    "resource:default/o'brien",
    'resource:default/say "hi"',
    "resource:default/back\\slash\\\\",
    "resource:default/'; DROP TABLE trellis_facts; --",
    'resource:default/"); DELETE FROM trellis_check_results; --',
    "resource:default/ünïcödé-模型-🚀",
    "resource:default/%s %(name)s :name ? $1",
    "resource:default/new\nline\ttab",
    "resource:default/" + "x" * 2000,
)


def fact(
    entity: str = FRAUD,
    retriever: str = "mlflow-registry",
    at: datetime = T0,
    *,
    version: str = "1.0.0",
    unknown: dict[str, str] | None = None,
    **facts: object,
) -> FactRow:
    return FactRow(
        entity=entity,
        retriever=retriever,
        version=version,
        timestamp=at,
        facts=facts or {"owner": "team-risk", "hasModelCard": True},
        unknown=unknown or {},
    )


def result(
    entity: str = FRAUD,
    check_id: str = "has-owner",
    at: datetime = T0,
    outcome: str = "passed",
    reasons: tuple[str, ...] = (),
    **facts: object,
) -> ResultRow:
    return ResultRow(
        entity=entity,
        check_id=check_id,
        timestamp=at,
        outcome=outcome,
        reasons=reasons,
        facts=facts or {"owner": "team-risk"},
    )


class FactStoreContract:
    """The behaviour Trellis relies on, whatever the database."""

    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError("a backend's test class provides an empty database")

    @pytest.fixture
    def store(self, url: str) -> Iterator[FactStore]:
        store = FactStore(url)
        yield store
        store.close()

    @pytest.fixture
    def reopen(self, url: str) -> Iterator[object]:
        """Open more stores on the same database (a restart, another replica)."""
        opened: list[FactStore] = []

        def open_store(**options: int) -> FactStore:
            opened.append(FactStore(url, **options))
            return opened[-1]

        yield open_store
        for store in opened:
            store.close()

    # --- round trips --------------------------------------------------------------------

    def test_facts_and_results_come_back_exactly(self, store):
        row = fact(
            unknown={"blueprint.versionsBehind": "the repository could not be read"},
            owner="team-risk",
            latencyP95=0.1234567890123,
            replicas=3,
            hasModelCard=False,
            championAgeDays=None,
            regions=["eu-west", "us-east"],
            blueprint={"name": "ml-model", "version": "1.2.0", "behind": [1, {"x": None}]},
            description="Détection de fraude — 検出",
        )
        check = result(
            outcome="failed",
            reasons=("latencyP95 > 0.1", "ünïcode reason"),
            latencyP95=0.1234567890123,
        )
        stats = store.write([row], [check], at=T0)
        assert stats == WriteStats(facts_written=1, facts_unchanged=0, results_written=1)

        assert store.latest_facts(FRAUD, ["mlflow-registry"]) == {"mlflow-registry": row}
        assert store.latest_results([FRAUD]) == {FRAUD: [check]}
        assert store.facts_range(FRAUD, ["mlflow-registry"], T0, T0) == {"mlflow-registry": [row]}

    def test_timestamps_come_back_in_utc(self, store):
        tokyo = timezone(timedelta(hours=9))
        store.write([fact(at=T0.astimezone(tokyo))], [result(at=T0.astimezone(tokyo))], at=T0)

        (latest,) = store.latest_facts(FRAUD, ["mlflow-registry"]).values()
        assert latest.timestamp == T0 and latest.timestamp.tzinfo == UTC
        (check,) = store.latest_results()[FRAUD]
        assert check.timestamp == T0 and check.timestamp.utcoffset() == timedelta(0)

    def test_absent_things_are_absent(self, store):
        store.write([fact()], [result()], at=T0)
        assert store.latest_facts(FRAUD, ["blueprint"]) == {}
        assert store.latest_facts(CHURN, RETRIEVERS) == {}
        assert store.latest_facts(FRAUD, []) == {}
        assert store.facts_range(CHURN, RETRIEVERS, T0 - MINUTE, T0 + MINUTE) == {}
        assert store.latest_results([CHURN]) == {}
        assert store.latest_results([]) == {}

    def test_an_empty_write_stores_nothing(self, store):
        assert store.write([], [], at=T0) == WriteStats(0, 0, 0)
        assert store.latest_results() == {}

    # --- change-only history ------------------------------------------------------------

    def test_history_keeps_changes_and_latest_facts_carry_the_latest_reading(self, store):
        first = [fact(retriever=r, at=T0) for r in RETRIEVERS]
        assert store.write(first, [], at=T0) == WriteStats(3, 0, 0)
        for minutes in (5, 10):
            again = [fact(retriever=r, at=T0 + minutes * MINUTE) for r in RETRIEVERS]
            assert store.write(again, [], at=T0 + minutes * MINUTE) == WriteStats(0, 3, 0)

        latest = store.latest_facts(FRAUD, RETRIEVERS)
        assert {r: row.timestamp for r, row in latest.items()} == dict.fromkeys(
            RETRIEVERS, T0 + 10 * MINUTE
        )
        history = store.facts_range(FRAUD, RETRIEVERS, T0 - MINUTE, T0 + 60 * MINUTE)
        first_seen = {r: [row.timestamp for row in rows] for r, rows in history.items()}
        assert first_seen == {r: [T0] for r in RETRIEVERS}

        changed = fact(at=T0 + 15 * MINUTE, owner="team-fraud")
        assert store.write([changed], [], at=T0 + 15 * MINUTE) == WriteStats(1, 0, 0)
        assert store.latest_facts(FRAUD, ["mlflow-registry"]) == {"mlflow-registry": changed}
        rows = store.facts_range(FRAUD, ["mlflow-registry"], T0, T0 + 60 * MINUTE)
        assert [(r.timestamp, r.facts.get("owner")) for r in rows["mlflow-registry"]] == [
            (T0, "team-risk"),
            (T0 + 15 * MINUTE, "team-fraud"),
        ]

    def test_a_new_version_or_a_new_unknown_is_a_change(self, store):
        store.write([fact()], [], at=T0)
        assert store.write([fact(at=T0 + MINUTE, version="1.1.0")], [], at=T0).facts_written == 1
        unknown = {"championMetrics": "no champion alias"}
        later = fact(at=T0 + 2 * MINUTE, version="1.1.0", unknown=unknown)
        assert store.write([later], [], at=T0).facts_written == 1
        rows = store.facts_range(FRAUD, ["mlflow-registry"], T0, T0 + 5 * MINUTE)
        assert [(r.version, dict(r.unknown)) for r in rows["mlflow-registry"]] == [
            ("1.0.0", {}),
            ("1.1.0", {}),
            ("1.1.0", unknown),
        ]

    def test_key_order_and_equal_copies_are_not_changes(self, store):
        store.write([fact(owner="a", replicas=2, regions=["eu"])], [], at=T0)
        reordered = FactRow(
            FRAUD,
            "mlflow-registry",
            "1.0.0",
            T0 + MINUTE,
            {"regions": ["eu"], "replicas": 2, "owner": "a"},
        )
        assert store.write([reordered], [], at=T0 + MINUTE) == WriteStats(0, 1, 0)

    def test_facts_range_is_inclusive_and_oldest_first(self, store):
        times = [T0 + n * MINUTE for n in range(5)]
        for n, at in enumerate(times):
            store.write([fact(at=at, step=n), fact(CHURN, at=at, step=n)], [], at=at)

        def steps(start: datetime, end: datetime) -> list[object]:
            found = store.facts_range(FRAUD, ["mlflow-registry"], start, end)
            return [row.facts["step"] for row in found.get("mlflow-registry", [])]

        assert steps(times[1], times[3]) == [1, 2, 3]
        assert steps(
            times[1] + timedelta(microseconds=1), times[3] - timedelta(microseconds=1)
        ) == [2]
        assert steps(times[0] - MINUTE, times[4] + MINUTE) == [0, 1, 2, 3, 4]
        assert steps(times[4] + timedelta(microseconds=1), times[4] + MINUTE) == []
        assert steps(times[3], times[1]) == []

    # --- results ------------------------------------------------------------------------

    def test_latest_results_by_entity_sorted_by_check(self, store):
        checks = ["has-owner", "champion-fresh", "latency-slo", "non-root"]
        rows = [result(e, c) for e in (FRAUD, CHURN) for c in checks]
        assert store.write([], rows, at=T0).results_written == 8

        expected = sorted(checks)
        assert [r.check_id for r in store.latest_results([FRAUD])[FRAUD]] == expected
        everything = store.latest_results()
        assert set(everything) == {FRAUD, CHURN}
        assert [r.check_id for r in everything[CHURN]] == expected
        assert store.latest_results([CHURN, "resource:default/nothing"]).keys() == {CHURN}

    def test_a_result_is_replaced_by_a_newer_one_and_never_by_an_older_one(self, store):
        store.write([], [result(at=T0)], at=T0)
        failed = result(at=T0 + MINUTE, outcome="failed", reasons=("owner is missing",))
        assert store.write([], [failed], at=T0 + MINUTE).results_written == 1
        assert store.latest_results([FRAUD]) == {FRAUD: [failed]}

        store.write([], [result(at=T0 - MINUTE, outcome="unknown")], at=T0 + MINUTE)
        assert store.latest_results([FRAUD]) == {FRAUD: [failed]}

    def test_an_unchanged_result_is_not_written_again_and_keeps_its_since(self, store):
        rows = [result(check_id=f"check-{n}") for n in range(5)]
        assert store.write([], rows, at=T0).results_written == 5
        assert store.write([], rows, at=T0).results_written == 0
        later = [result(check_id=f"check-{n}", at=T0 + MINUTE) for n in range(5)]
        assert store.write([], later, at=T0 + MINUTE).results_written == 0
        assert {r.timestamp for r in store.latest_results([FRAUD])[FRAUD]} == {T0}
        changed = [*later[:4], result(check_id="check-4", at=T0 + MINUTE, outcome="failed")]
        assert store.write([], changed, at=T0 + MINUTE).results_written == 1
        kept = {r.check_id: r for r in store.latest_results([FRAUD])[FRAUD]}
        assert kept["check-4"].outcome == "failed" and kept["check-4"].timestamp == T0 + MINUTE

    def test_the_newest_of_duplicates_in_one_write_wins(self, store):
        newer = result(at=T0 + MINUTE, outcome="failed", reasons=("why",))
        store.write([], [newer, result(at=T0)], at=T0)
        assert store.latest_results([FRAUD]) == {FRAUD: [newer]}

    def test_a_newer_duplicate_after_an_older_one_wins_and_ties_keep_the_first(self, store):
        # Rows are written as they come: the later, newer one must replace the earlier.
        oldest, newest = result(at=T0), result(at=T0 + 2 * MINUTE, outcome="failed")
        tie = result(at=T0 + 2 * MINUTE, outcome="unknown", reasons=("a tie",))
        other = result(check_id="has-signature", at=T0 + MINUTE)
        stats = store.write([], [oldest, other, result(at=T0 + MINUTE), newest, tie], at=T0)
        # Neither the tie nor the unchanged one at T0 + 1 min (it still holds since T0).
        assert stats.results_written == 3
        assert store.latest_results([FRAUD]) == {FRAUD: [newest, other]}
        # What the store believes it wrote is the winner: the same again is unchanged.
        assert store.write([], [newest], at=T0 + 2 * MINUTE).results_written == 0

    # --- housekeeping -------------------------------------------------------------------

    def test_forget_drops_results_of_gone_entities_but_keeps_their_history(self, store):
        store.write(
            [fact(FRAUD), fact(CHURN)],
            [result(FRAUD, "a"), result(FRAUD, "b"), result(CHURN, "a")],
            at=T0,
        )
        assert store.forget([CHURN, "resource:default/never-seen"]) == 2
        assert store.latest_results().keys() == {CHURN}
        assert store.latest_facts(FRAUD, ["mlflow-registry"]).keys() == {"mlflow-registry"}
        assert store.forget([CHURN]) == 0

        store.write([], [result(FRAUD, "a")], at=T0)  # a forgotten entity's results come back
        assert store.latest_results().keys() == {FRAUD, CHURN}

    def test_prune_keeps_each_latest_row_however_old(self, store):
        for n in range(3):
            at = T0 + n * MINUTE
            store.write([fact(at=at, step=n), fact(CHURN, at=at, step=0)], [], at=at)
        assert store.prune(T0 + 10 * MINUTE) == 2  # FRAUD's steps 0 and 1; CHURN keeps its one

        history = store.facts_range(FRAUD, ["mlflow-registry"], T0 - MINUTE, T0 + 60 * MINUTE)
        assert [row.facts["step"] for row in history["mlflow-registry"]] == [2]
        assert store.latest_facts(CHURN, ["mlflow-registry"])["mlflow-registry"].facts == {
            "step": 0
        }
        assert store.prune(T0 + 10 * MINUTE) == 0
        # The pruned history is not mistaken for a change either.
        assert store.write([fact(at=T0 + 20 * MINUTE, step=2)], [], at=T0).facts_unchanged == 1

    def test_writes_prune_history_older_than_history_days(self, reopen):
        store = reopen(history_days=1)
        store.write([fact(at=T0, step=0)], [], at=T0)
        store.write([fact(at=T0 + MINUTE, step=1)], [], at=T0 + MINUTE)
        later = T0 + timedelta(days=2)
        store.write([fact(at=later, step=2)], [], at=later)
        rows = store.facts_range(FRAUD, ["mlflow-registry"], T0 - MINUTE, later)
        assert [row.facts["step"] for row in rows["mlflow-registry"]] == [2]

    # --- restarts and replicas ----------------------------------------------------------

    def test_a_restart_sees_everything_and_inserts_no_unchanged_fact(self, store, reopen):
        facts = [fact(e, r) for e in (FRAUD, CHURN) for r in RETRIEVERS]
        store.write(facts, [result(FRAUD), result(CHURN)], at=T0)
        store.write([fact(at=T0 + MINUTE)], [], at=T0 + MINUTE)
        store.close()

        again = reopen()
        assert again.latest_facts(FRAUD, ["mlflow-registry"])["mlflow-registry"].timestamp == (
            T0 + MINUTE
        )
        assert again.latest_results().keys() == {FRAUD, CHURN}
        later = [fact(e, r, at=T0 + 5 * MINUTE) for e in (FRAUD, CHURN) for r in RETRIEVERS]
        assert again.write(later, [], at=T0 + 5 * MINUTE) == WriteStats(0, 6, 0)
        assert again.facts_range(FRAUD, RETRIEVERS, T0, T0 + 60 * MINUTE) == {
            r: [fact(FRAUD, r)] for r in RETRIEVERS
        }
        latest = again.latest_facts(CHURN, RETRIEVERS)
        assert {row.timestamp for row in latest.values()} == {T0 + 5 * MINUTE}

    def test_replicas_see_each_others_changes(self, store, reopen):
        other = reopen()
        store.write([fact(owner="a")], [], at=T0)
        other.write([fact(at=T0 + MINUTE, owner="b")], [], at=T0 + MINUTE)
        # Back to "a": a change from what is stored ("b"), though this store last wrote "a".
        assert store.write([fact(at=T0 + 2 * MINUTE, owner="a")], [], at=T0).facts_written == 1
        assert other.write([fact(at=T0 + 3 * MINUTE, owner="a")], [], at=T0).facts_written == 0
        rows = store.facts_range(FRAUD, ["mlflow-registry"], T0, T0 + 60 * MINUTE)
        assert [row.facts["owner"] for row in rows["mlflow-registry"]] == ["a", "b", "a"]

    def test_facts_said_unchanged_move_their_latest_reading_and_add_no_history(self, store):
        facts = [fact(FRAUD, r) for r in RETRIEVERS]
        store.write(facts, [], at=T0)
        keys = [(FRAUD, r) for r in RETRIEVERS]
        stats = store.write([], [], at=T0 + MINUTE, unchanged=keys)
        assert stats == WriteStats(facts_written=0, facts_unchanged=3, results_written=0)
        latest = store.latest_facts(FRAUD, RETRIEVERS)
        assert latest == {r: fact(FRAUD, r, T0 + MINUTE) for r in RETRIEVERS}
        assert store.facts_range(FRAUD, RETRIEVERS, T0, T0 + MINUTE) == {
            r: [fact(FRAUD, r)] for r in RETRIEVERS
        }
        store.write([], [], at=T0, unchanged=keys)  # an older reading moves nothing back
        assert store.latest_facts(FRAUD, RETRIEVERS) == latest

    def test_facts_said_unchanged_that_were_never_stored_refuse_the_whole_write(self, store):
        with pytest.raises(ValueError, match="were said to be unchanged, but this store"):
            store.write([fact()], [result()], at=T0, unchanged=[(CHURN, "mlflow-registry")])
        assert store.latest_facts(FRAUD, RETRIEVERS) == {}
        assert store.latest_results() == {}
        assert store.write([fact()], [result()], at=T0) == WriteStats(1, 0, 1)

    def test_a_store_that_distrusts_itself_writes_its_results_again(self, store, reopen):
        """Another writer replaced a result this store wrote; only distrust brings it back."""
        other = reopen()
        store.write([fact()], [result()], at=T0)
        other.write([], [result(at=T0 + MINUTE, outcome="failed")], at=T0 + MINUTE)
        assert store.write([], [result(at=T0 + 2 * MINUTE)], at=T0).results_written == 0
        store.distrust()
        assert store.write([], [result(at=T0 + 3 * MINUTE)], at=T0).results_written == 1
        assert store.latest_results([FRAUD]) == {FRAUD: [result(at=T0 + 3 * MINUTE)]}
        # What it believes of the facts was read again, not lost: unchanged is still known.
        again = store.write([], [], at=T0 + 4 * MINUTE, unchanged=[(FRAUD, "mlflow-registry")])
        assert again.facts_unchanged == 1

    def test_the_latest_run_is_the_same_for_every_replica(self, store, reopen):
        other = reopen(history_days=1)
        assert store.last_run() is None
        first = RunRow(T0, "replica-a", 1.5, 3, {"rollup": [{"name": "models"}]})
        store.record_run(first)
        assert other.last_run() == store.last_run() == first
        second = RunRow(T0 + MINUTE, "replica-b", 0.25, 4, {"outcomes": {"passed": 2}})
        other.record_run(second)
        assert store.last_run() == other.last_run() == second
        # Older runs keep their figures, not their report.
        assert store.runs(T0) == [RunRow(T0, "replica-a", 1.5, 3, {}), second]
        assert store.runs(T0 + MINUTE) == [second]
        # A run drops those older than the history.
        other.record_run(RunRow(T0 + timedelta(days=1, minutes=1), "replica-b", 1, 4, {}))
        assert [run.at for run in store.runs(T0)] == [
            T0 + MINUTE,
            T0 + timedelta(days=1, minutes=1),
        ]

    def test_readers_see_whole_writes_while_a_thread_writes(self, store):
        entities = [f"resource:default/model-{n}" for n in range(200)]
        checks = [f"check-{n:02d}" for n in range(12)]
        rounds = 15
        errors: list[BaseException] = []
        done = threading.Event()

        def write() -> None:
            try:
                for n in range(rounds):
                    at = T0 + n * MINUTE
                    facts = [fact(e, at=at, step=n) for e in entities]
                    results = [result(e, c, at=at, step=n) for e in entities for c in checks]
                    store.write(facts, results, at=at)
            except BaseException as exc:
                errors.append(exc)
            finally:
                done.set()

        writer = threading.Thread(target=write)
        writer.start()
        reads = 0
        while not done.is_set() or reads == 0:
            found = store.latest_results([entities[-1]])
            if found:
                stamps = {row.timestamp for row in found[entities[-1]]}
                assert len(found[entities[-1]]) == len(checks) and len(stamps) == 1
            latest = store.latest_facts(entities[0], ["mlflow-registry"])
            if latest:
                assert latest["mlflow-registry"].facts["step"] <= rounds - 1
            reads += 1
        writer.join()
        assert not errors, errors
        final = store.latest_results()
        assert len(final) == len(entities)
        assert {row.facts["step"] for rows in final.values() for row in rows} == {rounds - 1}

    # --- refused values -----------------------------------------------------------------

    @pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
    def test_non_finite_facts_are_refused_naming_the_row_and_nothing_is_written(self, store, bad):
        fine = fact(CHURN)
        with pytest.raises(ValueError, match=r"fraud-detector.*mlflow-registry"):
            store.write([fine, fact(latencyP95=bad)], [result()], at=T0)
        with pytest.raises(ValueError, match=r"latency-slo.*fraud-detector"):
            store.write([fine], [result(check_id="latency-slo", latencyP95=[1.0, bad])], at=T0)
        assert store.latest_facts(CHURN, ["mlflow-registry"]) == {}
        assert store.latest_results() == {}

    def test_naive_timestamps_and_unknown_outcomes_are_refused(self, store):
        naive = datetime(2025, 3, 1, 12, 0)  # no time zone: refused
        with pytest.raises(ValueError, match="time zone"):
            store.write([fact(at=naive)], [], at=T0)
        with pytest.raises(ValueError, match="time zone"):
            store.write([], [], at=naive)
        with pytest.raises(ValueError, match="time zone"):
            store.facts_range(FRAUD, RETRIEVERS, naive, T0)
        with pytest.raises(ValueError, match="outcome 'skipped'"):
            store.write([], [result(outcome="skipped")], at=T0)

    def test_hostile_entity_refs_are_stored_and_read_back_exactly(self, store):
        facts = [fact(ref, unknown={ref: ref}, name=ref) for ref in HOSTILE_REFS]
        results = [result(ref, check_id=ref, reasons=(ref,), name=ref) for ref in HOSTILE_REFS]
        stats = store.write(facts, results, at=T0)
        assert stats == WriteStats(len(HOSTILE_REFS), 0, len(HOSTILE_REFS))

        for row, check in zip(facts, results, strict=True):
            assert store.latest_facts(row.entity, ["mlflow-registry"]) == {"mlflow-registry": row}
            assert store.latest_results([row.entity]) == {row.entity: [check]}
        assert set(store.latest_results()) == set(HOSTILE_REFS)
        assert store.forget(HOSTILE_REFS[1:]) == 1
        assert set(store.latest_results()) == set(HOSTILE_REFS[1:])
