"""The PromQL Trellis writes: escaped values, one query per signal, Roadie-safe rules."""

from __future__ import annotations

import ast
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trellis.model import Condition, Deployment, Runtime
from trellis.observability import SIGNALS, plan_queries, roadie_rules, signals_for
from trellis.observability.promql import quote, regex_alternatives, regex_quote
from trellis.observability.queries import RECORDED_QUANTILE_LABEL, hub_recorded_names

# Python's string literals read the escapes PromQL's do (Go's): \" \\ \n \r \t \xHH.
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


def server(name="fraud-detector", namespace="fraud", region="eu-west-1", runtime=Runtime.MLSERVER):
    return Deployment(
        cluster="c1", region=region, namespace=namespace, name=name, kind="InferenceService",
        runtime=runtime, model_name=name, model_version="1", ready_replicas=1,
        desired_replicas=1, gpu_requests=1, gpu_limits=1, gpu_product=None, url=None,
        conditions=(Condition("Ready", "True"),), network_policy=True, selector={},
    )  # fmt: skip


def test_quote_escapes_what_would_end_or_bend_the_string():
    assert quote('a"}b') == '"a\\"}b"'
    assert quote("back\\slash") == '"back\\\\slash"'
    assert quote("new\nline\ttab\rcr") == '"new\\nline\\ttab\\rcr"'
    assert quote("nul\x00bell\x07del\x7f") == '"nul\\x00bell\\x07del\\x7f"'
    assert quote("名前 🔥") == '"名前 🔥"'


@given(text)
def test_a_quoted_value_reads_back_as_itself(value):
    quoted = quote(value)
    assert ast.literal_eval(quoted) == value
    assert "\n" not in quoted and quoted.startswith('"') and quoted.endswith('"')


@given(text, text)
def test_a_regex_quoted_value_matches_itself_and_nothing_else(value, other):
    pattern = regex_quote(value)
    assert re.fullmatch(pattern, value, re.DOTALL)
    if other != value:
        assert not re.fullmatch(pattern, other, re.DOTALL)


def test_alternatives_are_quoted_one_by_one_and_sorted():
    assert regex_alternatives(["x|y", "a.b", "a.b"]) == '"a\\\\.b|x\\\\|y"'
    assert re.fullmatch(ast.literal_eval(regex_alternatives(["x|y", "a.b"])), "x|y")
    assert not re.fullmatch(ast.literal_eval(regex_alternatives(["x|y", "a.b"])), "x")


def test_a_page_costs_the_same_queries_for_one_server_as_for_forty():
    one = plan_queries([server()], 300)
    forty = plan_queries([server(f"s{i}", region=f"r{i % 7}") for i in range(40)], 300)
    assert [q.key for q in one] == [q.key for q in forty]
    # The three latency percentiles share one query.
    assert len(one) == len(signals_for(Runtime.MLSERVER)) - 2


def test_every_runtime_of_a_page_shares_each_signal_query():
    page = [
        server("a", runtime=Runtime.MLSERVER),
        server("b", runtime=Runtime.TRITON),
        server("c", runtime=Runtime.VLLM),
        server("d", runtime=Runtime.CUSTOM),
    ]
    queries = plan_queries(page, 300)
    ids = [s.id for s in SIGNALS if not s.id.startswith(("latency_p", "ttft_p"))]
    # The percentile queries first: the slowest to answer, sent before the others.
    assert [q.key for q in queries] == ["latency", "ttft", *ids]
    latency = next(q for q in queries if q.key == "latency")
    assert [s.id for s in latency.signals] == ["latency_p50", "latency_p95", "latency_p99"]
    assert "rest_server_request_duration_seconds_bucket" in latency.promql
    assert 'quantile=~"0\\\\.5|0\\\\.95|0\\\\.99"' in latency.promql
    rate = next(q.promql for q in queries if q.key == "request_rate")
    assert "model_infer_request_success_total" in rate and "nv_inference_request_success" in rate
    assert "vllm:request_success_total" in rate and "[300s]" in rate


