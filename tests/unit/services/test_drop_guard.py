"""The drop guard: which reads are held, and what confirms or ends a hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trellis.services.drop_guard import DropGuard, DropPolicy, Verdict

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
POLICY = DropPolicy(max_share=0.5, confirm_seconds=600)


@pytest.mark.parametrize(
    ("kept", "read", "held"),
    [
        (312, 0, True),  # everything gone: always held
        (1, 0, True),
        (100, 49, True),  # lost 51 %
        (100, 50, False),  # lost exactly the allowed share
        (100, 99, False),
        (100, 150, False),  # growth is never a drop
        (0, 0, False),  # nothing served, nothing to protect
        (3, 1, True),
        (2, 1, False),
    ],
)
def test_a_drop_is_to_zero_or_past_the_share(kept, read, held):
    assert POLICY.is_drop(kept, read) is held


def test_only_to_zero_holds_nothing_but_a_drop_to_zero():
    policy = DropPolicy(only_to_zero=True)
    assert policy.is_drop(5, 0)
    assert not policy.is_drop(5, 1)
    assert DropPolicy(max_share=1.0).is_drop(5, 0)
    assert not DropPolicy(max_share=1.0).is_drop(5, 1)


def test_a_drop_is_held_until_reads_have_shown_it_for_the_whole_period():
    guard = DropGuard()
    first = guard.judge("mlflow", kept=312, read=0, now=T0, policy=POLICY)
    assert first.verdict is Verdict.HOLD
    assert first.hold is not None and first.hold.confirms_at == T0 + timedelta(seconds=600)
    middle = guard.judge("mlflow", kept=312, read=2, now=T0 + timedelta(seconds=599), policy=POLICY)
    assert middle.verdict is Verdict.HOLD
    assert middle.hold is not None
    assert (middle.hold.reads, middle.hold.read, middle.hold.since) == (2, 2, T0)
    assert [h.source for h in guard.holds] == ["mlflow"]
    last = guard.judge("mlflow", kept=312, read=0, now=T0 + timedelta(seconds=600), policy=POLICY)
    assert last.verdict is Verdict.CONFIRMED
    assert last.hold is not None and last.hold.reads == 3
    assert guard.holds == ()
    # Once published, the smaller fleet is what is kept: no new hold.
    assert guard.judge("mlflow", kept=0, read=0, now=T0, policy=POLICY).verdict is Verdict.PUBLISH


def test_a_read_back_to_normal_ends_the_hold_and_a_new_drop_starts_over():
    guard = DropGuard()
    guard.judge("mlflow", kept=10, read=0, now=T0, policy=POLICY)
    back = guard.judge("mlflow", kept=10, read=10, now=T0 + timedelta(seconds=60), policy=POLICY)
    assert back.verdict is Verdict.PUBLISH
    assert back.hold is not None and back.hold.since == T0  # the hold that ended, for the log
    assert guard.held("mlflow") is None
    again = guard.judge("mlflow", kept=10, read=0, now=T0 + timedelta(seconds=700), policy=POLICY)
    assert again.verdict is Verdict.HOLD  # the earlier hold's time does not count
    assert again.hold is not None and again.hold.since == T0 + timedelta(seconds=700)


def test_a_zero_period_still_needs_a_second_read():
    guard = DropGuard()
    policy = DropPolicy(confirm_seconds=0)
    assert guard.judge("mlflow", kept=4, read=0, now=T0, policy=policy).verdict is Verdict.HOLD
    assert guard.judge("mlflow", kept=4, read=0, now=T0, policy=policy).verdict is (
        Verdict.CONFIRMED
    )


def test_sources_are_held_apart_and_an_operator_releases_them_all():
    guard = DropGuard()
    clusters = DropPolicy(only_to_zero=True, confirm_seconds=600)
    guard.judge("kubernetes:edge", kept=3, read=0, now=T0, policy=clusters)
    assert guard.judge("kubernetes:hub", kept=3, read=1, now=T0, policy=clusters).verdict is (
        Verdict.PUBLISH
    )
    guard.judge("mlflow", kept=10, read=0, now=T0, policy=POLICY)
    assert [h.source for h in guard.holds] == ["kubernetes:edge", "mlflow"]
    assert guard.holds[0].as_dict() == {
        "source": "kubernetes:edge",
        "kept": 3,
        "read": 0,
        "since": T0.isoformat(),
        "last_read": T0.isoformat(),
        "reads": 1,
        "confirms_at": (T0 + timedelta(seconds=600)).isoformat(),
    }
    released = guard.release_all()
    assert [h.source for h in released] == ["kubernetes:edge", "mlflow"]
    assert guard.holds == ()
