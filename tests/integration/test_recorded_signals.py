"""Pages and fleet queries read platform-hub's recorded series where Prometheus has them.

The test fleet (``support.observability.build_fleet``: every runtime, hostile names, look-
alikes, a flaky and a stale server) is backfilled into a real Prometheus. Then the hub's
recording rules, rendered from the blueprint, are evaluated over that history by that
Prometheus (each rule's expression as a range query at its group's interval, from a minute
boundary) and the results imported with ``promtool`` under the rules' names
(``PrometheusServer.record``). ``promtool tsdb create-blocks-from rules`` would do the same
but shifts each group's instants by a hash of its name and file, as a live Prometheus does,
off the minutes that pages and fleet queries ask about; on the minutes, the recorded value
and the raw one are the same evaluation and must agree to 1e-9. The rules are recorded from
65 minutes before the end only, so earlier Prometheus has no recorded name: the raw road is
detected on the same server.

Imported rules carry no staleness markers (live rule evaluation writes them when a server
disappears), so a server that stopped reporting keeps its last recorded value for the
5-minute lookback: it is compared on the points both roads have.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from support.observability import (
    DECOYS,
    FLAKY,
    FRAUD_EU,
    FRAUD_US,
    HOSTILE,
    IMAGE_EU,
    IMAGE_US,
    INJECTIONS,
    LLM_EU,
    LLM_US,
    STALE,
    build_fleet,
    deployment,
)
from support.prometheus import Fleet, PrometheusServer, hub_rules_file, prometheus_with
from support.timing import scaled
from trellis.model import Sample
from trellis.observability import EntityServers, Limits, Window, plan_window
from trellis.observability.fleet import fleet_rows, plan_fleet_queries
from trellis.observability.queries import (
    HUB_SIGNALS,
    RECORDED_QUANTILE_LABEL,
    hub_recorded_names,
    plan_queries,
)
from trellis.services.observability import Observer
from trellis.services.recording_rules import RecordedSeries
from trellis.sources.prometheus import PrometheusSource

pytestmark = pytest.mark.prometheus

RULES_BEFORE_END = 65 * 60
#: Every server that reports until the end, of every runtime, hostile names included.
LIVE = (FRAUD_EU, FRAUD_US, IMAGE_EU, IMAGE_US, LLM_EU, LLM_US, FLAKY, *DECOYS, *HOSTILE,
        *INJECTIONS)  # fmt: skip


@pytest.fixture(scope="module")
def recorded_fleet() -> Fleet:
    return build_fleet(math.floor(datetime.now(UTC).timestamp() / 60) * 60)


@pytest.fixture(scope="module")
def prom(recorded_fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    work = tmp_path_factory.mktemp("recorded-prom")
    with prometheus_with(recorded_fleet.samples, work / "data") as server:
        rules = hub_rules_file(work / "hub-rules.yaml")
        server.record(rules, recorded_fleet.end - RULES_BEFORE_END, recorded_fleet.end)
        yield server


@pytest.fixture(scope="module")
def requests() -> list[str]:
    return []


@pytest.fixture(scope="module")
def source(prom: PrometheusServer, requests: list[str]) -> Iterator[PrometheusSource]:
    hooks = {"request": [lambda r: requests.append(r.url.path)]}
    with httpx.Client(base_url=prom.url, timeout=scaled(20), event_hooks=hooks) as client:
        yield PrometheusSource(client, label=prom.url)


def at(fleet: Fleet, seconds_before_end: float = 0) -> datetime:
    return datetime.fromtimestamp(fleet.end - seconds_before_end, UTC)


def observer(source: PrometheusSource, recorded: RecordedSeries | None) -> Observer:
    return Observer(
        prometheus=source, registry=None, limits=Limits(), page_ttl_seconds=0, recorded=recorded
    )


def window_of(fleet: Fleet) -> Window:
    return plan_window("1h", "60s", Limits(), end=at(fleet))


def page(obs: Observer, fleet: Fleet, servers: tuple[Any, ...]) -> dict[str, Any]:
    target = EntityServers(None, tuple(deployment(s) for s in servers))
    return obs.page("resource:default/fleet", target, window_of(fleet))


def assert_same_signals(
    raw: list[dict[str, Any]], recorded: list[dict[str, Any]], what: str, *, shared: bool = False
) -> None:
    """Same signals, statuses and points; with ``shared``, only the points both have."""
    assert [s["id"] for s in raw] == [s["id"] for s in recorded], what
    for mine, theirs in zip(raw, recorded, strict=True):
        name = f"{what} {mine['id']}"
        points = dict(map(tuple, theirs["series"]))
        if shared:
            assert {t for t, _ in mine["series"]} <= set(points), name
        else:
            assert mine["status"] == theirs["status"], name
            assert [t for t, _ in mine["series"]] == list(points), name
        for t, value in mine["series"]:
            if value is None:
                assert points[t] is None, (name, t)
            else:
                assert points[t] == pytest.approx(value, rel=1e-9, abs=1e-12), (name, t)


def test_prometheus_has_every_recorded_name_and_none_before_the_rules(source, recorded_fleet):
    assert RecordedSeries(source, now=lambda: at(recorded_fleet)).available() == set(
        hub_recorded_names()
    )
    early = RecordedSeries(source, now=lambda: at(recorded_fleet, RULES_BEFORE_END + 60))
    assert early.available() == frozenset()


def test_a_page_from_recorded_series_has_the_raw_page_s_values(source, recorded_fleet):
    recorded = RecordedSeries(source, now=lambda: at(recorded_fleet))
    names = recorded.available()
    window = window_of(recorded_fleet)
    plan = {q.key: q.promql for q in plan_queries(list(map(deployment, LIVE)), 300, names)}
    for key in [*HUB_SIGNALS, "latency", "ttft"]:  # read from the recorded series alone
        assert "server:" in plan[key] and "rate(" not in plan[key], key
    for key in ("latency", "ttft"):  # each server's recorded percentiles, not its buckets
        assert RECORDED_QUANTILE_LABEL in plan[key], key
    with_rules = page(observer(source, recorded), recorded_fleet, LIVE)
    raw = page(observer(source, None), recorded_fleet, LIVE)
    assert with_rules["sources"]["prometheus"] == raw["sources"]["prometheus"]
    assert raw["sources"]["prometheus"]["status"] == "ok"
    assert window.rate_seconds == 300
    ok = 0
    for mine, theirs in zip(raw["servers"], with_rules["servers"], strict=True):
        assert (mine["namespace"], mine["name"]) == (theirs["namespace"], theirs["name"])
        assert_same_signals(mine["signals"], theirs["signals"], mine["name"])
        ok += sum(s["status"] == "ok" for s in mine["signals"])
    assert ok > 100  # the values compared are real ones, not missing series
    assert_same_signals(raw["model"]["signals"], with_rules["model"]["signals"], "model")


def test_a_server_that_stopped_keeps_its_values_on_shared_points(source, recorded_fleet):
    recorded = RecordedSeries(source, now=lambda: at(recorded_fleet))
    raw = page(observer(source, None), recorded_fleet, (STALE,))
    with_rules = page(observer(source, recorded), recorded_fleet, (STALE,))
    (mine,), (theirs,) = raw["servers"], with_rules["servers"]
    assert {s["status"] for s in theirs["signals"]} == {"stale"}
    assert_same_signals(mine["signals"], theirs["signals"], "stale", shared=True)


@pytest.mark.parametrize("serving", [300, 3_600])
def test_fleet_queries_from_recorded_series_have_the_raw_values(source, recorded_fleet, serving):
    names = RecordedSeries(source, now=lambda: at(recorded_fleet)).available()
    raw_plan = {q.fact: q.promql for q in plan_fleet_queries(serving, 86_400)}
    plan = {q.fact: q.promql for q in plan_fleet_queries(serving, 86_400, names)}
    for fact in ("requestRate", "errorRatio", "latencyP50", "latencyP95", "latencyP99"):
        assert plan[fact] != raw_plan[fact] and "server:" in plan[fact], fact
    answers: dict[str, dict[str, list[Sample]]] = {}
    for road, queries in (("raw", raw_plan), ("recorded", plan)):
        answers[road] = {f: source.query(q, at(recorded_fleet)) for f, q in queries.items()}
    raw, recorded = fleet_rows(answers["raw"]), fleet_rows(answers["recorded"])
    assert sorted(recorded) == sorted(raw)
    assert {s.key for s in LIVE} <= set(raw)
    for key, facts in raw.items():
        assert sorted(recorded[key]) == sorted(facts), key
        for fact, value in facts.items():
            assert recorded[key][fact] == pytest.approx(value, rel=1e-9, abs=1e-12), (key, fact)


def test_prometheus_is_asked_for_names_once_per_interval(source, recorded_fleet, requests):
    clock = [0.0]
    recorded = RecordedSeries(
        source, ttl_seconds=300, clock=lambda: clock[0], now=lambda: at(recorded_fleet)
    )
    obs = observer(source, recorded)
    names = "/api/v1/label/__name__/values"
    requests.clear()
    first = page(obs, recorded_fleet, (FRAUD_EU,))
    queries = first["sources"]["prometheus"]["requests"]
    assert requests.count(names) == 1 and len(requests) == queries + 1
    requests.clear()
    clock[0] = 299.0
    page(obs, recorded_fleet, (FRAUD_EU,))
    assert names not in requests and len(requests) == queries  # the steady state
    clock[0] = 301.0
    page(obs, recorded_fleet, (FRAUD_EU,))
    assert requests.count(names) == 1