def test_a_server_without_known_metrics_still_has_its_gpus():
    assert [s.id for s in signals_for(Runtime.CUSTOM)] == ["gpu_utilization", "gpu_memory"]
    assert [s.id for s in signals_for("some-new-runtime")] == ["gpu_utilization", "gpu_memory"]
    assert "kv_cache_usage" in {s.id for s in signals_for(Runtime.VLLM)}
    assert "kv_cache_usage" not in {s.id for s in signals_for(Runtime.TRITON)}


def vllm_queries(servers, rate_seconds=300) -> dict[str, str]:
    return {q.key: q.promql for q in plan_queries(servers, rate_seconds)}


SELECTED = 'namespace="fraud",region="eu-west-1",inferenceservice="c"'


RECORDED = {
    "generation_tokens": "server:vllm_generation_tokens:rate5m",
    "prompt_tokens": "server:vllm_prompt_tokens:rate5m",
    "ttft": "server:vllm_time_to_first_token_seconds_bucket:rate5m",
    "queue_depth": "server:vllm_num_requests_waiting:sum",
    "kv_cache_usage": "server:vllm_kv_cache_usage_perc:max",
}
RAW = {
    "generation_tokens": "rate(vllm:generation_tokens_total{",
    "prompt_tokens": "rate(vllm:prompt_tokens_total{",
    "ttft": "rate(vllm:time_to_first_token_seconds_bucket{",
    "queue_depth": "vllm:num_requests_waiting{",
    "kv_cache_usage": "vllm:kv_cache_usage_perc",
}


def test_an_llm_server_has_tokens_time_to_first_token_queue_and_kv_cache():
    ids = [s.id for s in signals_for(Runtime.VLLM)]
    for signal in ("generation_tokens", "prompt_tokens", "queue_depth", "kv_cache_usage"):
        assert signal in ids
    assert ids.index("latency_mean") + 1 == ids.index("ttft_p50")
    assert ids[ids.index("ttft_p50") :][:3] == ["ttft_p50", "ttft_p95", "ttft_p99"]
    for runtime in (Runtime.MLSERVER, Runtime.TRITON, Runtime.CUSTOM):
        assert not {s.id for s in signals_for(runtime)} & {"ttft_p50", "ttft_p95", "ttft_p99"}


def test_llm_signals_read_the_recorded_series_or_else_the_raw_ones_in_one_query():
    one = vllm_queries([server("c", runtime=Runtime.VLLM)])
    forty = vllm_queries([server(f"c{i}", region=f"r{i % 7}", runtime=Runtime.VLLM)
                          for i in range(40)])  # fmt: skip
    assert list(one) == list(forty)
    ttft = next(
        q for q in plan_queries([server("c", runtime=Runtime.VLLM)], 300) if q.key == "ttft"
    )
    assert [s.id for s in ttft.signals] == ["ttft_p50", "ttft_p95", "ttft_p99"]
    for key, recorded in RECORDED.items():
        promql = one[key]
        # The recorded side first, so a server with both keeps the recorded row only.
        assert promql.index(recorded) < promql.index(RAW[key]), key
        assert " or " in promql and promql.count(recorded) == promql.count(RAW[key]), key
        assert f"{{{SELECTED}}}" in promql
    assert "sum by (namespace, inferenceservice, region, le) (" in one["ttft"]


def test_the_model_row_adds_up_each_server_once_whichever_side_it_came_from():
    promql = vllm_queries([server("c", runtime=Runtime.VLLM)])["generation_tokens"]
    per_server, model = promql.split(" or (label_replace(")
    by = "sum by (namespace, inferenceservice, region)"
    assert per_server == (
        f"({by} ((server:vllm_generation_tokens:rate5m{{{SELECTED}}})) or "
        f"{by} ((rate(vllm:generation_tokens_total{{{SELECTED}}}[300s]))))"
    )
    assert model.startswith(f"label_replace(sum ({per_server[1:-1]}), ")
    kv = vllm_queries([server("c", runtime=Runtime.VLLM)])["kv_cache_usage"]
    assert kv.startswith("(max by (namespace, inferenceservice, region) (")
    assert "label_replace(max (max by (namespace, inferenceservice, region) (" in kv


