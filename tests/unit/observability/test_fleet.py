"""Fleet-wide serving facts: one query per fact, no server named, rows mapped to servers."""

from __future__ import annotations

import ast
import math
import re

import pytest

from trellis.model import Sample
from trellis.observability.fleet import FLEET_FACTS, FleetQuery, fleet_rows, plan_fleet_queries
from trellis.observability.queries import hub_recorded_names

# A PromQL string literal: double-quoted with Go's escapes (the only kind Trellis writes).
_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"')


def test_one_query_per_fact_in_the_order_of_the_facts():
    plan = plan_fleet_queries(300, 86_400)
    assert [q.fact for q in plan] == list(FLEET_FACTS)
    assert len(FLEET_FACTS) == len(set(FLEET_FACTS)) == 8
    assert all(isinstance(q, FleetQuery) and q.promql for q in plan)
    assert plan == plan_fleet_queries(300, 86_400)  # nothing depends on anything but windows


def test_no_query_holds_a_label_value_but_trellis_own_constants():
    plan = plan_fleet_queries(300, 86_400)
    values = {ast.literal_eval(m) for q in plan for m in _LITERAL.findall(q.promql)}
    assert values == {"", "(?s).*/infer", "/v1/.*", "5xx", r"0\.5", r"0\.95", r"0\.99"}
    for query in plan:
        assert 'inferenceservice!=""' in query.promql or query.fact.startswith("gpu"), query
        assert "inferenceservice=" not in query.promql.replace('inferenceservice!=""', "")
        assert "namespace=" not in query.promql.replace('namespace!=""', "")
        assert "region=" not in query.promql


def test_each_fact_reads_its_runtimes_metrics_over_its_window():
    plan = {q.fact: q.promql for q in plan_fleet_queries(120, 3_600)}
    rate = plan["requestRate"]
    for metric in (
        "model_infer_request_success_total",
        "model_infer_request_failure_total",
        "nv_inference_request_success",
        "nv_inference_request_failure",
        "vllm:request_success_total",
    ):
        assert f"{metric}{{" in rate, metric
    assert "http_requests_total" in plan["errorRatio"] and 'status="5xx"' in plan["errorRatio"]
    for fact, q in (("latencyP50", "0.5"), ("latencyP95", "0.95"), ("latencyP99", "0.99")):
        latency = plan[fact]
        assert latency.count(f"histogram_quantile({q}, sum by (") == 2  # MLServer and vLLM
        escaped = q.replace(".", "\\\\.")  # the regex's `\.`, written in a PromQL string
        assert f'quantile=~"{escaped}"' in latency
        assert "nv_inference_request_summary_us" in latency and " / 1e6" in latency
    assert plan["availability"] == (
        "avg by (namespace, inferenceservice, region) "
        '((avg_over_time(up{inferenceservice!=""}[3600s])))'
    )
    assert 'avg_over_time(DCGM_FI_DEV_GPU_UTIL{namespace!=""}[120s])' in plan["gpuUtilization"]
    assert plan["gpuUtilization"].endswith(" / 100")
    assert plan["gpuMemoryBytes"].endswith(" * 1048576")
    for fact, promql in plan.items():
        if fact != "availability":
            assert "[3600s]" not in promql, fact
            assert fact == "gpuMemoryBytes" or "[120s]" in promql, fact
        # Every row is a server's: grouped by its labels, never by pod or le at the top.
        assert "by (namespace, inferenceservice, region)" in promql, fact


@pytest.mark.parametrize("seconds", [0, -60, 1.5, True])
def test_a_window_is_a_positive_number_of_seconds(seconds):
    with pytest.raises(ValueError, match="positive number of seconds"):
        plan_fleet_queries(seconds, 3_600)
    with pytest.raises(ValueError, match="positive number of seconds"):
        plan_fleet_queries(300, seconds)


def row(namespace: str, name: str, region: str, value: float, **extra: str) -> Sample:
    labels = {"namespace": namespace, "inferenceservice": name, "region": region, **extra}
    return Sample(labels=labels, timestamp=1_700_000_000.0, value=value)


