"""How fast a fleet-sized fact store is written and read, on SQLite and PostgreSQL.

The scorecard routes answer from the store, so a lookup must stay an index read however large
the fleet. Writes 10,000 entities x 12 check results (+ 2 facts each) into a fresh SQLite
store, then times ``latest_results`` and ``latest_facts`` for every 200th entity, next to the
floor: the same rows read with plain ``sqlite3`` by the same index.

Replicas share a PostgreSQL store: the same first write is timed into a fresh database of a
PostgreSQL server started here (``tests/support/postgres.py``), against SQLite's in the same
run. Then the scorer's hand-over: a leader process holds the scorer's lease (the advisory
lock) while a follower scorer asks it every ``--interval`` seconds; the leader is killed
(SIGKILL) at a random moment of the follower's interval, and the time until the follower has
kept a run of its own is measured, ``--handovers`` times.

Usage: ``.venv/bin/python benchmarks/fact_store.py [--entities 10000] [--checks 12]
[--interval 5] [--handovers 3]``. One JSON object goes to stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import log, median, timed  # noqa: E402

from support.fact_store_contract import T0, fact, result  # noqa: E402
from support.postgres import PostgresServer, postgres_server  # noqa: E402
from support.scoring_scene import Scene  # noqa: E402
from trellis.ports import FactRow, ResultRow  # noqa: E402
from trellis.sources.fact_store import FactStore  # noqa: E402
from trellis.sources.fact_store.lease import AdvisoryLease  # noqa: E402

GOALS = {
    "latest_results_median_ms": 5.0,
    "latest_facts_median_ms": 5.0,
    "postgres_over_sqlite_first_write": 1.5,
}

_PHASE = random.Random()  # of its own: the test support seeds the module's generator

_LEADER = """
import sys, time
from trellis.sources.fact_store.lease import AdvisoryLease
lease = AdvisoryLease(sys.argv[1])
assert lease.try_acquire(), "the lease is free"
print("held", flush=True)
time.sleep(3600)
"""


def lookup_ms(entities: list[str], lookup: Callable[[str], object]) -> float:
    """Median milliseconds of ``lookup`` over every 200th entity (each must find something)."""
    timings = []
    for entity in entities[::200]:
        started = time.perf_counter()
        found = lookup(entity)
        timings.append(time.perf_counter() - started)
        assert found, entity
    return round(median(timings) * 1000, 3)


def first_write(url: str, facts: list[FactRow], results: list[ResultRow]) -> float:
    """Seconds of the first write of ``facts`` and ``results`` into an empty store at ``url``."""
    store = FactStore(url)
    try:
        store.open()  # the tables, made before the clock starts
        seconds, _ = timed(lambda: store.write(facts, results, at=T0))
    finally:
        store.close()
    return seconds


def _now() -> datetime:
    return datetime.now(UTC)


def handover_seconds(server: PostgresServer, work: Path, interval: float) -> float:
    """Seconds from killing the lease holder to a run kept by the follower that took over."""
    url = server.database()
    leader = subprocess.Popen(
        [sys.executable, "-c", _LEADER, url],
        stdout=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": str(_ROOT / "backend")},
    )
    scene = Scene(work / f"scene-{time.monotonic_ns()}")
    scene.tmp_path.mkdir()
    store = FactStore(url)
    lease = AdvisoryLease(url)
    follower = scene.scorer(store=store, lease=lease, interval_seconds=interval)
    follower.pipeline.clock = _now  # the runs' own moments, not the scene's fixed one
    try:
        assert leader.stdout is not None and leader.stdout.readline().strip() == "held"
        follower.start()
        time.sleep(interval * (1 + _PHASE.random()))  # at a random moment of its interval
        assert not follower.leading, "the follower must not lead while the leader lives"
        since = datetime.now(UTC)
        started = time.perf_counter()
        leader.send_signal(signal.SIGKILL)
        deadline = started + 10 * interval + 30
        while time.perf_counter() < deadline:
            last = store.last_run()
            if last is not None and last.at >= since:
                return time.perf_counter() - started
            time.sleep(0.02)
        raise RuntimeError("the follower did not take over")
    finally:
        leader.kill()
        leader.wait()
        follower.stop()


def main(argv: list[str] | None = None) -> int:
    """Run the measurement and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--checks", type=int, default=12)
    parser.add_argument("--interval", type=float, default=5.0, help="the follower's interval")
    parser.add_argument("--handovers", type=int, default=3, help="leaders killed")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "scorecards.db"
        store = FactStore(f"sqlite:///{path}")
        entities = [f"resource:default/model-{n:05d}" for n in range(args.entities)]
        facts = [fact(e, r) for e in entities for r in ("mlflow-registry", "prometheus-serving")]
        results = [result(e, f"check-{c:02d}") for e in entities for c in range(args.checks)]
        log(f"writing {len(results):,} results and {len(facts):,} facts")
        write_seconds, _ = timed(lambda: store.write(facts, results, at=T0))
        results_ms = lookup_ms(entities, lambda e: store.latest_results([e])[e])
        facts_ms = lookup_ms(entities, lambda e: store.latest_facts(e, ["mlflow-registry"]))
        store.close()

        with sqlite3.connect(path) as conn:
            floor_ms = lookup_ms(
                entities,
                lambda e: conn.execute(
                    "SELECT * FROM trellis_check_results WHERE entity = ?", (e,)
                ).fetchall(),
            )

        log("starting PostgreSQL")
        with postgres_server() as server:
            log(f"writing {len(results):,} results and {len(facts):,} facts into PostgreSQL")
            sqlite_seconds = first_write(f"sqlite:///{Path(work) / 'again.db'}", facts, results)
            postgres_seconds = first_write(server.database(), facts, results)
            handovers = []
            for number in range(args.handovers):
                log(f"hand-over {number + 1} of {args.handovers}")
                handovers.append(handover_seconds(server, Path(work), args.interval))

    report = {
        "entities": args.entities,
        "results": len(results),
        "first_write_seconds": round(write_seconds, 3),
        "sqlite_first_write_seconds": round(sqlite_seconds, 3),
        "postgres_first_write_seconds": round(postgres_seconds, 3),
        "postgres_over_sqlite_first_write": round(postgres_seconds / sqlite_seconds, 2),
        "handover_interval_seconds": args.interval,
        "handover_seconds": [round(seconds, 3) for seconds in handovers],
        "handover_max_seconds": round(max(handovers, default=0), 3),
        "latest_results_median_ms": results_ms,
        "latest_facts_median_ms": facts_ms,
        "plain_sqlite_median_ms": floor_ms,
        "latest_results_over_plain_sqlite": round(results_ms / floor_ms, 2),
        "goals": GOALS,
    }
    report["met"] = {key: report[key] <= goal for key, goal in GOALS.items()}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