def test_recorded_rates_are_averaged_over_a_rate_window_longer_than_theirs():
    five = vllm_queries([server("c", runtime=Runtime.VLLM)], 300)
    ten = vllm_queries([server("c", runtime=Runtime.VLLM)], 600)
    for key in ("generation_tokens", "prompt_tokens", "ttft"):
        assert "avg_over_time" not in five[key], key
        assert f"avg_over_time({RECORDED[key]}{{{SELECTED}}}[600s])" in ten[key], key
        assert "[600s]" in ten[key].split(" or ", 1)[1], key  # the raw side too
    for key in ("queue_depth", "kv_cache_usage"):  # gauges: the newest value, as raw ones
        assert five[key] == ten[key] and "avg_over_time" not in ten[key], key


def test_a_hostile_name_stays_a_value_in_the_recorded_selectors_too():
    queries = vllm_queries([server('x"} or vector(1) #', runtime=Runtime.VLLM)], 600)
    selector = '{namespace="fraud",region="eu-west-1",inferenceservice="x\\"} or vector(1) #"}'
    for key, recorded in RECORDED.items():
        after = queries[key].split(recorded)[1:]
        assert after and all(part.startswith(selector) for part in after), key


def test_other_runtimes_read_no_recorded_series():
    page = [server("a", runtime=Runtime.MLSERVER), server("b", runtime=Runtime.TRITON)]
    assert not [q.key for q in plan_queries(page, 300) if "server:" in q.promql]
    assert "ttft" not in {q.key for q in plan_queries(page, 300)}


def test_no_page_no_queries():
    assert plan_queries([], 300) == []


def test_names_of_one_namespace_and_region_share_one_exact_regex():
    queries = plan_queries([server("a.b"), server("x|y"), server("c", region="us")], 300)
    promql = queries[0].promql
    assert 'inferenceservice=~"a\\\\.b|x\\\\|y"' in promql
    assert 'region="us",inferenceservice="c"' in promql  # alone: an exact match


@pytest.mark.parametrize("runtime", [Runtime.MLSERVER, Runtime.TRITON, Runtime.VLLM, "custom"])
def test_roadie_rules_never_hold_a_comma_or_a_pipe(runtime):
    hostile = server(name="a,b|c", namespace='n"s,|', region="eu|west,1", runtime=runtime)
    rules = roadie_rules(hostile)
    assert rules, runtime
    for query, group in rules:
        assert "," not in query and "|" not in query, query
        assert group == "pod"
    assert any("DCGM_FI_DEV_GPU_UTIL" in q for q, _ in rules)
    first = rules[0][0]
    assert 'inferenceservice="a\\x2cb\\x7cc"' in first or "DCGM" in first


def test_every_metric_name_the_queries_use_is_documented():
    from pathlib import Path

    from trellis.observability import queries

    page = (Path(__file__).resolve().parents[3] / "docs" / "observability.md").read_text()
    names = []
    for constant, value in vars(queries).items():
        if constant.startswith(("MLSERVER_", "TRITON_", "VLLM_", "DCGM_")):
            names.extend([value] if isinstance(value, str) else value)
    names = [n for n in names if not n.startswith(("(", "/"))]  # paths and handlers
    assert len(names) > 20
    assert [n for n in names if f"`{n}`" not in page] == []


HUB_NAMES = frozenset(hub_recorded_names())
EVERY_RUNTIME = [
    server("m", runtime=Runtime.MLSERVER), server("t", runtime=Runtime.TRITON),
    server("v", runtime=Runtime.VLLM), server("x|y", namespace='q"}', runtime=Runtime.VLLM),
]  # fmt: skip