def test_rows_of_every_runtime_map_to_their_servers():
    fraud, llm, vision = ("fraud", "fraud-detector", "eu"), ("llm", "chat", "us"), ("v", "i", "eu")
    hostile = ('q"}ns\\', 'new\nline"} or vector(1) #', "eu")
    answers = {
        "requestRate": [row(*fraud, 31.5), row(*llm, 2.0), row(*vision, 80.0), row(*hostile, 1.0)],
        "errorRatio": [row(*fraud, 0.05), row(*llm, math.nan), row(*vision, 0.0)],
        "latencyP95": [row(*fraud, 0.12), row(*llm, 7.5), row(*vision, 0.0135)],
        "availability": [row(*fraud, 1.0), row(*llm, 2 / 3), row(*hostile, 1.0)],
        "gpuUtilization": [row(*fraud, math.inf), row(*llm, 0.42)],
        "gpuMemoryBytes": [row(*llm, 3.0 * 1_048_576)],
    }
    assert fleet_rows(answers) == {
        fraud: {"requestRate": 31.5, "errorRatio": 0.05, "latencyP95": 0.12, "availability": 1.0},
        llm: {
            "requestRate": 2.0,
            "latencyP95": 7.5,
            "availability": 2 / 3,
            "gpuUtilization": 0.42,
            "gpuMemoryBytes": 3.0 * 1_048_576,
        },
        vision: {"requestRate": 80.0, "errorRatio": 0.0, "latencyP95": 0.0135},
        hostile: {"requestRate": 1.0, "availability": 1.0},
    }


def test_rows_without_a_finite_value_or_a_server_leave_no_key():
    answers = {
        "errorRatio": [row("a", "b", "eu", math.nan), row("a", "b", "eu", -math.inf)],
        "latencyP99": [
            Sample({"namespace": "a", "region": "eu"}, 0.0, 1.0),  # no server name
            row("a", "", "eu", 1.0),
        ],
        "notAFact": [row("a", "b", "eu", 1.0)],
    }
    assert fleet_rows(answers) == {}
    assert fleet_rows({}) == {}


def test_an_absent_label_is_empty_as_in_prometheus():
    answers = {"requestRate": [Sample({"namespace": "a", "inferenceservice": "b"}, 0.0, 2.0)]}
    assert fleet_rows(answers) == {("a", "b", ""): {"requestRate": 2.0}}


def test_should_two_rows_answer_for_one_server_the_first_counts():
    answers = {"requestRate": [row("a", "b", "eu", 1.0), row("a", "b", "eu", 9.0, pod="p")]}
    assert fleet_rows(answers) == {("a", "b", "eu"): {"requestRate": 1.0}}


def test_recorded_rates_over_the_serving_window_replace_the_raw_ones():
    names = frozenset(hub_recorded_names())
    raw = {q.fact: q.promql for q in plan_fleet_queries(3_600, 86_400)}
    recorded = {q.fact: q.promql for q in plan_fleet_queries(3_600, 86_400, names)}
    assert recorded["requestRate"] == (
        "(sum by (namespace, inferenceservice, region) "
        '((server:requests:rate1h{inferenceservice!=""})))'
    )
    assert "server:request_errors:rate1h" in recorded["errorRatio"]
    assert "server:api_requests:rate1h" in recorded["errorRatio"]
    for fact, p in (("latencyP50", "p50"), ("latencyP95", "p95"), ("latencyP99", "p99")):
        assert "histogram_quantile" not in recorded[fact], fact
        assert f"server:request_duration_seconds:{p}_1h" in recorded[fact]
        assert "nv_inference_request_summary_us" in recorded[fact]  # a summary is no rate
    # Without the recorded percentiles, Prometheus works them out of the recorded buckets.
    buckets = {n for n in names if not n.startswith("server:request_duration_seconds:p")}
    partial = {q.fact: q.promql for q in plan_fleet_queries(3_600, 86_400, buckets)}
    assert partial["latencyP95"].count("histogram_quantile") == 1
    assert "server:request_duration_seconds_bucket:rate1h" in partial["latencyP95"]
    for fact in ("availability", "gpuUtilization", "gpuMemoryBytes"):
        assert recorded[fact] == raw[fact], fact
    # A serving window the hub does not record is read raw.
    assert plan_fleet_queries(1_800, 86_400, names) == plan_fleet_queries(1_800, 86_400)
