"""Two ``trellis serve`` replicas on one real PostgreSQL fact store: one scorer between them.

Both replicas read one registry (an MLflow SQLite file, read directly) and share a PostgreSQL
server the test starts. The scorer runs every 5 s (the shortest interval allowed); which
replica ran each run is read back from the store, which keeps every run with its replica.
The advisory lease itself (take, hold, lose with its connection) is tried first, in-process.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from support.postgres import PostgresServer, postgres_server
from support.registry import fleet, seed
from support.services import TrellisServer, free_port, wait_until
from support.timing import scaled
from trellis.ports import RunRow
from trellis.sources.fact_store import FactStore
from trellis.sources.fact_store.lease import AdvisoryLease

pytestmark = pytest.mark.postgres

INTERVAL = 5.0  # seconds: the shortest scoring interval the settings allow
TOKEN = "replicas-token-" + "r" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MODELS = fleet(4)
MODEL = f"default/resource/{MODELS[0].name}"
RETRIEVERS = ("mlflow-registry", "blueprint")


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


def test_one_advisory_lease_is_held_by_one_holder_and_lost_with_its_connection(postgres):
    url = postgres.database()
    first, second = AdvisoryLease(url), AdvisoryLease(url)
    try:
        assert first.try_acquire() and first.try_acquire()  # taken, then still held
        assert not second.try_acquire()
        with psycopg.connect(postgres.url("postgres", driver="postgresql"), autocommit=True) as db:
            terminated = db.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_locks "
                "WHERE locktype = 'advisory' AND granted"
            ).fetchone()
        assert terminated == (1,)
        assert not first.try_acquire()  # its connection died: leadership is lost ...
        assert not first.held
        assert second.try_acquire()  # ... and the other takes it
        assert not first.try_acquire()
        second.release()
        assert first.try_acquire()
    finally:
        first.close()
        second.close()


@dataclass
class Replicas:
    servers: list[TrellisServer]
    database: str
    store: FactStore
    started: datetime

    def runs(self) -> list[RunRow]:
        return self.store.runs(self.started)

    def wait_for_runs(self, count: int, what: str) -> list[RunRow]:
        wait_until(
            lambda: len(self.runs()) >= count,
            timeout=INTERVAL * (count + 6),
            what=what,
        )
        return self.runs()

    def by_replica(self, replica: str) -> TrellisServer:
        pid = int(replica.rsplit(":", 1)[1])
        (server,) = [s for s in self.servers if s.process and s.process.popen.pid == pid]
        return server


@pytest.fixture(scope="module")
def replicas(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Replicas]:
    tmp = tmp_path_factory.mktemp("replicas")
    registry = f"sqlite:///{tmp / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp)  # MLflow resolves the default artifact location from here
        seed(registry, MODELS)
    database = postgres.database()
    env = {
        "TRELLIS_MLFLOW__TRACKING_URI": registry,
        "TRELLIS_API_TOKENS": TOKEN,
        "TRELLIS_SCORECARDS__INTERVAL_SECONDS": str(INTERVAL),
        "TRELLIS_SCORECARDS__DATABASE_URL": database,
    }
    servers = []
    for name in ("one", "two"):
        (tmp / name).mkdir()
        servers.append(TrellisServer(state_dir=tmp / name / "state", env=env, port=free_port()))
    store = FactStore(database)
    try:
        started = datetime.now(UTC) - timedelta(minutes=1)
        for server in servers:
            server.start()
        yield Replicas(servers, database, store, started)
    finally:
        for server in servers:
            server.stop()
        store.close()


def leader_gauge(server: TrellisServer) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=scaled(5)).text
    (value,) = re.findall(r"^trellis_scorer_leader ([0-9.]+)$", text, re.MULTILINE)
    return float(value)


def answers(server: TrellisServer) -> dict[str, Any]:
    """Every Tech Insights and scorecard answer the test compares between replicas."""
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=scaled(10)) as http:
        entity = {"entity": MODEL.replace("default/resource/", "resource:default/")}
        ids = {"ids[]": list(RETRIEVERS)}
        calls = {
            "checks": http.get("/api/tech-insights/checks"),
            "run one": http.post(f"/api/tech-insights/checks/run/{MODEL}", json={}),
            "run bulk": http.post(
                "/api/tech-insights/checks/run",
                json={
                    "entities": [
                        {"namespace": "default", "kind": "resource", "name": spec.name}
                        for spec in MODELS
                    ]
                },
            ),
            "facts latest": http.get("/api/tech-insights/facts/latest", params={**entity, **ids}),
            "facts range": http.get(
                "/api/tech-insights/facts/range",
                params={
                    **entity,
                    **ids,
                    "startDatetime": "2000-01-01T00:00:00Z",
                    "endDatetime": "2100-01-01T00:00:00Z",
                },
            ),
            "fact schemas": http.get("/api/tech-insights/fact-schemas"),
            "fleet": http.get("/api/scorecards"),
            "entity scorecards": http.get(f"/api/scorecards/{MODEL}"),
        }
    for name, response in calls.items():
        assert response.status_code == 200, (name, response.text)
    return {name: response.json() for name, response in calls.items()}


def test_two_replicas_share_one_scorer_answer_alike_and_hand_over(replicas: Replicas) -> None:
    # Over several intervals, one replica ran every run, one run per interval in total.
    runs = replicas.wait_for_runs(3, "three scorer runs")
    leaders = {run.replica for run in runs}
    assert len(leaders) == 1, runs
    leader = replicas.by_replica(leaders.pop())
    (follower,) = [s for s in replicas.servers if s is not leader]
    assert (leader_gauge(leader), leader_gauge(follower)) == (1, 0)
    for before, after in itertools.pairwise(runs):
        # The next run starts an interval after the last one ended: never two in one interval.
        assert after.at - before.at >= timedelta(seconds=INTERVAL - 0.5), runs

    # Both replicas answer every route alike, from the shared store (compared between runs).
    for _attempt in range(3):
        count = len(replicas.wait_for_runs(len(replicas.runs()) + 1, "the next run"))
        from_leader, from_follower = answers(leader), answers(follower)
        if len(replicas.runs()) == count:
            break
    assert from_follower == from_leader
    assert from_leader["run one"], "the model's checks have kept results"
    assert from_leader["facts latest"]["mlflow-registry"]["facts"]
    assert from_leader["fleet"]["lastRun"]["at"] == replicas.runs()[-1].at.isoformat()

    # Kill the leader right after a run: the follower takes over within an interval or so.
    before_kill = replicas.wait_for_runs(len(replicas.runs()) + 1, "a run before the kill")
    assert leader.process is not None
    os.killpg(leader.process.popen.pid, signal.SIGKILL)
    leader.process.popen.wait(timeout=scaled(10))
    leader.process = None
    after = replicas.wait_for_runs(len(before_kill) + 2, "the follower to take over")
    new_runs = after[len(before_kill) :]
    assert {run.replica for run in new_runs} == {f"{_host(before_kill)}:{follower_pid(follower)}"}
    assert leader_gauge(follower) == 1

    # Nothing was written twice: no run twice, no fact row but a recorded run's, no repeat.
    assert len({run.at for run in after}) == len(after)
    with psycopg.connect(replicas.database.replace("+psycopg", "")) as db:
        stamps = {row[0] for row in db.execute("SELECT DISTINCT timestamp FROM trellis_facts")}
        repeats = db.execute(
            "SELECT count(*) FROM (SELECT entity, retriever, version, facts, unknown, "
            "lag(facts) OVER w AS previous_facts, lag(unknown) OVER w AS previous_unknown, "
            "lag(version) OVER w AS previous_version FROM trellis_facts "
            "WINDOW w AS (PARTITION BY entity, retriever ORDER BY timestamp, id)) AS history "
            "WHERE (version, facts, unknown) = (previous_version, previous_facts, previous_unknown)"
        ).fetchone()
        results = db.execute(
            "SELECT count(*), count(DISTINCT (entity, check_id)) FROM trellis_check_results"
        ).fetchone()
    assert stamps <= {run.at for run in after}
    assert repeats == (0,)
    assert results is not None and results[0] == results[1] > 0


def follower_pid(server: TrellisServer) -> int:
    assert server.process is not None
    return server.process.popen.pid


def _host(runs: list[RunRow]) -> str:
    return runs[0].replica.rsplit(":", 1)[0]
