"""Golden signals against a real Prometheus with backfilled history, and training history
against a real MLflow server and store.

Every expected value is worked out in the test from the backfilled samples (``support``
re-does Prometheus's ``rate()`` and ``histogram_quantile()``), so a wrong query, a wrong label
or a wrong unit fails here.
"""

from __future__ import annotations

import math
import socket
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from support.observability import (
    DECOYS,
    FRAUD_EU,
    FRAUD_US,
    HOSTILE,
    HOSTILE_DECOYS,
    HOSTILE_NS,
    IMAGE_EU,
    IMAGE_US,
    LLM_EU,
    LLM_US,
    SILENT,
    STALE,
    deployment,
    expected_series,
)
from support.prometheus import Fleet, PrometheusServer, Server
from support.registry import ModelSpec, seed
from support.services import free_port, mlflow_server
from support.timing import scaled
from support.training import RunSpec, Trained, curve, seed_trained
from trellis.cli.observe_report import BARS, print_page
from trellis.errors import NotFound, SourceUnavailable
from trellis.model import RegisteredModel
from trellis.observability import (
    EntityServers,
    Limits,
    Window,
    plan_queries,
    plan_window,
    roadie_rules,
)
from trellis.observability.promql import quote
from trellis.services.observability import Observer
from trellis.sources.mlflow import RestRegistry, SqlRegistry
from trellis.sources.prometheus import PrometheusSource

pytestmark = pytest.mark.prometheus

# `fleet` and `prom` (one Prometheus for the session) are in conftest.py.


@pytest.fixture(scope="module")
def window(fleet: Fleet) -> Window:
    return plan_window("1h", "60s", Limits(), end=datetime.fromtimestamp(fleet.end, UTC))


@pytest.fixture(scope="module")
def observer(source: PrometheusSource) -> Observer:
    return Observer(prometheus=source, registry=None, limits=Limits())


def times(window: Window) -> list[float]:
    return [window.start.timestamp() + i * window.step_seconds for i in range(window.points)]


def assert_series(got: Sequence[Sequence[float | None]], expected: list[list[float]], what: str):
    assert [p[0] for p in got] == [p[0] for p in expected], what
    for (t, value), (_, want) in zip(got, expected, strict=True):
        assert value == pytest.approx(want, rel=1e-9), f"{what} at {t}"


def page_of(observer: Observer, window: Window, servers: Sequence[Server], model=None) -> dict:
    target = EntityServers(model, tuple(deployment(s) for s in servers))
    return observer.page("resource:default/test", target, window)


def server_entry(page: dict, server: Server) -> dict:
    return next(
        s for s in page["servers"] if (s["namespace"], s["name"], s["region"]) == server.key
    )


@pytest.mark.parametrize("server", [FRAUD_EU, IMAGE_EU, LLM_EU], ids=lambda s: s.runtime)
def test_each_signal_of_a_server_is_what_its_samples_say(server, fleet, observer, window):
    page = page_of(observer, window, [server])
    assert page["sources"]["prometheus"]["status"] == "ok"
    signals = server_entry(page, server)["signals"]
    assert len(signals) >= 8
    for signal in signals:
        want = expected_series(signal["id"], fleet, [server], times(window), window.rate_seconds)
        assert len(want) == window.points, signal["id"]  # the data covers the whole window
        assert signal["status"] == "ok", signal
        assert_series(signal["series"], want, f"{server.name} {signal['id']}")
        assert signal["current"] == {"at": want[-1][0], "value": pytest.approx(want[-1][1])}


