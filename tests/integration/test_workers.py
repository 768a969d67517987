"""Worker processes: a job's failure comes back as it was, a dead worker is reported, a slot
comes back only when its worker is gone, and closing stops what still runs."""

from __future__ import annotations

import asyncio
import os
import pickle
import time
from functools import partial

import psutil
import pytest

from support.timing import scaled
from trellis.errors import AnswerError, Busy, SourceUnavailable
from trellis.sources.workers import WorkerPool


def test_errors_cross_a_process_boundary_intact():
    for error in (
        AnswerError([("cloud", "'mars' is not one of aws"), ("owner", "required")]),
        SourceUnavailable("blueprint source", "no tag 9.9.9"),
        Busy("too many renders", 7),
    ):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error)
        assert vars(copy) == vars(error)


def test_a_job_result_and_its_failure_come_back():
    pool = WorkerPool(workers=1, queue=0, timeout_seconds=scaled(10))

    async def both() -> None:
        assert await pool.run(partial(int, "42")) == 42
        with pytest.raises(ValueError, match="invalid literal"):
            await pool.run(int, "forty-two")

    asyncio.run(both())
    pool.close()


def test_a_worker_that_dies_is_reported_and_its_slot_comes_back():
    pool = WorkerPool(workers=1, queue=0, timeout_seconds=scaled(10), what="render")

    async def die_then_work() -> int:
        with pytest.raises(SourceUnavailable, match="exit code 3"):
            await pool.run(os._exit, 3)
        assert pool.running == 0
        return await pool.run(abs, -2)

    assert asyncio.run(die_then_work()) == 2
    pool.close()


def test_closing_the_pool_stops_a_running_job():
    pool = WorkerPool(workers=1, queue=0, timeout_seconds=scaled(60))

    async def close_while_running() -> list[psutil.Process]:
        job = asyncio.create_task(pool.run(time.sleep, scaled(60)))
        give_up = time.monotonic() + scaled(10)
        while not (
            workers := [
                p
                for p in psutil.Process().children(recursive=True)
                if "forkserver" in " ".join(p.cmdline()) and p.ppid() != os.getpid()
            ]
        ):
            assert time.monotonic() < give_up, "the job never started"
            await asyncio.sleep(0.01)
        await asyncio.to_thread(pool.close)
        with pytest.raises(SourceUnavailable, match="before answering"):
            await job
        return workers

    workers = asyncio.run(close_while_running())
    assert [w.pid for w in workers if w.is_running()] == []
