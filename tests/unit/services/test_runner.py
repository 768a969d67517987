"""The background runner: runs its job again, survives a crash, and stops without waiting."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from support.timing import scaled
from trellis.services.runner import Runner

LOG = logging.getLogger("trellis.test-runner")
#: Longer than any test waits: a run that came after it would mean ``stop`` did not stop.
HOUR = 3_600.0


class Job:
    """Counts its runs; raises on the runs the test asks for; signals after ``want`` runs."""

    def __init__(self, want: int, *, crash_on: frozenset[int] = frozenset(), wait=None) -> None:
        self.want = want
        self.crash_on = crash_on
        self.wait = wait
        self.runs = 0
        self.done = threading.Event()

    def __call__(self) -> float | None:
        self.runs += 1
        if self.runs >= self.want:
            self.done.set()
        if self.runs in self.crash_on:
            raise RuntimeError(f"run {self.runs} broke")
        return self.wait


def runner(job: Job, interval: float = 0.01) -> Runner:
    return Runner(job, interval_seconds=interval, name="trellis-test", what="test job", log=LOG)


def test_the_job_runs_again_after_the_interval() -> None:
    job = Job(want=3)
    background = runner(job)
    background.start()
    try:
        assert job.done.wait(scaled(5))
    finally:
        background.stop()
    assert not background.running


def test_a_crash_is_logged_and_the_loop_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    job = Job(want=3, crash_on=frozenset({1}))
    background = runner(job)
    with caplog.at_level(logging.ERROR, logger=LOG.name):
        background.start()
        try:
            assert job.done.wait(scaled(5))
        finally:
            background.stop()
    crashes = [r for r in caplog.records if r.name == LOG.name]
    assert [r.getMessage() for r in crashes] == ["test job crashed"]
    assert crashes[0].exc_info is not None


def test_the_job_chooses_a_sooner_run() -> None:
    """A job that returns a wait is run again after it, not after the (hour-long) interval."""
    job = Job(want=2, wait=0.01)
    background = runner(job, interval=HOUR)
    background.start()
    try:
        assert job.done.wait(scaled(5))
    finally:
        background.stop()


def test_stop_ends_the_wait_at_once() -> None:
    job = Job(want=1)
    background = runner(job, interval=HOUR)
    background.start()
    assert job.done.wait(scaled(5))
    background.join_seconds = scaled(5)
    background.stop()
    assert not background.running
    assert job.runs == 1


def test_a_stopped_runner_starts_again() -> None:
    job = Job(want=1)
    background = runner(job, interval=HOUR)
    background.start()
    assert job.done.wait(scaled(5))
    background.stop()
    job.want, job.done = 2, threading.Event()
    background.start()
    try:
        assert job.done.wait(scaled(5))
    finally:
        background.stop()
    assert job.runs == 2


class GatedJob(Job):
    """A Job whose first run holds until ``gate`` opens, and which records when each run began."""

    def __init__(self, want: int) -> None:
        super().__init__(want)
        self.gate = threading.Event()
        self.running = threading.Event()
        self.began: list[float] = []

    def __call__(self) -> float | None:
        self.began.append(time.monotonic())
        if len(self.began) == 1:
            self.running.set()
            self.gate.wait(scaled(5))
        return super().__call__()


def test_a_wake_runs_the_job_at_once_instead_of_after_the_interval() -> None:
    job = Job(want=1)
    background = runner(job, interval=HOUR)
    background.start()
    try:
        assert job.done.wait(scaled(5))
        job.want, job.done = 2, threading.Event()
        background.wake()
        assert job.done.wait(scaled(5))
    finally:
        background.stop()
    assert job.runs == 2


def test_wakes_during_a_run_bring_exactly_one_run_after_it() -> None:
    """Nothing a wake announced is missed, and fifty wakes are not fifty runs."""
    job = GatedJob(want=2)
    background = runner(job, interval=HOUR)
    background.start()
    try:
        assert job.running.wait(scaled(5))
        for _ in range(50):
            background.wake()
        job.gate.set()
        assert job.done.wait(scaled(5))
    finally:
        background.stop()
    assert job.runs == 2


def test_a_wake_soon_after_a_run_waits_for_the_debounce() -> None:
    """Runs that wakes bring are at least ``debounce_seconds`` apart (a lower bound only)."""
    debounce = 0.2
    job = GatedJob(want=2)
    job.gate.set()
    background = Runner(
        job,
        interval_seconds=HOUR,
        name="trellis-test",
        what="test job",
        log=LOG,
        debounce_seconds=debounce,
    )
    background.start()
    try:
        assert job.running.wait(scaled(5))
        for _ in range(20):
            background.wake()
        assert job.done.wait(scaled(5))
    finally:
        background.stop()
    assert job.runs == 2
    assert job.began[1] - job.began[0] >= debounce
