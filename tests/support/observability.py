"""The fleet the observability tests read, and what each signal should be, worked out by hand.

Two regions, several models on each runtime, servers that must not be picked up (same name
in another namespace, another name in the same namespace, a GPU used by no server), a server
that stopped reporting, one whose scrapes sometimes fail, and servers whose names try to break
out of PromQL strings and regexes.

``expected`` computes a signal from the backfilled samples with the re-implemented
Prometheus math in ``support.prometheus``, following the documented meaning of each signal
(requests per second, the share that failed, the 95th percentile of inference latency, ...),
not the PromQL Trellis sends.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from support.prometheus import (
    GENERATION_RATE,
    KV_CACHE_MAX,
    PROMPT_RATE,
    RULE_WINDOW,
    TTFT_BUCKET_RATE,
    WAITING_SUM,
    Fleet,
    Points,
    Server,
    bucket_quantile,
    bucket_rates,
    in_range,
    instant,
    summed_rates,
)
from trellis.model import Condition, Deployment, Runtime

EU, US = "eu-west-1", "us-east-1"
DATA_SECONDS = 100 * 60  # enough for a 1h range, its 5m rate windows and some slack

FRAUD_EU = Server(
    Runtime.MLSERVER, "fraud-detector", "fraud-detector", EU, ("fd-eu-0", "fd-eu-1"), seed=1
)
FRAUD_US = Server(Runtime.MLSERVER, "fraud-detector", "fraud-detector", US, ("fd-us-0",), seed=2)
IMAGE_EU = Server(Runtime.TRITON, "vision", "image-classifier", EU, ("ic-eu-0", "ic-eu-1"), seed=3)
IMAGE_US = Server(Runtime.TRITON, "vision", "image-classifier", US, ("ic-us-0",), seed=4)
LLM_EU = Server(Runtime.VLLM, "llm", "support-llm", EU, ("llm-eu-0",), gpus_per_pod=2, seed=5)
LLM_US = Server(Runtime.VLLM, "llm", "support-llm", US, ("llm-us-0", "llm-us-1"), seed=6)
STALE = Server(
    Runtime.MLSERVER, "churn", "churn-model", EU, ("churn-0",), stops_before_end=20 * 60, seed=7
)
#: Every third scrape of its first pod fails: it is available five sixths of the time.
FLAKY = Server(
    Runtime.MLSERVER, "recsys", "recommender", EU, ("rec-0", "rec-1"), fails_every=3, seed=9
)
#: Declared in the catalog, never scraped: its signals are missing.
SILENT = Server(Runtime.MLSERVER, "churn", "churn-model", US, ("churn-us-0",), seed=8)
DECOYS = (
    Server(Runtime.MLSERVER, "fraud-detector", "fraud-detector-v2", EU, ("v2-0",), seed=10),
    Server(Runtime.MLSERVER, "fraud-detector-staging", "fraud-detector", EU, ("stg-0",), seed=11),
    Server(Runtime.VLLM, "llm", "support-llm", "ap-south-1", ("llm-ap-0",), seed=12),
)

# Names that would end a PromQL string, escape a quote, start a new line, or be a regex.
HOSTILE_NS = 'q"}ns.1\\'
HOSTILE = (
    Server(Runtime.MLSERVER, HOSTILE_NS, "a.b", EU, ('p"od\n0',), seed=20),
    Server(Runtime.MLSERVER, HOSTILE_NS, "x|y", EU, ("p}1",), seed=21),
    Server(Runtime.MLSERVER, HOSTILE_NS, "back\\slash", EU, ("p\\2",), seed=22),
    Server(Runtime.MLSERVER, HOSTILE_NS, 'new\nline"}', EU, ("p(3)",), seed=23),
)
HOSTILE_DECOYS = (
    Server(Runtime.MLSERVER, HOSTILE_NS, "aXb", EU, ("d0",), seed=30),
    Server(Runtime.MLSERVER, HOSTILE_NS, "x", EU, ("d1",), seed=31),
    Server(Runtime.MLSERVER, HOSTILE_NS, "y", EU, ("d2",), seed=32),
    Server(Runtime.MLSERVER, HOSTILE_NS, "back\\\\slash", EU, ("d3",), seed=33),
    Server(Runtime.MLSERVER, HOSTILE_NS, "backslash", EU, ("d4",), seed=34),
    Server(Runtime.MLSERVER, HOSTILE_NS, "new", EU, ("d5",), seed=35),
    Server(Runtime.MLSERVER, HOSTILE_NS, "newline", EU, ("d6",), seed=36),
    # The namespace as a regex (`.` any, `\` dropped) would match this one too.
    Server(Runtime.MLSERVER, 'q"}nsX1', "a.b", EU, ('p"od\n0',), seed=37),
)

#: Names written as PromQL that would widen a query were they pasted into it, on other
#: runtimes and beside ordinary servers (for queries that name no server at all).
INJECTIONS = (
    Server(Runtime.VLLM, "llm", '"} or vector(1) #', EU, ("inj-0",), seed=40),
    Server(Runtime.TRITON, "vision", '{x=~".*"}\\', US, ("inj-1",), seed=41),
)


def build_fleet(end: float) -> Fleet:
    fleet = Fleet(begin=end - DATA_SECONDS, end=end)
    for server in (FRAUD_EU, FRAUD_US, IMAGE_EU, IMAGE_US, LLM_EU, LLM_US, STALE, FLAKY, *DECOYS):
        fleet.add(server)
    for server in (*HOSTILE, *HOSTILE_DECOYS, *INJECTIONS):
        fleet.add(server)
    fleet.add_gpu_decoy("fraud-detector", "nightly-training-0")
    fleet.add_gpu_decoy(HOSTILE_NS, "job-0")
    return fleet


def deployment(server: Server, *, cluster: str | None = None) -> Deployment:
    """The server as the Kubernetes source would report it."""
    return Deployment(
        cluster=cluster or f"{server.region}-1",
        region=server.region,
        namespace=server.namespace,
        name=server.name,
        kind="InferenceService",
        runtime=server.runtime,
        model_name=server.name,
        model_version="champion",
        ready_replicas=len(server.pods),
        desired_replicas=len(server.pods),
        gpu_requests=server.gpus_per_pod,
        gpu_limits=server.gpus_per_pod,
        gpu_product="NVIDIA-A100-SXM4-80GB",
        url=f"http://{server.name}.{server.namespace}.example",
        conditions=(Condition("Ready", "True"),),
        network_policy=True,
        selector={"serving.kserve.io/inferenceservice": server.name},
    )


# --- what each signal should be ------------------------------------------------------------


@dataclass(frozen=True)
class At:
    """An evaluation: the fleet, the moment, and the rate window."""

    fleet: Fleet
    t: float
    window: float

    def series(
        self, name: str, servers: Sequence[Server], **match: str
    ) -> list[tuple[dict[str, str], Points]]:
        keys = {s.key for s in servers}
        return [
            (labels, points)
            for labels, points in self.fleet.samples.find(name, **match)
            if (labels["namespace"], labels["inferenceservice"], labels["region"]) in keys
        ]

    def rate(self, name: str, servers: Sequence[Server], **match: str) -> float | None:
        return summed_rates(
            (p for _, p in self.series(name, servers, **match)), self.t, self.window
        )

    def gauges(self, name: str, servers: Sequence[Server], **match: str) -> list[float]:
        values = (instant(p, self.t) for _, p in self.series(name, servers, **match))
        return [v for v in values if v is not None]

    def quantile(
        self, q: float, name: str, servers: Sequence[Server], keep=lambda labels: True
    ) -> float | None:
        found = [
            (labels, p) for labels, p in self.series(f"{name}_bucket", servers) if keep(labels)
        ]
        return bucket_quantile(q, bucket_rates(found, self.t, self.window))

    def gpus(self, name: str, servers: Sequence[Server]) -> list[float]:
        """The GPUs of the servers' pods that are up at ``t`` (DCGM has no server labels)."""
        pods = {(s.namespace, pod) for s in servers for pod in s.pods if self._up(s, pod)}
        values = []
        for labels, points in self.fleet.samples.find(name):
            if (labels["namespace"], labels["pod"]) in pods:
                value = instant(points, self.t)
                if value is not None:
                    values.append(value)
        return values

    def _up(self, server: Server, pod: str) -> bool:
        return any(
            instant(p, self.t) is not None
            for _, p in self.fleet.samples.find(
                "up",
                pod=pod,
                namespace=server.namespace,
                inferenceservice=server.name,
                region=server.region,
            )
        )