def test_recorded_rates_replace_raw_ones_only_where_every_name_of_a_signal_exists():
    raw = {q.key: q.promql for q in plan_queries(EVERY_RUNTIME, 300)}
    recorded = {q.key: q.promql for q in plan_queries(EVERY_RUNTIME, 300, HUB_NAMES)}
    assert raw.keys() == recorded.keys()
    for key in ("request_rate", "error_ratio", "latency_mean", "queue_time", "latency"):
        assert "rate(" not in recorded[key] and "server:" in recorded[key], key
        assert "server:" not in raw[key], key
    assert recorded["latency"].count("histogram") == 0 and "nv_inference" in recorded["latency"]
    for key in ("in_flight", "gpu_utilization", "kv_cache_usage"):
        assert recorded[key] == raw[key], key
    # Hostile names stay escaped in the recorded selectors too.
    assert 'namespace="q\\"}"' in recorded["request_rate"]
    assert 'inferenceservice="x|y"' in recorded["request_rate"]
    # Half of the error ratio's names is not enough: that signal stays raw.
    partial = HUB_NAMES - {"server:api_requests:rate5m"}
    planned = {q.key: q.promql for q in plan_queries(EVERY_RUNTIME, 300, partial)}
    assert planned["error_ratio"] == raw["error_ratio"]
    assert planned["request_rate"] == recorded["request_rate"]


def test_a_rate_window_the_hub_does_not_record_reads_raw_series():
    raw = plan_queries(EVERY_RUNTIME, 600)
    assert plan_queries(EVERY_RUNTIME, 600, HUB_NAMES) == raw
    hourly = {q.key: q.promql for q in plan_queries(EVERY_RUNTIME, 3600, HUB_NAMES)}
    assert "server:requests:rate1h" in hourly["request_rate"]
    assert "server:request_duration_seconds_bucket:rate1h" in hourly["latency"]
    assert "server:" not in hourly["latency_mean"]  # recorded over 5 minutes only


def test_each_server_s_percentiles_come_recorded_when_the_hub_has_them_all():
    recorded = {q.key: q.promql for q in plan_queries(EVERY_RUNTIME, 300, HUB_NAMES)}
    for key, name in (("latency", "request_duration_seconds"),
                      ("ttft", "time_to_first_token_seconds")):  # fmt: skip
        query = recorded[key]
        assert f"max by (namespace, inferenceservice, region, {RECORDED_QUANTILE_LABEL})" in query
        assert f'__name__=~"server:{name}:p50_5m|server:{name}:p95_5m' in query, key
        assert f"server:{name}_bucket:rate5m" in query, key  # the model's pooled buckets
        assert '"trellis_runtime", "vllm"' in query, key
    assert f'"trellis_runtime", {quote(Runtime.MLSERVER)}' in recorded["latency"]
    assert "vllm:time_to_first_token" not in recorded["ttft"]  # the hub records every server
    # One percentile missing: that distribution is read as it was, the other as recorded.
    partial = HUB_NAMES - {"server:time_to_first_token_seconds:p99_5m"}
    planned = {q.key: q.promql for q in plan_queries(EVERY_RUNTIME, 300, partial)}
    raw = {q.key: q.promql for q in plan_queries(EVERY_RUNTIME, 300)}
    assert planned["ttft"] == raw["ttft"] and planned["latency"] == recorded["latency"]
    without_p50 = HUB_NAMES - {"server:request_duration_seconds:p50_5m"}
    planned = {q.key: q.promql for q in plan_queries(EVERY_RUNTIME, 300, without_p50)}
    assert RECORDED_QUANTILE_LABEL not in planned["latency"]
    assert "server:request_duration_seconds_bucket:rate5m" in planned["latency"]


def test_over_an_hour_latency_percentiles_are_recorded_and_first_tokens_are_not():
    hourly = {q.key: q.promql for q in plan_queries(EVERY_RUNTIME, 3600, HUB_NAMES)}
    assert "server:request_duration_seconds:p95_1h" in hourly["latency"]
    assert RECORDED_QUANTILE_LABEL not in hourly["ttft"]
