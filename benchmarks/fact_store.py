"""How fast one entity's kept results and facts come back from a fleet-sized fact store.

The scorecard routes answer from the store, so a lookup must stay an index read however large
the fleet. Writes 10,000 entities x 12 check results (+ 2 facts each) into a fresh SQLite
store, then times ``latest_results`` and ``latest_facts`` for every 200th entity, next to the
floor: the same rows read with plain ``sqlite3`` by the same index.

Usage: ``.venv/bin/python benchmarks/fact_store.py [--entities 10000] [--checks 12]``. One
JSON object goes to stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import log, median, timed  # noqa: E402

from support.fact_store_contract import T0, fact, result  # noqa: E402
from trellis.sources.fact_store import FactStore  # noqa: E402

GOALS = {"latest_results_median_ms": 5.0, "latest_facts_median_ms": 5.0}


def lookup_ms(entities: list[str], lookup: Callable[[str], object]) -> float:
    """Median milliseconds of ``lookup`` over every 200th entity (each must find something)."""
    timings = []
    for entity in entities[::200]:
        started = time.perf_counter()
        found = lookup(entity)
        timings.append(time.perf_counter() - started)
        assert found, entity
    return round(median(timings) * 1000, 3)


def main(argv: list[str] | None = None) -> int:
    """Run the measurement and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--checks", type=int, default=12)
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

    report = {
        "entities": args.entities,
        "results": len(results),
        "first_write_seconds": round(write_seconds, 3),
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