def _ratio(top: float | None, bottom: float | None) -> float | None:
    if top is None or bottom is None or bottom == 0:
        return None
    return top / bottom


def _sum(values: list[float]) -> float | None:
    return sum(values) if values else None


def _infer(labels: dict[str, str]) -> bool:
    return labels["path"].endswith("/infer")


def _v1(labels: dict[str, str]) -> bool:
    return labels["handler"].startswith("/v1/")


QUANTILES = {"latency_p50": 0.5, "latency_p95": 0.95, "latency_p99": 0.99}
TTFT_QUANTILES = {"ttft_p50": 0.5, "ttft_p95": 0.95, "ttft_p99": 0.99}
Expect = Callable[[At, Sequence[Server]], float | None]


def _requests(ok: str, failed: str) -> Expect:
    return lambda at, s: _sum([r for r in (at.rate(ok, s), at.rate(failed, s)) if r is not None])


def _share_failed(ok: str, failed: str) -> Expect:
    def share(at: At, s: Sequence[Server]) -> float | None:
        fails, oks = at.rate(failed, s), at.rate(ok, s)
        return _ratio(fails, None if fails is None or oks is None else fails + oks)

    return share


def _mean(total: str, count: str, scale: float = 1.0) -> Expect:
    def mean(at: At, s: Sequence[Server]) -> float | None:
        value = _ratio(at.rate(total, s), at.rate(count, s))
        return None if value is None else value / scale

    return mean