@pytest.mark.parametrize(
    "servers", [(FRAUD_EU, FRAUD_US), (IMAGE_EU, IMAGE_US), (LLM_EU, LLM_US)],
    ids=lambda s: s[0].runtime,
)  # fmt: skip
def test_a_model_across_regions_pools_all_of_its_servers(servers, fleet, observer, window):
    page = page_of(observer, window, servers)
    assert [(s["region"]) for s in page["servers"]] == ["eu-west-1", "us-east-1"]
    assert page["model"]["servers"] == 2
    for signal in page["model"]["signals"]:
        want = expected_series(signal["id"], fleet, servers, times(window), window.rate_seconds)
        assert signal["status"] == "ok", signal
        assert_series(signal["series"], want, f"model {signal['id']}")
    by_id = {s["id"]: s for s in page["model"]["signals"]}
    per_server = [
        {s["id"]: s for s in entry["signals"]}["request_rate"]["current"]["value"]
        for entry in page["servers"]
    ]
    assert by_id["request_rate"]["current"]["value"] == pytest.approx(sum(per_server))


def raw_keys(source: PrometheusSource, servers: Sequence[Server], window: Window) -> dict:
    """Each query's rows as Prometheus returns them: which servers (and model rows) it read."""
    found = {}
    for query in plan_queries([deployment(s) for s in servers], window.rate_seconds):
        rows = source.query_range(query.promql, window.start, window.end, window.step_seconds)
        found[query.key] = sorted(
            {
                (r.labels["namespace"], r.labels["inferenceservice"], r.labels["region"])
                for r in rows
                if "trellis_scope" not in r.labels
            }
        )
    return found


def test_servers_that_only_look_alike_are_never_read(source, window):
    intended = [FRAUD_EU, FRAUD_US]
    assert {d.key for d in DECOYS} & {s.key for s in intended} == set()
    for signal, keys in raw_keys(source, intended, window).items():
        assert keys == sorted(s.key for s in intended), signal


def test_hostile_names_never_break_or_widen_a_query(source, fleet, observer, window):
    for signal, keys in raw_keys(source, HOSTILE, window).items():
        assert keys == sorted(s.key for s in HOSTILE), signal
    page = page_of(observer, window, HOSTILE)
    # Seven queries for nine signals: the three percentiles share one.
    assert page["sources"]["prometheus"] == {"status": "ok", "reason": None, "requests": 7}
    for server in HOSTILE:
        for signal in server_entry(page, server)["signals"]:
            want = expected_series(signal["id"], fleet, [server], times(window), 300)
            assert signal["status"] == "ok", (server.name, signal)
            assert_series(signal["series"], want, f"{server.name!r} {signal['id']}")
    for signal in page["model"]["signals"]:
        want = expected_series(signal["id"], fleet, HOSTILE, times(window), 300)
        assert_series(signal["series"], want, f"hostile model {signal['id']}")


def test_a_quoted_value_reaches_prometheus_as_exactly_itself(source, fleet):
    at = datetime.fromtimestamp(fleet.end, UTC)
    rows = source.query(f"count by (inferenceservice) (up{{namespace={quote(HOSTILE_NS)}}})", at)
    names = {s.name for s in (*HOSTILE, *HOSTILE_DECOYS) if s.namespace == HOSTILE_NS}
    assert {r.labels["inferenceservice"] for r in rows} == names
    assert 'new\nline"}' in names and "back\\slash" in names


@pytest.mark.parametrize(
    "server", [FRAUD_EU, IMAGE_EU, LLM_US, HOSTILE[0], HOSTILE[3]], ids=lambda s: repr(s.name)
)
def test_roadie_rules_run_and_read_only_the_servers_pods(server, source, fleet):
    at = datetime.fromtimestamp(fleet.end, UTC)
    rules = roadie_rules(deployment(server))
    assert len(rules) >= 4
    for query, group in rules:
        assert "," not in query and "|" not in query
        rows = source.query(query, at)
        assert {r.labels[group] for r in rows} == set(server.pods), query
        assert all(math.isfinite(r.value) for r in rows), query


