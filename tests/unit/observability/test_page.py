"""Shaping Prometheus's and MLflow's answers into the observability page (no server)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trellis.api.observability import ObservabilityPublic
from trellis.model import (
    Condition,
    Deployment,
    MetricPoint,
    ModelVersion,
    RegisteredModel,
    Runtime,
    Series,
)
from trellis.observability import (
    SIGNALS,
    EntityServers,
    Limits,
    SourceState,
    TrainingRun,
    Unavailable,
    build_page,
    page_servers,
    plan_queries,
    plan_window,
    thin,
    training_runs,
)
from trellis.observability.page import percentile_groups, pool_percentiles
from trellis.observability.signals import (
    bucket_quantile,
    combine_runtimes,
    model_series,
    percentile_points,
    server_series,
)

END = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WINDOW = plan_window("1h", "60s", Limits(), end=END)
RATE = next(s for s in SIGNALS if s.id == "request_rate")
P95 = next(s for s in SIGNALS if s.id == "latency_p95")
KEY = ("fraud", "fraud-detector", "eu-west-1")


def points(last: datetime, count: int = 5, value: float = 2.0) -> tuple[tuple[float, float], ...]:
    return tuple(
        ((last - timedelta(minutes=count - 1 - i)).timestamp(), value) for i in range(count)
    )


def series(last: datetime, **labels: str) -> Series:
    base = dict(zip(("namespace", "inferenceservice", "region"), KEY, strict=True))
    return Series(labels={**base, **labels}, points=points(last))


def deployment(name="fraud-detector", region="eu-west-1", cluster="c1", runtime=Runtime.MLSERVER):
    return Deployment(
        cluster=cluster, region=region, namespace="fraud", name=name, kind="InferenceService",
        runtime=runtime, model_name="Fraud Detector", model_version="champion",
        ready_replicas=1, desired_replicas=2, gpu_requests=1, gpu_limits=1,
        gpu_product="NVIDIA-A100", url=None, conditions=(Condition("Ready", "False"),),
        network_policy=True, selector={},
    )  # fmt: skip


def test_a_fresh_series_is_ok_and_its_newest_point_is_the_current_value():
    found = server_series(RATE, {KEY: series(END)}, KEY, WINDOW)
    assert found.status == "ok" and found.reason is None
    assert found.current == (END.timestamp(), 2.0)


def test_no_row_for_a_server_is_missing():
    found = server_series(RATE, {}, KEY, WINDOW)
    assert (found.status, found.points, found.current) == ("missing", (), None)


def test_a_series_that_stopped_is_stale_and_keeps_its_last_value():
    stopped = END - timedelta(minutes=6)
    found = server_series(RATE, {KEY: series(stopped)}, KEY, WINDOW)
    assert found.status == "stale" and "360 s" in (found.reason or "")
    assert found.current == (stopped.timestamp(), 2.0)
    # Within two steps or five minutes, whichever is longer, it is still ok.
    assert (
        server_series(RATE, {KEY: series(END - timedelta(minutes=5))}, KEY, WINDOW).status == "ok"
    )


def test_an_unavailable_source_marks_the_signal_with_its_reason():
    found = server_series(RATE, Unavailable("cannot reach prom"), KEY, WINDOW)
    assert (found.status, found.reason) == ("unavailable", "cannot reach prom")


def test_nan_and_infinity_are_points_without_a_value():
    labels = dict(zip(("namespace", "inferenceservice", "region"), KEY, strict=True))
    row = Series(labels, ((END.timestamp() - 60, float("nan")), (END.timestamp(), float("inf"))))
    found = server_series(RATE, {KEY: row}, KEY, WINDOW)
    assert found.status == "ok"
    assert found.points == ((END.timestamp() - 60, None), (END.timestamp(), None))
    assert found.as_json()["current"] == {"at": END.timestamp(), "value": None}


def test_values_whose_sum_overflows_are_kept_as_they_are():
    labels = dict(zip(("namespace", "inferenceservice", "region"), KEY, strict=True))
    huge = ((END.timestamp() - 60, 1e308), (END.timestamp(), 1e308))
    found = server_series(RATE, {KEY: Series(labels, huge)}, KEY, WINDOW)
    assert (found.status, found.points) == ("ok", huge)


def test_runtimes_of_one_model_add_up_or_take_the_worst():
    a = ((1.0, 2.0), (2.0, None), (3.0, 1.0))
    b = ((1.0, 3.0), (2.0, 4.0))
    assert combine_runtimes(RATE, [a, b]) == ((1.0, 5.0), (2.0, 4.0), (3.0, 1.0))
    assert combine_runtimes(P95, [a, b]) == ((1.0, 3.0), (2.0, 4.0), (3.0, 1.0))
    whole = {"triton": series(END), "vllm": series(END)}
    assert model_series(RATE, whole, WINDOW).current == (END.timestamp(), 4.0)


def test_two_clusters_of_one_region_are_one_server_to_prometheus():
    target = EntityServers(None, (deployment(cluster="c2"), deployment(cluster="c1"),
                                  deployment(region="us-east-1")))  # fmt: skip
    assert [(d.region, d.cluster) for d in page_servers(target)] == [
        ("eu-west-1", "c1"), ("us-east-1", "c1"),
    ]  # fmt: skip


def model(aliases: dict[str, int], runs: dict[int, str | None]) -> RegisteredModel:
    versions = tuple(
        ModelVersion("Fraud Detector", n, "READY", "s3://x", run, "", {}, END, END)
        for n, run in sorted(runs.items())
    )
    return RegisteredModel("Fraud Detector", "", {}, aliases, END, END, versions)


def test_training_shows_the_champion_and_the_candidate_only():
    runs = training_runs(
        model({"champion": 2, "candidate": 3, "old": 1}, {1: "r1", 2: "r2", 3: None})
    )
    assert [(r.alias, r.version, r.run_id, r.status) for r in runs] == [
        ("champion", 2, "r2", "ok"), ("candidate", 3, None, "missing"),
    ]  # fmt: skip
    assert runs[1].reason == "version 3 has no run"
    assert training_runs(model({}, {1: "r1"})) == [] and training_runs(None) == []


def test_thinning_keeps_the_ends_and_the_limit():
    logged = [MetricPoint(i, END, float(i)) for i in range(10_000)]
    kept = thin(logged, 1100)
    assert len(kept) == 1100 and kept[0].step == 0 and kept[-1].step == 9_999
    assert thin(logged[:5], 1100) == logged[:5]


def test_the_page_has_every_part_and_fits_the_published_schema():
    servers = (
        deployment(),
        deployment(region="us-east-1"),
        deployment("llm", runtime=Runtime.VLLM),
    )
    queries = plan_queries(list(servers), 300)
    answers = {q.key: [series(END), series(END, trellis_scope="model",
                                             trellis_runtime="kserve-mlserver")]
               for q in queries}  # fmt: skip
    answers["latency"] = Unavailable("timed out")
    run = TrainingRun("champion", 2, "r2", metrics={"loss": [MetricPoint(0, END, float("nan"))]})
    page = build_page(
        ref="resource:default/fraud-detector",
        target=EntityServers(model({"champion": 2}, {2: "r2"}), servers),
        window=WINDOW,
        queries=queries,
        answers=answers,
        prometheus=SourceState("unavailable", "timed out", len(queries)),
        training=[run],
        mlflow=SourceState("ok"),
        max_points=1100,
    )
    ObservabilityPublic.model_validate(page)
    assert page["entity"] == {"ref": "resource:default/fraud-detector", "kind": "resource",
                              "namespace": "default", "name": "fraud-detector",
                              "model": "Fraud Detector"}  # fmt: skip
    assert [(s["region"], s["name"]) for s in page["servers"]] == [
        ("eu-west-1", "fraud-detector"), ("eu-west-1", "llm"), ("us-east-1", "fraud-detector"),
    ]  # fmt: skip
    first = page["servers"][0]
    assert (first["ready"], first["readyReplicas"], first["desiredReplicas"]) == (False, 1, 2)
    statuses = {s["id"]: s["status"] for s in first["signals"]}
    assert statuses["request_rate"] == "ok" and statuses["latency_p95"] == "unavailable"
    assert {s["status"] for s in page["servers"][2]["signals"]} - {"unavailable"} == {"missing"}
    llm = {s["id"] for s in page["servers"][1]["signals"]}
    assert "kv_cache_usage" in llm and "tokens" not in llm
    assert page["model"]["servers"] == 3
    assert {s["id"] for s in page["model"]["signals"]} == {s.id for s in SIGNALS}
    assert page["training"][0]["metrics"]["loss"][0]["value"] is None
    assert page["window"]["points"] == 61 and page["window"]["rateWindowSeconds"] == 300


def test_a_model_without_servers_has_no_signals_but_its_training():
    page = build_page(
        ref="resource:default/x", target=EntityServers(model({}, {}), ()), window=WINDOW,
        queries=[], answers={}, prometheus=SourceState("ok"), training=[],
        mlflow=SourceState("ok"), max_points=1100,
    )  # fmt: skip
    assert page["servers"] == [] and page["model"] == {"servers": 0, "signals": []}
    ObservabilityPublic.model_validate(page)


def bucket(le: str, value: float, key=KEY) -> Series:
    labels = dict(zip(("namespace", "inferenceservice", "region"), key, strict=True))
    return Series({**labels, "le": le}, ((END.timestamp(), value),))


def test_percentiles_interpolate_inside_the_bucket_like_prometheus():
    # 100 requests: 50 under 0.1 s, 40 more under 0.5 s, 10 over.
    rows = [bucket("0.1", 50), bucket("0.5", 90), bucket("+Inf", 100)]
    at = END.timestamp()
    found = percentile_points([0.5, 0.75, 0.95], rows)
    assert found[0.5] == ((at, 0.1),)
    assert found[0.75] == ((at, pytest.approx(0.1 + 0.4 * 25 / 40)),)
    assert found[0.95] == ((at, 0.5),)  # in +Inf: the top finite bound
    assert bucket_quantile(0.5, [(0.1, 0.0), (math.inf, 0.0)]) is None  # no requests
    assert bucket_quantile(0.5, [(0.1, 5.0)]) is None  # no +Inf bucket


COUNTS = st.one_of(
    st.floats(min_value=0, max_value=1e6), st.sampled_from([0.0, float("nan"), float("inf")])
)


@st.composite
def bucket_rows(draw: st.DrawFn) -> list[Series]:
    """Rows of two servers over up to 4 times: bounds, counts and gaps at random.

    Half of them are the usual case (every row at every time, numbers only, finite bounds
    besides ``+Inf``), which the column-wise road takes; the others mostly are not.
    """
    usual = draw(st.booleans())
    times = [END.timestamp() - 60 * i for i in range(draw(st.integers(1, 4)))][::-1]
    finite = st.sampled_from(["-1", "0", "0.1", "0.5", "1", "5"])
    bounds = draw(st.lists(finite, unique=True, min_size=1 if usual else 0))
    counts = st.floats(min_value=0, max_value=1e6) if usual else COUNTS
    rows = []
    for key in (KEY, ("fraud", "fraud-detector", "us-east-1")):
        for le in [*bounds, "+Inf"]:
            gaps = not usual and draw(st.booleans())
            kept = draw(st.lists(st.sampled_from(times), unique=True)) if gaps else times
            labels = dict(zip(("namespace", "inferenceservice", "region"), key, strict=True))
            points = tuple((t, draw(counts)) for t in sorted(kept))
            rows.append(Series({**labels, "le": le}, points))
    return rows


@settings(max_examples=300, deadline=None)
@given(bucket_rows(), st.lists(st.sampled_from([0.5, 0.95, 0.99]), min_size=1, unique=True))
def test_pooled_percentiles_equal_histogram_quantile_at_each_time(rows, quantiles):
    """Each time on its own, the counts summed in row order, as Prometheus would see them.

    Rows at the same times with numbers only take a column-wise road, the others a
    time-by-time one; both must give these floats exactly.
    """
    found = percentile_points(quantiles, rows)
    times = sorted({t for row in rows for t, _ in row.points})
    for q in quantiles:
        assert [t for t, _ in found[q]] == times
        for t, value in found[q]:
            summed: dict[float, float] = {}
            for row in rows:
                for at, count in row.points:
                    if at == t:
                        bound = float(row.labels["le"])
                        summed[bound] = summed[bound] + count if bound in summed else count
            expected = bucket_quantile(q, sorted(summed.items()))
            assert value == expected or (value != value and expected != expected)


def test_buckets_of_several_servers_pool_and_summaries_take_the_worst():
    other = ("fraud", "fraud-detector", "us-east-1")
    pooled = [
        bucket("0.1", 10),
        bucket("+Inf", 10),
        bucket("0.1", 0, other),
        bucket("+Inf", 30, other),
    ]
    assert percentile_points([0.5], pooled) == {0.5: ((END.timestamp(), 0.1),)}
    summaries = [
        Series({"quantile": "0.95"}, ((1.0, 0.2), (2.0, 0.3))),
        Series({"quantile": "0.95"}, ((1.0, 0.4), (2.0, float("nan")))),
        Series({"quantile": "0.99"}, ((1.0, 9.0),)),
    ]
    assert percentile_points([0.95], summaries) == {0.95: ((1.0, 0.4), (2.0, 0.3))}


def test_time_to_first_token_is_pooled_apart_from_latency():
    llm_eu = deployment("llm", runtime=Runtime.VLLM)
    llm_us = deployment("llm", region="us-east-1", runtime=Runtime.VLLM)
    servers = (llm_eu, llm_us, deployment())
    eu, us = ("fraud", "llm", "eu-west-1"), ("fraud", "llm", "us-east-1")
    answers = {
        # End to end: everything under 1 s, in both regions.
        "latency": [bucket("1", 10, eu), bucket("+Inf", 10, eu),
                    bucket("1", 30, us), bucket("+Inf", 30, us)],
        # First token: eu all under 0.1 s, us all between 0.1 and 0.5 s.
        "ttft": [bucket("0.1", 10, eu), bucket("0.5", 10, eu), bucket("+Inf", 10, eu),
                 bucket("0.1", 0, us), bucket("0.5", 30, us), bucket("+Inf", 30, us)],
    }  # fmt: skip
    page = build_page(
        ref="resource:default/llm", target=EntityServers(None, servers),
        window=plan_window("1h", "60s", Limits(), end=END), queries=plan_queries(servers, 300),
        answers=answers, prometheus=SourceState("ok"), training=[], mlflow=SourceState("ok"),
        max_points=1100,
    )  # fmt: skip
    ObservabilityPublic.model_validate(page)

    def value(signals, signal_id):
        return next(s["current"]["value"] for s in signals if s["id"] == signal_id)

    by_key = {(s["namespace"], s["name"], s["region"]): s["signals"] for s in page["servers"]}
    assert value(by_key[eu], "ttft_p50") == pytest.approx(0.05)
    assert value(by_key[us], "ttft_p50") == pytest.approx(0.1 + 0.4 * 15 / 30)
    assert value(by_key[eu], "latency_p50") == pytest.approx(0.5)
    # The model's: 40 first tokens pooled, the 20th of them in the us bucket.
    assert value(page["model"]["signals"], "ttft_p50") == pytest.approx(0.1 + 0.4 * 10 / 30)
    assert value(page["model"]["signals"], "latency_p50") == pytest.approx(0.5)
    mlserver = by_key[("fraud", "fraud-detector", "eu-west-1")]
    assert not [s for s in mlserver if s["id"].startswith("ttft_")]
    missing_ttft = build_page(
        ref="resource:default/llm", target=EntityServers(None, servers),
        window=plan_window("1h", "60s", Limits(), end=END), queries=plan_queries(servers, 300),
        answers={**answers, "ttft": Unavailable("timed out")}, prometheus=SourceState("ok"),
        training=[], mlflow=SourceState("ok"), max_points=1100,
    )  # fmt: skip
    llm = next(s for s in missing_ttft["servers"] if s["name"] == "llm")
    statuses = {s["id"]: s["status"] for s in llm["signals"]}
    assert statuses["ttft_p95"] == "unavailable" and statuses["latency_p95"] == "ok"


def test_percentiles_pooled_beforehand_give_the_page_built_without_them():
    servers = (
        deployment(),
        deployment(region="us-east-1"),
        deployment("llm", runtime=Runtime.VLLM),
    )
    queries = plan_queries(list(servers), 300)
    answers: dict[str, list[Series]] = {q.key: [series(END)] for q in queries}
    for key in ("latency", "ttft"):
        answers[key] = [
            series(END, le=le, inferenceservice=name, region=region)
            for name, region in (("fraud-detector", "eu-west-1"), ("llm", "eu-west-1"),
                                 ("fraud-detector", "us-east-1"))
            for le in ("0.1", "0.5", "+Inf")
        ]  # fmt: skip
    groups = percentile_groups(page_servers(EntityServers(None, servers)))
    assert len(groups) == 3 + 2  # each server, then each runtime's
    pooled = {key: pool_percentiles(key, answers[key], groups) for key in ("latency", "ttft")}

    def page(**extra):
        return build_page(
            ref="resource:default/fraud-detector", target=EntityServers(None, servers),
            window=WINDOW, queries=queries, answers=answers, prometheus=SourceState("ok"),
            training=[], mlflow=SourceState("ok"), max_points=1100, **extra,
        )  # fmt: skip

    without, with_pooled = page(), page(pooled=pooled)
    assert with_pooled == without
    p95 = next(s for s in without["model"]["signals"] if s["id"] == "latency_p95")
    assert p95["status"] == "ok" and p95["series"]
    # And the page does use them, every group's, rather than working them out again.
    marked = {
        key: {group: {q: tuple((t, 42.0) for t, _ in points) for q, points in by_q.items()}
              for group, by_q in groups_.items()}
        for key, groups_ in pooled.items()
    }  # fmt: skip
    used = page(pooled=marked)
    shown = [s for e in [*used["servers"], used["model"]] for s in e["signals"]]
    percentiles = [s for s in shown if s["id"].startswith(("latency_p", "ttft_p")) and s["series"]]
    assert percentiles and all(v == 42.0 for s in percentiles for _, v in s["series"])


def recorded_percentile(q: str, value: float, key=KEY) -> Series:
    labels = dict(zip(("namespace", "inferenceservice", "region"), key, strict=True))
    return Series({**labels, "trellis_quantile": q}, ((END.timestamp(), value),))


def pooled_bucket(le: str, value: float, runtime: str = Runtime.VLLM) -> Series:
    labels = {"le": le, "trellis_scope": "model", "trellis_runtime": runtime}
    return Series(labels, ((END.timestamp(), value),))


def test_recorded_percentiles_are_each_server_s_own_and_the_model_reads_pooled_buckets():
    servers = (deployment("llm", runtime=Runtime.VLLM),
               deployment("llm", region="us-east-1", runtime=Runtime.VLLM))  # fmt: skip
    eu, us = ("fraud", "llm", "eu-west-1"), ("fraud", "llm", "us-east-1")
    ttft = [
        recorded_percentile("0.50", 0.05, eu), recorded_percentile("0.95", 0.09, eu),
        recorded_percentile("0.99", float("nan"), eu),  # a server without requests: no number
        recorded_percentile("0.50", 0.3, us), recorded_percentile("0.95", 0.48, us),
        recorded_percentile("0.99", 0.496, us),
        # Prometheus's sum of both servers' buckets: 40 first tokens, the 20th in 0.1..0.5 s.
        pooled_bucket("0.1", 10), pooled_bucket("0.5", 40), pooled_bucket("+Inf", 40),
    ]  # fmt: skip
    queries = plan_queries(servers, 300)
    answers = {q.key: [] for q in queries} | {"ttft": ttft}
    groups = percentile_groups(page_servers(EntityServers(None, servers)))

    def page(**extra):
        return build_page(
            ref="resource:default/llm", target=EntityServers(None, servers), window=WINDOW,
            queries=queries, answers=answers, prometheus=SourceState("ok"), training=[],
            mlflow=SourceState("ok"), max_points=1100, **extra,
        )  # fmt: skip

    built = page()
    assert page(pooled={"ttft": pool_percentiles("ttft", ttft, groups)}) == built
    ObservabilityPublic.model_validate(built)
    by_key = {(s["namespace"], s["name"], s["region"]): s["signals"] for s in built["servers"]}
    at = END.timestamp()

    def shown(signals, signal_id):
        return next((s["status"], s["series"]) for s in signals if s["id"] == signal_id)

    assert shown(by_key[eu], "ttft_p50") == ("ok", [(at, 0.05)])
    assert shown(by_key[eu], "ttft_p99") == ("ok", [(at, None)])
    assert shown(by_key[us], "ttft_p95") == ("ok", [(at, 0.48)])
    # Not the highest of the servers' (0.3), nor a mean: the pooled buckets' median.
    assert shown(built["model"]["signals"], "ttft_p50") == ("ok", [(at, 0.1 + 0.4 * 10 / 30)])


def test_recorded_percentiles_that_cannot_be_one_server_s_are_not_read_as_one():
    other = ("fraud", "fraud-detector", "us-east-1")
    assert percentile_points([0.5], [recorded_percentile("0.50", 0.2)]) == {
        0.5: ((END.timestamp(), 0.2),)
    }
    twice = [recorded_percentile("0.50", 0.2), recorded_percentile("0.50", 0.4, other)]
    assert percentile_points([0.5], twice) == {0.5: ()}
    assert percentile_points([0.5], [recorded_percentile("half", 0.2)]) == {0.5: ()}


@pytest.mark.parametrize("regions", [("eu-west-1",), ("eu-west-1", "us-east-1")])
def test_without_pooled_buckets_the_model_s_percentile_is_one_server_s_or_missing(regions):
    """Recorded percentiles of several servers cannot be pooled: with no buckets summed by
    Prometheus, the model has no percentile rather than a wrong one; one server's are its."""
    servers = tuple(deployment("llm", region=r, runtime=Runtime.VLLM) for r in regions)
    ttft = [recorded_percentile("0.50", 0.05, ("fraud", "llm", r)) for r in regions]
    queries = plan_queries(servers, 300)
    page = build_page(
        ref="resource:default/llm", target=EntityServers(None, servers), window=WINDOW,
        queries=queries, answers={q.key: [] for q in queries} | {"ttft": ttft},
        prometheus=SourceState("ok"), training=[], mlflow=SourceState("ok"), max_points=1100,
    )  # fmt: skip
    model = next(s for s in page["model"]["signals"] if s["id"] == "ttft_p50")
    if len(regions) == 1:
        assert (model["status"], model["series"]) == ("ok", [(END.timestamp(), 0.05)])
    else:
        assert model["status"] == "missing"
    for server in page["servers"]:
        p50 = next(s for s in server["signals"] if s["id"] == "ttft_p50")
        assert p50["series"] == [(END.timestamp(), 0.05)]