def _summed(gauge: str) -> Expect:
    return lambda at, s: _sum(at.gauges(gauge, s))


def _vllm_failed(at: At, s: Sequence[Server]) -> float | None:
    api = [(labels, p) for labels, p in at.series("http_requests_total", s) if _v1(labels)]
    failed = summed_rates((p for labels, p in api if labels["status"] == "5xx"), at.t, at.window)
    return _ratio(failed, summed_rates((p for _, p in api), at.t, at.window))


def _triton_quantile(quantile: str) -> Expect:
    def worst(at: At, s: Sequence[Server]) -> float | None:
        values = at.gauges("nv_inference_request_summary_us", s, quantile=quantile)
        return max(values) / 1e6 if values else None  # summaries cannot be pooled: the worst pod

    return worst


def _pooled(
    q: float, histogram: str, keep: Callable[[dict[str, str]], bool] = lambda _: True
) -> Expect:
    return lambda at, s: at.quantile(q, histogram, s, keep)


def _max(gauge: str) -> Expect:
    def highest(at: At, s: Sequence[Server]) -> float | None:
        values = at.gauges(gauge, s)
        return max(values) if values else None

    return highest


_MLSERVER: dict[str, Expect] = {
    "request_rate": _requests(
        "model_infer_request_success_total", "model_infer_request_failure_total"
    ),
    "error_ratio": _share_failed(
        "model_infer_request_success_total", "model_infer_request_failure_total"
    ),
    **{
        name: _pooled(q, "rest_server_request_duration_seconds", _infer)
        for name, q in QUANTILES.items()
    },
    "latency_mean": _mean("model_infer_request_duration_sum", "model_infer_request_duration_count"),
    "in_flight": _summed("rest_server_requests_in_progress"),
}
_TRITON: dict[str, Expect] = {
    "request_rate": _requests("nv_inference_request_success", "nv_inference_request_failure"),
    "error_ratio": _share_failed("nv_inference_request_success", "nv_inference_request_failure"),
    "latency_p50": _triton_quantile("0.5"),
    "latency_p95": _triton_quantile("0.95"),
    "latency_p99": _triton_quantile("0.99"),
    "latency_mean": _mean("nv_inference_request_duration_us", "nv_inference_request_success", 1e6),
    "queue_time": _mean("nv_inference_queue_duration_us", "nv_inference_request_success", 1e6),
    "queue_depth": _summed("nv_inference_pending_request_count"),
}
_VLLM: dict[str, Expect] = {
    "request_rate": lambda at, s: at.rate("vllm:request_success_total", s),
    "error_ratio": _vllm_failed,
    **{name: _pooled(q, "vllm:e2e_request_latency_seconds") for name, q in QUANTILES.items()},
    "latency_mean": _mean(
        "vllm:e2e_request_latency_seconds_sum", "vllm:e2e_request_latency_seconds_count"
    ),
    **{name: _pooled(q, "vllm:time_to_first_token_seconds") for name, q in TTFT_QUANTILES.items()},
    "queue_time": _mean(
        "vllm:request_queue_time_seconds_sum", "vllm:request_queue_time_seconds_count"
    ),
    "queue_depth": _summed("vllm:num_requests_waiting"),
    "in_flight": _summed("vllm:num_requests_running"),
    "kv_cache_usage": _max("vllm:kv_cache_usage_perc"),
    "generation_tokens": lambda at, s: at.rate("vllm:generation_tokens_total", s),
    "prompt_tokens": lambda at, s: at.rate("vllm:prompt_tokens_total", s),
}