def test_a_server_that_stopped_is_stale_and_one_never_scraped_is_missing(fleet, observer, window):
    page = page_of(observer, window, [STALE, SILENT])
    stale = server_entry(page, STALE)
    stopped = fleet.end - STALE.stops_before_end
    for signal in stale["signals"]:
        want = expected_series(signal["id"], fleet, [STALE], times(window), 300)
        assert signal["status"] == "stale", signal["id"]
        assert "no data for the last" in signal["reason"]
        assert_series(signal["series"], want, f"stale {signal['id']}")
        assert stopped - 60 < signal["current"]["at"] <= stopped + 300
    for signal in server_entry(page, SILENT)["signals"]:
        assert (signal["status"], signal["series"], signal["current"]) == ("missing", [], None)
    assert {s["status"] for s in page["model"]["signals"]} == {"stale"}


def test_the_terminal_view_draws_each_signal(observer, window):
    page = page_of(observer, window, [FRAUD_EU, STALE, SILENT])
    console = Console(record=True, width=160)
    print_page(console, page)
    text = console.export_text()
    assert "fraud-detector  eu-west-1  kserve-mlserver  2/2 ready" in text
    assert "req/s" in text and " ms" in text and "GiB" in text and "%" in text
    assert "⚠ stale" in text and "- no data" in text
    assert any(bar in text for bar in BARS[1:])
    assert "all 3 servers" in text


# --- training history --------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Trained]:
    db = tmp_path_factory.mktemp("training") / "mlflow.db"
    uri = f"sqlite:///{db}"
    versions = {
        1: RunSpec({"loss": curve(40, 2.0, 0.5)}),
        2: RunSpec({"loss": curve(60, 2.0, 0.3), "accuracy": curve(60, 0.5, 0.93)}),
        3: RunSpec({"loss": curve(50, 1.8, 0.25), "f1": curve(50, 0.4, 0.9), "nan": [math.nan]}),
    }
    trained = seed_trained(uri, "fraud-detector", versions, {"champion": 2, "candidate": 3})
    seed(uri, [ModelSpec("no-runs", versions=1, champion=1)])
    return db, trained


def registered(db: Path, name: str) -> RegisteredModel:
    registry = SqlRegistry(f"sqlite:///{db}", label="t", timeout_seconds=scaled(30))
    try:
        return next(m for m in registry.read().models if m.name == name)
    finally:
        registry.close()


@pytest.mark.mlflow
def test_rest_and_the_store_read_the_same_history_in_pages(trained):
    db, seeded = trained
    with (
        mlflow_server(db) as server,
        httpx.Client(base_url=server.url, timeout=scaled(30)) as client,
    ):
        requests: list[str] = []
        client.event_hooks["request"] = [lambda r: requests.append(r.url.path)]
        rest = RestRegistry(client, label=server.url, history_page_size=7)
        direct = SqlRegistry(f"sqlite:///{db}", label="t", timeout_seconds=scaled(30))
        try:
            run = seeded.runs[2]
            assert rest.run_metric_keys(run) == direct.run_metric_keys(run) == ["accuracy", "loss"]
            over_http = rest.metric_history(run, "loss")
            assert requests.count("/api/2.0/mlflow/metrics/get-history") == math.ceil(60 / 7)
            assert over_http == direct.metric_history(run, "loss")
            assert [p.step for p in over_http] == list(range(60))
            assert [p.value for p in over_http] == pytest.approx(seeded.logged["champion"]["loss"])
            for registry in (rest, direct):
                with pytest.raises(NotFound):
                    registry.run_metric_keys("0" * 32)
        finally:
            direct.close()


