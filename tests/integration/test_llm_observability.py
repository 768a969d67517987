"""An LLM server's page read through vLLM's recording rules, against a real Prometheus.

Three vLLM servers are backfilled: one with its raw ``vllm:*`` series only, one with the
recorded ``server:vllm_*`` series only (its raw ones dropped after recording, as a
relabelling would), and one with both. platform-hub's rules are recorded over them as well,
and read only by the page that is told the hub's names. Every expected figure is worked out
here from the backfilled samples (``support.observability.expected_llm``), never by asking
Prometheus.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import pytest

from support.observability import (
    DATA_SECONDS,
    EU,
    RECORDED,
    TTFT_QUANTILES,
    US,
    deployment,
    expected_llm_series,
    expected_series,
)
from support.prometheus import (
    Fleet,
    PrometheusServer,
    Server,
    drop_raw_vllm,
    hub_rules_file,
    prometheus_with,
    record_vllm,
)
from trellis.model import Runtime
from trellis.observability import EntityServers, Limits, Window, plan_queries, plan_window
from trellis.observability.queries import RECORDED_QUANTILE_LABEL
from trellis.services.observability import Observer
from trellis.services.recording_rules import RecordedSeries
from trellis.sources.prometheus import PrometheusSource

RAW_ONLY = Server(Runtime.VLLM, "llm", "raw-llm", EU, ("raw-0", "raw-1"), seed=51)
RECORDED_ONLY = Server(Runtime.VLLM, "llm", "recorded-llm", EU, ("rec-0", "rec-1"), seed=52)
BOTH = Server(Runtime.VLLM, "llm", "both-llm", US, ("both-0",), seed=53)
#: The labels the recording Prometheus adds on the way (remote write, federation).
EXTERNAL = {"prometheus": "monitoring/edge", "cluster": "edge-1"}
LLM_SIGNALS = tuple(RECORDED)


@pytest.fixture(scope="module")
def llm_fleet() -> Fleet:
    end = math.floor(datetime.now(UTC).timestamp() / 60) * 60
    fleet = Fleet(begin=end - DATA_SECONDS, end=end)
    for server in (RAW_ONLY, RECORDED_ONLY, BOTH):
        fleet.add(server)
    record_vllm(fleet, RECORDED_ONLY, EXTERNAL)
    drop_raw_vllm(fleet, RECORDED_ONLY)
    record_vllm(fleet, BOTH, EXTERNAL)
    return fleet


@pytest.fixture(scope="module")
def prom(llm_fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """The fleet's Prometheus, with platform-hub's rules recorded too (read only when known)."""
    work = tmp_path_factory.mktemp("llm-prom")
    with prometheus_with(llm_fleet.samples, work / "data") as server:
        server.record(hub_rules_file(work / "hub-rules.yaml"), llm_fleet.begin, llm_fleet.end)
        yield server


@pytest.fixture(scope="module")
def observer(source: PrometheusSource) -> Observer:
    """Reads vLLM's recorded series and the raw ones: the hub's names are not asked for."""
    return Observer(prometheus=source, registry=None, limits=Limits(), page_ttl_seconds=0)


@pytest.fixture(scope="module")
def hub_observer(source: PrometheusSource, llm_fleet: Fleet) -> Observer:
    end = datetime.fromtimestamp(llm_fleet.end, UTC)
    recorded = RecordedSeries(source, now=lambda: end)
    return Observer(
        prometheus=source, registry=None, limits=Limits(), page_ttl_seconds=0, recorded=recorded
    )


def window_of(fleet: Fleet, step: str) -> Window:
    return plan_window("1h", step, Limits(), end=datetime.fromtimestamp(fleet.end, UTC))


def times(window: Window) -> list[float]:
    return [window.start.timestamp() + i * window.step_seconds for i in range(window.points)]


def page_of(observer: Observer, window: Window, servers: Sequence[Server]) -> dict:
    target = EntityServers(None, tuple(deployment(s) for s in servers))
    return observer.page("resource:default/llm", target, window)


def signals_of(page: dict, server: Server) -> dict[str, dict]:
    entry = next(
        s for s in page["servers"] if (s["namespace"], s["name"], s["region"]) == server.key
    )
    return {signal["id"]: signal for signal in entry["signals"]}


def assert_series(got: dict, want: list[list[float]], what: str) -> None:
    assert got["status"] == "ok", (what, got["status"], got["reason"])
    assert [p[0] for p in got["series"]] == [p[0] for p in want], what
    for (t, value), (_, expected) in zip(got["series"], want, strict=True):
        assert value == pytest.approx(expected, rel=1e-9), f"{what} at {t}"


def test_the_fleet_is_what_each_case_needs(llm_fleet):
    def names(server: Server) -> set[str]:
        return {n for n, labels in llm_fleet.samples.series if ("inferenceservice", server.name)
                in labels}  # fmt: skip

    recorded = set(RECORDED.values())
    assert not names(RAW_ONLY) & recorded and "vllm:generation_tokens_total" in names(RAW_ONLY)
    assert recorded <= names(RECORDED_ONLY)
    assert not [n for n in names(RECORDED_ONLY) if n.startswith("vllm:")]
    assert recorded <= names(BOTH) and "vllm:time_to_first_token_seconds_bucket" in names(BOTH)


@pytest.mark.prometheus
@pytest.mark.parametrize("step", ["60s", "10m"], ids=["5m-rates", "10m-rates"])
@pytest.mark.parametrize("server", [RAW_ONLY, RECORDED_ONLY, BOTH], ids=lambda s: s.name)
def test_each_llm_signal_is_what_the_samples_say_raw_or_recorded(server, step, llm_fleet, observer):
    window = window_of(llm_fleet, step)
    page = page_of(observer, window, [server])
    assert page["sources"]["prometheus"]["status"] == "ok"
    signals = signals_of(page, server)
    for signal in LLM_SIGNALS:
        want = expected_llm_series(signal, llm_fleet, [server], times(window), window.rate_seconds)
        assert len(want) == window.points, signal  # the data covers the whole window
        assert_series(signals[signal], want, f"{server.name} {signal}")
    if server is RAW_ONLY:  # no recorded series: exactly the raw figures of every signal
        for signal in LLM_SIGNALS:
            raw = expected_series(signal, llm_fleet, [server], times(window), window.rate_seconds)
            assert_series(signals[signal], raw, f"raw {signal}")
    if server is RECORDED_ONLY:  # what only the raw series give is gone
        assert signals["request_rate"]["status"] == "missing"


@pytest.mark.prometheus
def test_a_server_with_both_reads_the_recorded_series_and_counts_once(llm_fleet, observer):
    window = window_of(llm_fleet, "60s")
    signals = signals_of(page_of(observer, window, [BOTH]), BOTH)
    at = times(window)
    for signal in ("generation_tokens", "prompt_tokens", "queue_depth", "ttft_p95"):
        raw = expected_series(signal, llm_fleet, [BOTH], at, window.rate_seconds)
        got = [value for _, value in signals[signal]["series"]]
        # Recorded and raw figures differ here, so reading the raw ones (or adding both) shows.
        assert got != pytest.approx([value for _, value in raw], rel=1e-9), signal
        assert got != pytest.approx([2 * value for _, value in raw], rel=1e-9), signal


@pytest.mark.prometheus
def test_the_model_pools_raw_and_recorded_servers_each_once(llm_fleet, observer):
    window = window_of(llm_fleet, "60s")
    servers = [RAW_ONLY, RECORDED_ONLY, BOTH]
    page = page_of(observer, window, servers)
    model = {signal["id"]: signal for signal in page["model"]["signals"]}
    for signal in LLM_SIGNALS:
        want = expected_llm_series(signal, llm_fleet, servers, times(window), window.rate_seconds)
        assert len(want) == window.points, signal
        assert_series(model[signal], want, f"model {signal}")
    # Still one query per signal (one for the three time-to-first-token percentiles).
    queries = plan_queries([deployment(s) for s in servers], window.rate_seconds)
    assert page["sources"]["prometheus"]["requests"] == len(queries)
    assert [q.key for q in queries].count("ttft") == 1


@pytest.mark.prometheus
def test_the_hub_s_percentiles_are_read_per_server_and_the_model_still_pools_buckets(
    llm_fleet, hub_observer
):
    """With platform-hub's rules, a server's time to first token is its recorded percentiles.

    The hub records every server: from llm-service's recorded buckets where it has them
    (``RECORDED_ONLY``, ``BOTH``), else from the raw series (``RAW_ONLY``), on the minutes the
    page asks about, so each figure is the one read without the hub. The model pools all
    three servers' buckets, each server once.
    """
    window = window_of(llm_fleet, "60s")
    servers = [RAW_ONLY, RECORDED_ONLY, BOTH]
    names = hub_observer.recorded.available()
    plan = {q.key: q.promql for q in plan_queries([deployment(s) for s in servers], 300, names)}
    for key in ("latency", "ttft"):  # three rows per server where buckets are one per bound
        assert RECORDED_QUANTILE_LABEL in plan[key], key
    assert "vllm:" not in plan["ttft"]  # neither llm-service's buckets nor the raw ones
    page = page_of(hub_observer, window, servers)
    assert page["sources"]["prometheus"]["status"] == "ok"
    at = times(window)
    for server in servers:
        signals = signals_of(page, server)
        for signal in TTFT_QUANTILES:
            want = expected_llm_series(signal, llm_fleet, [server], at, 300)
            assert len(want) == window.points, (server.name, signal)
            assert_series(signals[signal], want, f"{server.name} {signal}")
    for server in (RAW_ONLY, BOTH):  # end-to-end latency: the raw figures, as the hub records
        signals = signals_of(page, server)
        for signal in ("latency_p50", "latency_p99"):
            raw = expected_series(signal, llm_fleet, [server], at, 300)
            assert_series(signals[signal], raw, f"hub {server.name} {signal}")
    model = {signal["id"]: signal for signal in page["model"]["signals"]}
    for signal in TTFT_QUANTILES:
        want = expected_llm_series(signal, llm_fleet, servers, at, 300)
        assert_series(model[signal], want, f"model {signal}")
    raw_latency = expected_series("latency_p95", llm_fleet, [RAW_ONLY, BOTH], at, 300)
    assert_series(model["latency_p95"], raw_latency, "model latency_p95")