def _gpu(signal: str, at: At, s: Sequence[Server]) -> float | None:
    if signal == "gpu_utilization":
        values = at.gpus("DCGM_FI_DEV_GPU_UTIL", s)
        return sum(values) / len(values) if values else None
    if signal == "gpu_memory":
        values = at.gpus("DCGM_FI_DEV_FB_USED", s)
        return sum(values) * 1_048_576 if values else None
    raise AssertionError(f"no expectation for {signal}")


_BY_RUNTIME: dict[str, dict[str, Expect]] = {
    Runtime.MLSERVER: _MLSERVER,
    Runtime.TRITON: _TRITON,
    Runtime.VLLM: _VLLM,
}


def expected(
    signal: str, fleet: Fleet, servers: Sequence[Server], t: float, window: float
) -> float | None:
    """``signal`` over ``servers`` (one server, or all of a model's, of one runtime) at ``t``."""
    runtimes = {s.runtime for s in servers}
    assert len(runtimes) == 1, runtimes
    at = At(fleet, t, window)
    own = _BY_RUNTIME[runtimes.pop()].get(signal)
    return own(at, servers) if own else _gpu(signal, at, servers)


def expected_series(
    signal: str, fleet: Fleet, servers: Sequence[Server], times: Sequence[float], window: float
) -> list[list[float]]:
    """The points a series should have: ``[t, value]`` wherever there is a value."""
    points = []
    for t in times:
        value = expected(signal, fleet, servers, t, window)
        if value is not None and math.isfinite(value):
            points.append([t, value])
    return points


# --- LLM signals through vLLM's recording rules ---------------------------------------------

#: The signals the recording rules cover, and the recorded series each is read from.
RECORDED = {
    "generation_tokens": GENERATION_RATE,
    "prompt_tokens": PROMPT_RATE,
    "queue_depth": WAITING_SUM,
    "kv_cache_usage": KV_CACHE_MAX,
    **dict.fromkeys(TTFT_QUANTILES, TTFT_BUCKET_RATE),
}
_RECORDED_RATES = {GENERATION_RATE, PROMPT_RATE, TTFT_BUCKET_RATE}


def _recorded(record: str, at: At, server: Server) -> list[tuple[dict[str, str], float]]:
    """The server's recorded series of ``record`` at ``at.t``, each with its value.

    A recorded rate over a longer rate window is the mean of its values in the window
    (``avg_over_time``); over five minutes, and for a gauge, the newest value.
    """
    found = []
    for labels, points in at.series(record, [server]):
        if record in _RECORDED_RATES and at.window != RULE_WINDOW:
            seen = in_range(points, at.t, at.window)
            value = statistics.fmean(v for _, v in seen) if seen else None
        else:
            value = instant(points, at.t)
        if value is not None:
            found.append((labels, value))
    return found


def _le(labels: dict[str, str]) -> float:
    return math.inf if labels["le"] == "+Inf" else float(labels["le"])