def test_the_champion_and_candidate_histories_ride_along(trained, observer, window, fleet):
    db, seeded = trained
    registry = SqlRegistry(f"sqlite:///{db}", label="t", timeout_seconds=scaled(30))
    try:
        with_history = Observer(prometheus=observer.prometheus, registry=registry, limits=Limits())
        page = page_of(with_history, window, [FRAUD_EU], registered(db, "fraud-detector"))
    finally:
        registry.close()
    # One request for each run's metric names, one per metric.
    assert page["sources"]["mlflow"] == {"status": "ok", "reason": None, "requests": 7}
    runs = {run["alias"]: run for run in page["training"]}
    assert (runs["champion"]["version"], runs["champion"]["runId"]) == (2, seeded.runs[2])
    assert (runs["candidate"]["version"], runs["candidate"]["runId"]) == (3, seeded.runs[3])
    for alias, run in runs.items():
        assert run["status"] == "ok"
        logged = seeded.logged[alias]
        assert sorted(run["metrics"]) == sorted(logged)
        for key, values in logged.items():
            got = [p["value"] for p in run["metrics"][key]]
            finite = [None if math.isnan(v) else v for v in values]
            assert got == pytest.approx(finite), (alias, key)
            assert [p["step"] for p in run["metrics"][key]] == list(range(len(values)))


def test_a_stopped_prometheus_is_unavailable_and_the_history_is_still_there(
    trained, tmp_path, window
):
    db, _ = trained
    stopped = PrometheusServer(tmp_path / "empty").start()
    stopped.stop()
    registry = SqlRegistry(f"sqlite:///{db}", label="t", timeout_seconds=scaled(30))
    try:
        with httpx.Client(base_url=stopped.url, timeout=scaled(5)) as client:
            prometheus = PrometheusSource(client, label=stopped.url)
            down = Observer(prometheus=prometheus, registry=registry, limits=Limits())
            page = page_of(down, window, [FRAUD_EU, LLM_EU], registered(db, "fraud-detector"))
    finally:
        registry.close()
    reason = f"cannot reach {stopped.url} (ConnectError)"
    assert page["sources"]["prometheus"]["status"] == "unavailable"
    assert page["sources"]["prometheus"]["reason"] == reason
    for signals in [page["model"]["signals"], *(s["signals"] for s in page["servers"])]:
        assert {(s["status"], s["reason"]) for s in signals} == {("unavailable", reason)}
    assert page["sources"]["mlflow"]["status"] == "ok"
    champion = page["training"][0]
    assert champion["status"] == "ok" and len(champion["metrics"]["loss"]) == 60
    console = Console(record=True, width=200)
    print_page(console, page)
    text = console.export_text()
    assert "✗ unavailable" in text and "loss" in text


def test_a_version_without_a_run_or_with_a_run_that_is_gone_is_missing(trained, window):
    db, _ = trained
    registry = SqlRegistry(f"sqlite:///{db}", label="t", timeout_seconds=scaled(30))
    try:
        observer = Observer(prometheus=None, registry=registry, limits=Limits())
        page = page_of(observer, window, [], registered(db, "no-runs"))
        assert page["training"] == [
            {"alias": "champion", "version": 1, "runId": None, "status": "missing",
             "reason": "version 1 has no run", "metrics": {}},
        ]  # fmt: skip
        model = registered(db, "fraud-detector")
        gone = "f" * 32
        versions = tuple(replace(v, run_id=gone) if v.version == 3 else v for v in model.versions)
        page = page_of(observer, window, [], replace(model, versions=versions))
    finally:
        registry.close()
    champion, candidate = page["training"]
    assert champion["status"] == "ok" and sorted(champion["metrics"]) == ["accuracy", "loss"]
    assert candidate == {"alias": "candidate", "version": 3, "runId": gone, "status": "missing",
                         "reason": f"run {gone} does not exist", "metrics": {}}  # fmt: skip
    assert page["sources"]["mlflow"]["status"] == "ok"
    assert page["sources"]["prometheus"]["reason"] == "TRELLIS_PROMETHEUS__URL is not set"


# --- how the Prometheus source fails -------------------------------------------------------


def test_a_query_prometheus_rejects_is_unavailable_in_its_own_words(source, window):
    with pytest.raises(SourceUnavailable, match=r"bad_data: .*parse error.* \(HTTP 400\)"):
        source.query_range("sum(", window.start, window.end, 60)


def test_an_instant_query_reads_old_data_at_an_explicit_time(source, fleet):
    at = datetime.fromtimestamp(fleet.end - 3600, UTC)
    rows = source.query(f"up{{namespace={quote(FRAUD_EU.namespace)},pod='fd-eu-0'}}", at)
    assert [(r.value, r.labels["region"]) for r in rows] == [(1.0, "eu-west-1")]
    assert rows[0].timestamp == pytest.approx(at.timestamp())


def test_a_prometheus_that_never_answers_times_out():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with (
            httpx.Client(base_url=url, timeout=0.5) as client,
            pytest.raises(SourceUnavailable, match=r"no answer from .* in time"),
        ):
            PrometheusSource(client, label=url).query("up", datetime.now(UTC))


def test_a_closed_port_is_unavailable():
    url = f"http://127.0.0.1:{free_port()}"
    with (
        httpx.Client(base_url=url, timeout=scaled(5)) as client,
        pytest.raises(SourceUnavailable, match=r"cannot reach .* \(ConnectError\)"),
    ):
        PrometheusSource(client, label=url).query("up", datetime.now(UTC))


def test_pooled_percentiles_agree_with_prometheus_own_histogram_quantile(source, observer, window):
    """Trellis works out percentiles from bucket rates itself; Prometheus is the reference."""
    servers = (LLM_EU, LLM_US)
    page = page_of(observer, window, servers)
    matchers = " or ".join(
        f"rate(vllm:e2e_request_latency_seconds_bucket{{namespace={quote(s.namespace)},"
        f"region={quote(s.region)},inferenceservice={quote(s.name)}}}"
        f"[{window.rate_seconds}s])"
        for s in servers
    )
    for signal in page["model"]["signals"]:
        if not signal["id"].startswith("latency_p"):
            continue
        q = {"latency_p50": 0.5, "latency_p95": 0.95, "latency_p99": 0.99}[signal["id"]]
        [reference] = source.query_range(
            f"histogram_quantile({q}, sum by (le) ({matchers}))",
            window.start,
            window.end,
            window.step_seconds,
        )
        assert [p[0] for p in signal["series"]] == [p[0] for p in reference.points]
        for (t, value), (_, want) in zip(signal["series"], reference.points, strict=True):
            assert value == pytest.approx(want, rel=1e-9), f"{signal['id']} at {t}"


class CountingSource(PrometheusSource):
    """The real source, counting the queries that reach Prometheus."""

    def __init__(self, client: httpx.Client, label: str) -> None:
        super().__init__(client, label=label)
        self.asked = 0

    def query_range(self, promql, start, end, step_seconds):  # type: ignore[no-untyped-def]
        self.asked += 1
        return super().query_range(promql, start, end, step_seconds)


def test_a_repeat_view_within_a_step_is_served_without_asking_prometheus(prom, window):
    with httpx.Client(base_url=prom.url, timeout=scaled(10)) as client:
        counting = CountingSource(client, prom.url)
        observer = Observer(prometheus=counting, registry=None, limits=Limits())
        first = page_of(observer, window, [LLM_EU, LLM_US])
        asked = counting.asked
        assert asked > 0
        assert page_of(observer, window, [LLM_EU, LLM_US]) == first
        assert counting.asked == asked  # served again, not asked again
        page_of(observer, window, [LLM_EU])  # other servers: another page
        assert counting.asked > asked


def test_a_page_with_a_source_down_is_not_kept(tmp_path, window):
    stopped = PrometheusServer(tmp_path / "empty").start()
    stopped.stop()
    with httpx.Client(base_url=stopped.url, timeout=scaled(5)) as client:
        counting = CountingSource(client, stopped.url)
        observer = Observer(prometheus=counting, registry=None, limits=Limits())
        page_of(observer, window, [FRAUD_EU])
        asked = counting.asked
        page_of(observer, window, [FRAUD_EU])
        assert counting.asked == 2 * asked  # asked again: recovery shows on the next view