def expected_llm(
    signal: str, fleet: Fleet, servers: Sequence[Server], t: float, window: float
) -> float | None:
    """``signal`` over vLLM ``servers`` at ``t``: each server from its recorded series when
    it has them at ``t``, from its raw series otherwise; never from both."""
    at = At(fleet, t, window)
    record = RECORDED[signal]
    if signal in TTFT_QUANTILES:
        pooled: dict[float, float] = defaultdict(float)
        for server in servers:
            buckets: dict[float, float] = defaultdict(float)
            for labels, value in _recorded(record, at, server):
                buckets[_le(labels)] += value
            if not buckets:
                raw = at.series("vllm:time_to_first_token_seconds_bucket", [server])
                buckets.update(bucket_rates(raw, t, window))
            for le, value in buckets.items():
                pooled[le] += value
        return bucket_quantile(TTFT_QUANTILES[signal], pooled)
    join = max if signal == "kv_cache_usage" else sum
    values = []
    for server in servers:
        recorded = [value for _, value in _recorded(record, at, server)]
        value = join(recorded) if recorded else _VLLM[signal](at, [server])
        if value is not None:
            values.append(value)
    return join(values) if values else None


def expected_llm_series(
    signal: str, fleet: Fleet, servers: Sequence[Server], times: Sequence[float], window: float
) -> list[list[float]]:
    """The points of ``signal`` read through the recording rules (``expected_llm``)."""
    points = []
    for t in times:
        value = expected_llm(signal, fleet, servers, t, window)
        if value is not None and math.isfinite(value):
            points.append([t, value])
    return points


# --- the scorecards' serving facts of one server, worked out from the samples --------------

#: The page signal each fleet fact is, where the two mean the same thing.
SAME_AS_PAGE = {
    "requestRate": "request_rate",
    "errorRatio": "error_ratio",
    "latencyP50": "latency_p50",
    "latencyP95": "latency_p95",
    "latencyP99": "latency_p99",
    "gpuMemoryBytes": "gpu_memory",
}


def _up_series(fleet: Fleet, server: Server) -> list[tuple[dict[str, str], Points]]:
    return fleet.samples.find(
        "up", namespace=server.namespace, inferenceservice=server.name, region=server.region
    )


def availability(fleet: Fleet, server: Server, t: float, window: float) -> float | None:
    """The share of the server's scrapes in the window that succeeded (``up`` is 1)."""
    per_pod = [[v for _, v in in_range(p, t, window)] for _, p in _up_series(fleet, server)]
    per_pod = [seen for seen in per_pod if seen]
    if not per_pod:
        return None
    # Pods are scraped together: the pooled share is also the mean of the pods' shares.
    assert len({len(seen) for seen in per_pod}) == 1, server
    scrapes = [v for seen in per_pod for v in seen]
    return sum(1 for v in scrapes if v == 1.0) / len(scrapes)


def gpu_utilization(fleet: Fleet, server: Server, t: float, window: float) -> float | None:
    """The mean over the window of each GPU of the server's pods up now, averaged, 0..1."""
    pods = {
        labels["pod"]
        for labels, points in _up_series(fleet, server)
        if instant(points, t) is not None
    }
    means = []
    for labels, points in fleet.samples.find("DCGM_FI_DEV_GPU_UTIL", namespace=server.namespace):
        seen = in_range(points, t, window)
        if labels["pod"] in pods and seen:
            means.append(statistics.fmean(v for _, v in seen))
    return statistics.fmean(means) / 100 if means else None


def fleet_facts(
    fleet: Fleet, server: Server, serving: float, availability_window: float
) -> dict[str, float]:
    """Every fleet fact of ``server`` at the fleet's end; a fact with no value is absent."""
    t = fleet.end
    values = {
        fact: expected(signal, fleet, [server], t, serving) for fact, signal in SAME_AS_PAGE.items()
    }
    values["availability"] = availability(fleet, server, t, availability_window)
    values["gpuUtilization"] = gpu_utilization(fleet, server, t, serving)
    return {f: v for f, v in values.items() if v is not None and math.isfinite(v)}
