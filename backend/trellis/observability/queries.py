"""The PromQL of every golden signal, per serving runtime, in this one place.

Metric names are the ones each runtime really exports (sources in the comments). Servers are
told apart by the labels the blueprints' PodMonitor puts on every scraped series
(``inferenceservice``, ``region``) plus ``namespace``; GPU series from the DCGM exporter are
joined to a server's pods on ``namespace`` and ``pod``.

One query per signal covers every server of a page, of every runtime: each server's row
comes out ``by (namespace, inferenceservice, region)``, and the same query adds one row for
the model as a whole (labelled ``trellis_scope="model"``), pooled from the summed counters,
not averaged. So a page costs the same number of queries for one server as for forty.

The three latency percentiles share one query: it reads each server's bucket rates
(``sum by (..., le)``) or summary quantiles, and the p50, p95 and p99 of each server and of
the model (from the buckets summed over its servers) are worked out from those rows
(``signals.percentile_points``), instead of Prometheus computing the same rates six times.
vLLM's time to first token is read the same way, by a query of its own.

Where the cluster records them, vLLM's token rates, time-to-first-token buckets, queue depth
and KV-cache use are read from the recording rules (``server:vllm_...``) and from the raw
series only for a server without them, in the same query: ``recorded or raw``, each side
aggregated ``by (namespace, inferenceservice, region)`` first, so a server whose raw series
were dropped after recording still has its signals, and one with both counts once.

The rates every runtime shares (requests, failures, latency and queue time, latency buckets)
are read from platform-hub's fleet-wide recording rules (``server:...:rate5m`` and
``...:rate1h``) when Prometheus has them: the caller says which recorded names exist
(``recorded``), and a signal whose names all exist for the query's rate window is read from
them alone. Those rules record every server that Prometheus scrapes or receives, so there is
no per-server ``or``: the raw rates are not computed at all, which is what makes them cheap.
The hub also records each server's latency and time-to-first-token percentiles: a percentile
query then reads those (three rows per server, labelled ``RECORDED_QUANTILE_LABEL``) and the
recorded buckets summed over the page's servers of each runtime for the model, instead of
every server's buckets.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal

from trellis.model import Deployment, Runtime
from trellis.observability.promql import matcher, quote, regex_alternatives

__all__ = [
    "BY_SERVER",
    "LATENCY",
    "PERCENTILES",
    "PERCENTILES_OF",
    "PERCENTILE_QUERIES",
    "RECORDED_QUANTILE_LABEL",
    "RUNTIME_LABEL",
    "SCOPE_LABEL",
    "SERVER_LABELS",
    "SIGNALS",
    "TTFT",
    "TTFT_PERCENTILES",
    "Percentiles",
    "Query",
    "ServerKey",
    "Signal",
    "hub_percentile_name",
    "hub_recorded_names",
    "latency_histogram",
    "plan_queries",
    "roadie_rules",
    "runtime_builder",
    "server_key",
    "signals_for",
]

SERVER_LABELS = ("namespace", "inferenceservice", "region")
BY_SERVER = ", ".join(SERVER_LABELS)
SCOPE_LABEL = "trellis_scope"
RUNTIME_LABEL = "trellis_runtime"
#: Labels a server's recorded percentile with its quantile: that row is the server's own
#: percentile (Prometheus's ``histogram_quantile`` in a recording rule), taken as it is, where
#: a summary's ``quantile`` rows are its pods', of which the highest is taken.
RECORDED_QUANTILE_LABEL = "trellis_quantile"
ALL_RUNTIMES = "all"

ServerKey = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Signal:
    """One golden signal: its id in answers, a title, its unit, and how runtimes add up.

    ``across_runtimes`` says how the model's row joins rows of different runtimes (rare: a
    model served by two runtimes): ``sum`` for amounts, ``max`` (the worst) for the rest.
    """

    id: str
    title: str
    unit: str
    across_runtimes: Literal["sum", "max"]


SIGNALS: tuple[Signal, ...] = (
    Signal("request_rate", "Requests", "req/s", "sum"),
    Signal("error_ratio", "Errors", "ratio", "max"),
    Signal("latency_p50", "Latency p50", "s", "max"),
    Signal("latency_p95", "Latency p95", "s", "max"),
    Signal("latency_p99", "Latency p99", "s", "max"),
    Signal("latency_mean", "Latency mean", "s", "max"),
    Signal("ttft_p50", "First token p50", "s", "max"),
    Signal("ttft_p95", "First token p95", "s", "max"),
    Signal("ttft_p99", "First token p99", "s", "max"),
    Signal("queue_depth", "Queued requests", "requests", "sum"),
    Signal("queue_time", "Queue time mean", "s", "max"),
    Signal("in_flight", "Running requests", "requests", "sum"),
    Signal("kv_cache_usage", "KV-cache use", "ratio", "max"),
    Signal("generation_tokens", "Generated tokens", "tokens/s", "sum"),
    Signal("prompt_tokens", "Prompt tokens", "tokens/s", "sum"),
    Signal("gpu_utilization", "GPU utilisation", "%", "max"),
    Signal("gpu_memory", "GPU memory used", "bytes", "sum"),
)
_BY_ID = {signal.id: signal for signal in SIGNALS}


# --- metric names, with where each was read --------------------------------------------------

# MLServer (KServe's MLServer runtime): mlserver/handlers/dataplane.py registers the Counters
# `model_infer_request_success` / `model_infer_request_failure` (exposed with `_total`) and
# the Summary `model_infer_request_duration` (`_sum`/`_count` only: prometheus_client
# summaries have no quantiles). Latency percentiles therefore come from the REST histogram
# that starlette_exporter's PrometheusMiddleware adds with MLServer's prefix `rest_server`
# (settings.metrics_rest_server_prefix): `rest_server_request_duration_seconds` and the
# gauge `rest_server_requests_in_progress` (starlette_exporter/middleware.py). Paths are not
# grouped, so inference requests are those whose `path` ends in `/infer`.
MLSERVER_SUCCESS = "model_infer_request_success_total"
MLSERVER_FAILURE = "model_infer_request_failure_total"
MLSERVER_DURATION = "model_infer_request_duration"
MLSERVER_REST_SECONDS = "rest_server_request_duration_seconds"
MLSERVER_IN_PROGRESS = "rest_server_requests_in_progress"
#: `(?s)`: a model name is free text, and `.` alone would not match a newline in it.
MLSERVER_INFER_PATH = "(?s).*/infer"

# Triton (docs/user_guide/metrics.md, triton-inference-server/server): counters
# `nv_inference_request_success`, `nv_inference_request_failure` (no `_total`), cumulative
# microsecond counters `nv_inference_request_duration_us` and
# `nv_inference_queue_duration_us`, the gauge `nv_inference_pending_request_count`, and with
# `--metrics-config summary_latencies=true` the summary `nv_inference_request_summary_us`
# (default quantiles 0.5, 0.9, 0.95, 0.99, 0.999). Summaries cannot be pooled: a server's and
# a model's percentile is the highest of its pods' (an upper bound).
TRITON_SUCCESS = "nv_inference_request_success"
TRITON_FAILURE = "nv_inference_request_failure"
TRITON_DURATION_US = "nv_inference_request_duration_us"
TRITON_QUEUE_US = "nv_inference_queue_duration_us"
TRITON_PENDING = "nv_inference_pending_request_count"
TRITON_SUMMARY_US = "nv_inference_request_summary_us"

# vLLM (vllm/v1/metrics/loggers.py and docs/design/v1/metrics.md, vllm-project/vllm):
# counters `vllm:request_success_total` (by `finished_reason`), `vllm:generation_tokens_total`,
# `vllm:prompt_tokens_total`; histograms `vllm:e2e_request_latency_seconds`,
# `vllm:request_queue_time_seconds`, `vllm:time_to_first_token_seconds`; gauges
# `vllm:num_requests_waiting`, `vllm:num_requests_running` and the KV-cache use
# `vllm:kv_cache_usage_perc` (0..1), called `vllm:gpu_cache_usage_perc` before it was renamed.
# vLLM counts no failed requests itself; its OpenAI server's
# `http_requests_total{handler, status="5xx"}` (prometheus-fastapi-instrumentator, shown in
# the same design document) does.
VLLM_SUCCESS = "vllm:request_success_total"
VLLM_E2E_SECONDS = "vllm:e2e_request_latency_seconds"
VLLM_QUEUE_SECONDS = "vllm:request_queue_time_seconds"
VLLM_TTFT_SECONDS = "vllm:time_to_first_token_seconds"
VLLM_WAITING = "vllm:num_requests_waiting"
VLLM_RUNNING = "vllm:num_requests_running"
VLLM_KV_CACHE = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
VLLM_GENERATION_TOKENS = "vllm:generation_tokens_total"
VLLM_PROMPT_TOKENS = "vllm:prompt_tokens_total"
VLLM_HTTP_REQUESTS = "http_requests_total"
VLLM_API_HANDLERS = "/v1/.*"

# vLLM's recording rules, as llm-service writes them (its PrometheusRule), each
# `by (namespace, inferenceservice, region)`: 5-minute rates of the token counters and of the
# time-to-first-token buckets (also `by le`), the summed queue and the highest KV-cache use.
VLLM_RECORDED_GENERATION_TOKENS = "server:vllm_generation_tokens:rate5m"
VLLM_RECORDED_PROMPT_TOKENS = "server:vllm_prompt_tokens:rate5m"
VLLM_RECORDED_TTFT_BUCKETS = "server:vllm_time_to_first_token_seconds_bucket:rate5m"
VLLM_RECORDED_WAITING = "server:vllm_num_requests_waiting:sum"
VLLM_RECORDED_KV_CACHE = "server:vllm_kv_cache_usage_perc:max"
#: The window of the recorded rates.
RECORDED_RATE_WINDOW = "300s"

# platform-hub's fleet-wide recording rules (its PrometheusRule trellis-golden-signals): each
# server's rates of every runtime, `by (namespace, inferenceservice, region)`, named
# `<base>:rate5m` and, for what scorecards read over their one-hour window, `<base>:rate1h`.
# Each is exactly the raw expression below for its runtime, so the values are the same.
HUB_REQUESTS = "server:requests"  # successes + failures (vLLM: its successes)
HUB_ERRORS = "server:request_errors"  # failures (vLLM: its OpenAI API's 5xx answers)
HUB_API_REQUESTS = "server:api_requests"  # the error ratio's denominator
HUB_DURATION_SUM = "server:request_duration_seconds_sum"
HUB_DURATION_COUNT = "server:request_duration_seconds_count"
HUB_QUEUE_SUM = "server:request_queue_seconds_sum"
HUB_QUEUE_COUNT = "server:request_queue_seconds_count"
HUB_DURATION_BUCKETS = "server:request_duration_seconds_bucket"  # MLServer's REST, vLLM's e2e
#: Recorded windows by their length in seconds, as the rules name them.
HUB_WINDOWS: Mapping[int, str] = {300: "5m", 3600: "1h"}

# DCGM exporter (etc/default-counters.csv, NVIDIA/dcgm-exporter): `DCGM_FI_DEV_GPU_UTIL`
# (percent) and `DCGM_FI_DEV_FB_USED` (MiB), per GPU, labelled with the `namespace` and `pod`
# using the GPU (scraped with honorLabels).
DCGM_GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"
DCGM_FB_USED_MIB = "DCGM_FI_DEV_FB_USED"
MIB = 1_048_576
#: Every scraped target has `up`; with the PodMonitor's labels it maps pods to servers.
UP = "up"


# --- selectors over a page's servers ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Servers:
    """A page's servers of one runtime as exact label matchers, one per (namespace, region).

    ``inferenceservice`` is matched against the quoted names of that group only, so no
    combination of another namespace's or region's names can slip in. ``gpu_namespaces``
    selects the DCGM series that may belong to the servers' pods.
    """

    groups: tuple[str, ...]
    gpu_namespaces: str

    @classmethod
    def everyone(cls) -> _Servers:
        """Every server Prometheus knows (any ``inferenceservice``): no name in the query."""
        return cls((f"inferenceservice!={quote('')}",), f"namespace!={quote('')}")

    @classmethod
    def of(cls, deployments: Iterable[Deployment]) -> _Servers:
        names: dict[tuple[str, str], set[str]] = defaultdict(set)
        for deployment in deployments:
            names[(deployment.namespace, deployment.region)].add(deployment.name)
        groups = []
        for (namespace, region), found in sorted(names.items()):
            name = (
                matcher("inferenceservice", next(iter(found)))
                if len(found) == 1
                else f"inferenceservice=~{regex_alternatives(found)}"
            )
            groups.append(f"{matcher('namespace', namespace)},{matcher('region', region)},{name}")
        namespaces = f"namespace=~{regex_alternatives(ns for ns, _ in names)}"
        return cls(tuple(groups), namespaces)


def _selectors(metric: str | Sequence[str], servers: _Servers, *extra: str) -> list[str]:
    """``metric{group, extra}`` for each group (several names: ``{__name__=~..., ...}``)."""
    if isinstance(metric, str):
        name, matchers = metric, list(extra)
    else:
        name, matchers = "", [f"__name__=~{regex_alternatives(metric)}", *extra]
    return [f"{name}{{{','.join([group, *matchers])}}}" for group in servers.groups]


def _vector(metric: str | Sequence[str], servers: _Servers, *extra: str) -> str:
    """The union of the groups' selectors."""
    return f"({' or '.join(_selectors(metric, servers, *extra))})"


def _rate(metric: str | Sequence[str], servers: _Servers, window: str, *extra: str) -> str:
    """``rate()`` of each group's selector, unioned (a range selector cannot be ``or``-ed)."""
    return _over("rate", metric, servers, window, *extra)


def _over(
    function: str, metric: str | Sequence[str], servers: _Servers, window: str, *extra: str
) -> str:
    """``function(selector[window])`` of each group's selector, unioned."""
    parts = [f"{function}({part}[{window}])" for part in _selectors(metric, servers, *extra)]
    return f"({' or '.join(parts)})"


def _gpu(metric: str, servers: _Servers, over: tuple[str, str] | None = None) -> str:
    """``metric`` of the GPUs the servers' pods use, labelled with their server.

    ``over`` = ``(function, window)`` reads ``function(metric[window])`` instead of the
    newest value (``("avg_over_time", "300s")``).
    """
    gpus = f"{metric}{{{servers.gpu_namespaces}}}"
    if over is not None:
        gpus = f"{over[0]}({gpus}[{over[1]}])"
    pods = f"group by (namespace, pod, inferenceservice, region) ({_vector(UP, servers)})"
    return f"({gpus} * on (namespace, pod) group_left (inferenceservice, region) {pods})"


# A builder turns (servers, rate window) into (per-server expression, whole-model expression).
Builder = Callable[[_Servers, str], tuple[str, str]]
Inner = Callable[[_Servers, str], str]


def _aggregate(op: str, inner: Inner, scale: str = "") -> Builder:
    def build(servers: _Servers, window: str) -> tuple[str, str]:
        x = inner(servers, window)
        return f"{op} by ({BY_SERVER}) ({x}){scale}", f"{op} ({x}){scale}"

    return build


def _requests(success: str, failure: str) -> Builder:
    """Successes plus failures; a server that exports no failure counter yet has successes."""

    def build(servers: _Servers, window: str) -> tuple[str, str]:
        ok, failed = _rate(success, servers, window), _rate(failure, servers, window)
        by = f"sum by ({BY_SERVER})"
        return (
            f"{by} ({ok}) + {by} ({failed}) or {by} ({ok})",
            f"sum ({ok}) + sum ({failed}) or sum ({ok})",
        )

    return build


def _failed(success: str, failure: str) -> Builder:
    """Failures over successes plus failures.

    Never one ``rate()`` over both names: it drops the name, and two series left with the
    same labels are an error.
    """

    def build(servers: _Servers, window: str) -> tuple[str, str]:
        ok, failed = _rate(success, servers, window), _rate(failure, servers, window)
        by = f"sum by ({BY_SERVER})"
        return (
            f"{by} ({failed}) / ({by} ({ok}) + {by} ({failed}))",
            f"sum ({failed}) / (sum ({ok}) + sum ({failed}))",
        )

    return build


def _ratio(numerator: Inner, denominator: Inner, scale: str = "") -> Builder:
    def build(servers: _Servers, window: str) -> tuple[str, str]:
        top, bottom = numerator(servers, window), denominator(servers, window)
        return (
            f"sum by ({BY_SERVER}) ({top}) / sum by ({BY_SERVER}) ({bottom}){scale}",
            f"sum ({top}) / sum ({bottom}){scale}",
        )

    return build


def _rated(metric: str | Sequence[str], *extra: str) -> Inner:
    return lambda servers, window: _rate(metric, servers, window, *extra)


def _gauge(metric: str | Sequence[str], *extra: str) -> Inner:
    return lambda servers, _: _vector(metric, servers, *extra)


def _mean(histogram: str, *extra: str) -> Builder:
    return _ratio(_rated(f"{histogram}_sum", *extra), _rated(f"{histogram}_count", *extra))


def _recorded_rate(record: str) -> Inner:
    """A recorded 5-minute rate over the page's rate window.

    The newest value when the window is five minutes (the same number ``rate()`` gives);
    over a longer window, the mean of the recorded rates in it, as near as recorded data gets
    to the rate over the whole window.
    """

    def build(servers: _Servers, window: str) -> str:
        if window == RECORDED_RATE_WINDOW:
            return _vector(record, servers)
        return _over("avg_over_time", record, servers, window)

    return build


def _recorded_or_raw(op: str, recorded: Inner, raw: Inner) -> Builder:
    """``op`` per server of the recorded series, or of the raw ones for a server without.

    Both sides are aggregated by server before the ``or``, so a server's row comes from one
    side only, and the model's row is ``op`` over those rows: nothing counts twice.
    """

    def build(servers: _Servers, window: str) -> tuple[str, str]:
        by = f"{op} by ({BY_SERVER})"
        per_server = f"{by} ({recorded(servers, window)}) or {by} ({raw(servers, window)})"
        return per_server, f"{op} ({per_server})"

    return build


def _hub_name(base: str, window: str) -> str | None:
    """The recorded name of ``base`` over a rate window (``"300s"``), if one is recorded."""
    suffix = HUB_WINDOWS.get(int(window.removesuffix("s")))
    return None if suffix is None else f"{base}:rate{suffix}"


def _hub_rates(*bases: str) -> Callable[[str], Builder]:
    """A signal from hub-recorded rates over the window: summed, or the ratio of two sums."""

    def for_window(window: str) -> Builder:
        names = [_hub_name(base, window) or "" for base in bases]
        if len(names) == 1:
            return _aggregate("sum", _gauge(names[0]))
        return _ratio(_gauge(names[0]), _gauge(names[1]))

    return for_window


#: Signals the hub records for every runtime that has them, and the bases of their names.
HUB_SIGNALS: Mapping[str, tuple[str, ...]] = {
    "request_rate": (HUB_REQUESTS,),
    "error_ratio": (HUB_ERRORS, HUB_API_REQUESTS),
    "latency_mean": (HUB_DURATION_SUM, HUB_DURATION_COUNT),
    "queue_time": (HUB_QUEUE_SUM, HUB_QUEUE_COUNT),
}


def _hub_recorded(bases: Iterable[str], window: str, recorded: frozenset[str]) -> bool:
    """Whether every one of ``bases`` is recorded over ``window`` and Prometheus has it."""
    names = [_hub_name(base, window) for base in bases]
    return all(name is not None and name in recorded for name in names)


#: What the hub records over one hour: the rates scorecards read over their serving window.
HUB_HOURLY = (HUB_REQUESTS, HUB_ERRORS, HUB_API_REQUESTS, HUB_DURATION_BUCKETS)
#: Each server's latency percentiles from its recorded buckets, over 5 minutes and 1 hour:
#: ``server:request_duration_seconds:p95_5m`` (the quantile's hundredths, the window).
HUB_PERCENTILE = "server:request_duration_seconds:p{hundredths}_{window}"
#: vLLM's time to first token, recorded by the hub for every server over 5 minutes: the
#: bucket rates and, from them, each server's p50, p95 and p99 (as for latency).
HUB_TTFT_BUCKETS = "server:time_to_first_token_seconds_bucket"
HUB_TTFT_PERCENTILE = "server:time_to_first_token_seconds:p{hundredths}_{window}"
#: The percentiles the hub records, by their quantile.
HUB_QUANTILES = (0.5, 0.95, 0.99)


def hub_percentile_name(q: float, window: str, template: str = HUB_PERCENTILE) -> str | None:
    """The recorded name of each server's ``q`` quantile over ``window``, if recorded.

    ``template`` names the distribution: latency (``HUB_PERCENTILE``) or time to first token
    (``HUB_TTFT_PERCENTILE``).
    """
    suffix = HUB_WINDOWS.get(int(window.removesuffix("s")))
    if suffix is None or q not in HUB_QUANTILES:
        return None
    return template.format(hundredths=round(q * 100), window=suffix)


def hub_recorded_names() -> tuple[str, ...]:
    """Every name of platform-hub's recording rules that Trellis reads, sorted.

    Every base over 5 minutes; those of ``HUB_HOURLY`` over 1 hour too; latency percentiles
    over both, time-to-first-token percentiles over 5 minutes.
    """
    bases = {base for found in HUB_SIGNALS.values() for base in found}
    bases |= {HUB_DURATION_BUCKETS, HUB_TTFT_BUCKETS}
    names = {f"{base}:rate5m" for base in bases} | {f"{base}:rate1h" for base in HUB_HOURLY}
    for window in ("300s", "3600s"):
        names |= {hub_percentile_name(q, window) or "" for q in HUB_QUANTILES}
    names |= {hub_percentile_name(q, "300s", HUB_TTFT_PERCENTILE) or "" for q in HUB_QUANTILES}
    return tuple(sorted(names))


def runtime_builder(
    runtime: str, signal_id: str, window: str, recorded: frozenset[str]
) -> Builder | None:
    """How ``runtime``'s servers answer ``signal_id``: hub-recorded rates, else raw series."""
    raw = RUNTIME_SIGNALS.get(runtime, {}).get(signal_id)
    bases = HUB_SIGNALS.get(signal_id)
    if raw is None or bases is None or not _hub_recorded(bases, window, recorded):
        return raw
    return _hub_rates(*bases)(window)


_INFER = f"path=~{quote(MLSERVER_INFER_PATH)}"
_VLLM_API = f"handler=~{quote(VLLM_API_HANDLERS)}"

RUNTIME_SIGNALS: Mapping[str, Mapping[str, Builder]] = {
    Runtime.MLSERVER: {
        "request_rate": _requests(MLSERVER_SUCCESS, MLSERVER_FAILURE),
        "error_ratio": _failed(MLSERVER_SUCCESS, MLSERVER_FAILURE),
        "latency_mean": _mean(MLSERVER_DURATION),
        "in_flight": _aggregate("sum", _gauge(MLSERVER_IN_PROGRESS)),
    },
    Runtime.TRITON: {
        "request_rate": _requests(TRITON_SUCCESS, TRITON_FAILURE),
        "error_ratio": _failed(TRITON_SUCCESS, TRITON_FAILURE),
        "latency_mean": _ratio(_rated(TRITON_DURATION_US), _rated(TRITON_SUCCESS), " / 1e6"),
        "queue_depth": _aggregate("sum", _gauge(TRITON_PENDING)),
        "queue_time": _ratio(_rated(TRITON_QUEUE_US), _rated(TRITON_SUCCESS), " / 1e6"),
    },
    Runtime.VLLM: {
        "request_rate": _aggregate("sum", _rated(VLLM_SUCCESS)),
        "error_ratio": _ratio(
            _rated(VLLM_HTTP_REQUESTS, _VLLM_API, 'status="5xx"'),
            _rated(VLLM_HTTP_REQUESTS, _VLLM_API),
        ),
        "latency_mean": _mean(VLLM_E2E_SECONDS),
        "queue_depth": _recorded_or_raw("sum", _gauge(VLLM_RECORDED_WAITING), _gauge(VLLM_WAITING)),
        "queue_time": _mean(VLLM_QUEUE_SECONDS),
        "in_flight": _aggregate("sum", _gauge(VLLM_RUNNING)),
        "kv_cache_usage": _recorded_or_raw(
            "max", _gauge(VLLM_RECORDED_KV_CACHE), _gauge(VLLM_KV_CACHE)
        ),
        "generation_tokens": _recorded_or_raw(
            "sum", _recorded_rate(VLLM_RECORDED_GENERATION_TOKENS), _rated(VLLM_GENERATION_TOKENS)
        ),
        "prompt_tokens": _recorded_or_raw(
            "sum", _recorded_rate(VLLM_RECORDED_PROMPT_TOKENS), _rated(VLLM_PROMPT_TOKENS)
        ),
    },
    Runtime.CUSTOM: {},
}

#: The percentiles every latency query answers, by signal.
PERCENTILES: Mapping[str, float] = {"latency_p50": 0.5, "latency_p95": 0.95, "latency_p99": 0.99}
LATENCY = "latency"
Rows = Callable[[_Servers, str], str]


def _bucket_rates(histogram: str, *extra: str) -> Rows:
    def build(servers: _Servers, window: str) -> str:
        rates = _rate(f"{histogram}_bucket", servers, window, *extra)
        return f"sum by ({BY_SERVER}, le) ({rates})"

    return build


def _hub_buckets(servers: _Servers, window: str) -> str:
    """Each server's hub-recorded latency bucket rates (MLServer's and vLLM's histograms)."""
    name = _hub_name(HUB_DURATION_BUCKETS, window) or ""
    return f"sum by ({BY_SERVER}, le) ({_vector(name, servers)})"


def latency_histogram(runtime: str, window: str, recorded: frozenset[str]) -> Rows | None:
    """``runtime``'s latency bucket rows: hub-recorded when Prometheus has them, else raw."""
    raw = HISTOGRAMS.get(runtime)
    if raw is None or not _hub_recorded([HUB_DURATION_BUCKETS], window, recorded):
        return raw
    return _hub_buckets


def _hub_percentiles(
    template: str, buckets: str, window: str, recorded: frozenset[str]
) -> tuple[list[str], str] | None:
    """The names of the hub's percentiles of ``template`` over ``window``, and of its buckets.

    None unless Prometheus has them all (the percentiles and the buckets they come from).
    """
    names = [hub_percentile_name(q, window, template) or "" for q in HUB_QUANTILES]
    bucket_name = _hub_name(buckets, window) or ""
    if not recorded.issuperset([*names, bucket_name]):  # "" (not recorded) is never there
        return None
    return names, bucket_name


#: A recorded percentile's quantile from its name's two digits of hundredths (``:p95_5m``).
_HUNDREDTHS = ('"__name__"', '".*:p([0-9][0-9])_[0-9]+[mh]"')


def _exact_and_pooled(names: Sequence[str], buckets: str, runtime: str) -> Rows:
    """Each server's recorded percentiles as rows of their own, and the runtime's buckets pooled.

    A server's rows are its recorded p50, p95 and p99, labelled ``RECORDED_QUANTILE_LABEL``
    (three rows where its buckets are a row per bound), read with one selector per group of
    servers; the model's are the bucket rates of all the runtime's servers summed by bound in
    Prometheus, labelled as the model's.
    """

    def build(servers: _Servers, _: str) -> str:
        recorded = _vector(names, servers)
        exact = (
            f"max by ({BY_SERVER}, {RECORDED_QUANTILE_LABEL}) (label_replace({recorded}, "
            f'"{RECORDED_QUANTILE_LABEL}", "0.$1", {", ".join(_HUNDREDTHS)}))'
        )
        return f"{exact} or {_as_model(f'sum by (le) ({_vector(buckets, servers)})', runtime)}"

    return build


def recorded_latency(runtime: str, window: str, recorded: frozenset[str]) -> Rows | None:
    """``runtime``'s latency rows from the hub: its percentiles, else its buckets, else None."""
    if runtime not in HISTOGRAMS:
        return None
    found = _hub_percentiles(HUB_PERCENTILE, HUB_DURATION_BUCKETS, window, recorded)
    if found is None:
        return latency_histogram(runtime, window, recorded)
    return _exact_and_pooled(*found, runtime)


def recorded_ttft(runtime: str, window: str, recorded: frozenset[str]) -> Rows | None:
    """Time-to-first-token rows from the hub's recorded percentiles, when Prometheus has them.

    The hub records every server with raw series or llm-service's recorded buckets, so no
    server needs its raw ones here.
    """
    found = _hub_percentiles(HUB_TTFT_PERCENTILE, HUB_TTFT_BUCKETS, window, recorded)
    if runtime not in TTFT_ROWS or found is None:
        return None
    return _exact_and_pooled(*found, runtime)


def _recorded_or_raw_buckets(record: str, histogram: str) -> Rows:
    """Each server's recorded bucket rates, or its raw ones when it has none recorded."""
    raw = _bucket_rates(histogram)

    def build(servers: _Servers, window: str) -> str:
        recorded = _recorded_rate(record)(servers, window)
        return f"sum by ({BY_SERVER}, le) ({recorded}) or {raw(servers, window)}"

    return build


def _triton_quantiles(quantiles: Iterable[float], by: str) -> Rows:
    """The highest of each pod's ``quantiles`` of the Triton summary, ``max by (by)``."""
    wanted = f"quantile=~{regex_alternatives(repr(q) for q in quantiles)}"

    def build(servers: _Servers, _: str) -> str:
        return f"max by ({by}) ({_vector(TRITON_SUMMARY_US, servers, wanted)}) / 1e6"

    return build


#: Runtimes whose latency is a histogram: rows of bucket rates (with `le`, in seconds).
HISTOGRAMS: Mapping[str, Rows] = {
    Runtime.MLSERVER: _bucket_rates(MLSERVER_REST_SECONDS, _INFER),
    Runtime.VLLM: _bucket_rates(VLLM_E2E_SECONDS),
}
#: Runtimes whose latency is a summary: ``(quantiles, by)`` to rows of those quantiles, in
#: seconds, one per group of ``by``.
SUMMARIES: Mapping[str, Callable[[Iterable[float], str], Rows]] = {
    Runtime.TRITON: _triton_quantiles,
}
#: Where each runtime's latency distribution is: histogram buckets (rows with `le`, in
#: seconds) or summary quantiles (rows with `quantile`, converted to seconds).
LATENCY_ROWS: Mapping[str, Rows] = {
    **HISTOGRAMS,
    **{
        runtime: quantiles(PERCENTILES.values(), f"{BY_SERVER}, quantile")
        for runtime, quantiles in SUMMARIES.items()
    },
}

TTFT = "ttft"
TTFT_PERCENTILES: Mapping[str, float] = {"ttft_p50": 0.5, "ttft_p95": 0.95, "ttft_p99": 0.99}
#: Time to first token: vLLM's histogram (recorded or raw), rows with `le`, in seconds.
TTFT_ROWS: Mapping[str, Rows] = {
    Runtime.VLLM: _recorded_or_raw_buckets(VLLM_RECORDED_TTFT_BUCKETS, VLLM_TTFT_SECONDS),
}


@dataclass(frozen=True, slots=True)
class Percentiles:
    """Percentile signals that share one query, and where each runtime has their distribution.

    ``quantiles`` maps each signal id to its quantile; ``rows`` each runtime to the rows the
    percentiles are worked out from (bucket rates or summary quantiles, in seconds);
    ``recorded`` gives a runtime's rows from recorded series over a rate window, when
    Prometheus has the names they need (None: ``rows``).
    """

    key: str
    quantiles: Mapping[str, float]
    rows: Mapping[str, Rows]
    recorded: Callable[[str, str, frozenset[str]], Rows | None]


#: The percentile queries, by key.
PERCENTILE_QUERIES: Mapping[str, Percentiles] = {
    LATENCY: Percentiles(LATENCY, PERCENTILES, LATENCY_ROWS, recorded_latency),
    TTFT: Percentiles(TTFT, TTFT_PERCENTILES, TTFT_ROWS, recorded_ttft),
}
#: The query of each percentile signal.
PERCENTILES_OF: Mapping[str, Percentiles] = {
    signal: query for query in PERCENTILE_QUERIES.values() for signal in query.quantiles
}

#: Signals every server has, whatever it runs: its GPUs, from the DCGM exporter.
GPU_SIGNALS: Mapping[str, Builder] = {
    "gpu_utilization": _aggregate("avg", lambda servers, _: _gpu(DCGM_GPU_UTIL, servers)),
    "gpu_memory": _aggregate(
        "sum", lambda servers, _: _gpu(DCGM_FB_USED_MIB, servers), f" * {MIB}"
    ),
}


# --- the plan of one page --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Query:
    """One query of a page: it reads ``signals`` for every server of the page.

    ``key`` is the signal's id, or that of a percentile query (``LATENCY``, ``TTFT``) for
    the query behind its three percentiles.
    """

    key: str
    signals: tuple[Signal, ...]
    promql: str


def server_key(deployment: Deployment) -> ServerKey:
    """How a server's rows are labelled: ``(namespace, inferenceservice, region)``."""
    return (deployment.namespace, deployment.name, deployment.region)


def _offers(runtime: str, signal_id: str) -> bool:
    percentiles = PERCENTILES_OF.get(signal_id)
    if percentiles is not None:
        return runtime in percentiles.rows
    return signal_id in GPU_SIGNALS or signal_id in RUNTIME_SIGNALS.get(runtime, {})


@cache  # asked per server and signal of every page: the answer never changes
def signals_for(runtime: str) -> tuple[Signal, ...]:
    """The signals a server of ``runtime`` has, in the order of ``SIGNALS``."""
    return tuple(s for s in SIGNALS if _offers(runtime, s.id))


def plan_queries(
    deployments: Sequence[Deployment],
    rate_seconds: int,
    recorded: frozenset[str] = frozenset(),
) -> list[Query]:
    """The queries of a page: one per signal its servers have, one per set of percentiles.

    In the order they are best sent: the percentile queries first (the most rows: a row per
    bucket and server, or three recorded percentiles per server and the model's buckets; the
    slowest to answer and to decode, so their work overlaps the others' instead of following
    them), then one per signal in the order of ``SIGNALS``. ``recorded`` names
    the hub's recorded series Prometheus has (``hub_recorded_names``): a signal whose rates
    are all among them is read from them instead of the raw series.
    """
    window = f"{rate_seconds}s"
    by_runtime: dict[str, list[Deployment]] = defaultdict(list)
    for deployment in deployments:
        runtime = deployment.runtime if deployment.runtime in RUNTIME_SIGNALS else Runtime.CUSTOM
        by_runtime[runtime].append(deployment)
    queries = [
        query
        for percentiles in PERCENTILE_QUERIES.values()
        for query in _percentile_query(percentiles, by_runtime, window, recorded)
    ]
    for signal in SIGNALS:
        if signal.id in PERCENTILES_OF:
            continue
        parts: list[str] = []
        if signal.id in GPU_SIGNALS and deployments:
            servers = _Servers.of(deployments)
            parts.extend(_parts(GPU_SIGNALS[signal.id], servers, window, ALL_RUNTIMES))
        for runtime in sorted(by_runtime):
            builder = runtime_builder(runtime, signal.id, window, recorded)
            if builder is not None:
                parts.extend(_parts(builder, _Servers.of(by_runtime[runtime]), window, runtime))
        if parts:
            queries.append(Query(signal.id, (signal,), " or ".join(parts)))
    return queries


def _percentile_query(
    percentiles: Percentiles,
    by_runtime: Mapping[str, Sequence[Deployment]],
    window: str,
    recorded: frozenset[str],
) -> list[Query]:
    """The query of one set of percentiles, if a server of the page has them."""
    rows = []
    for runtime, found in sorted(by_runtime.items()):
        build = percentiles.rows.get(runtime)
        if build is None:
            continue
        build = percentiles.recorded(runtime, window, recorded) or build
        rows.append(f"({build(_Servers.of(found), window)})")
    if not rows:
        return []
    signals = tuple(s for s in SIGNALS if s.id in percentiles.quantiles)
    return [Query(percentiles.key, signals, " or ".join(rows))]


def _parts(builder: Builder, servers: _Servers, window: str, runtime: str) -> list[str]:
    per_server, whole = builder(servers, window)
    return [f"({per_server})", f"({_as_model(whole, runtime)})"]


def _as_model(expression: str, runtime: str) -> str:
    """``expression``'s rows labelled as the model's, over its servers of ``runtime``."""
    return (
        f'label_replace(label_replace({expression}, "{SCOPE_LABEL}", "model", "", ""), '
        f'"{RUNTIME_LABEL}", {quote(runtime)}, "", "")'
    )


# --- Roadie's prometheus.io/rule ---------------------------------------------------------------

#: Roadie's frontend splits the annotation on `,` and `|`: no query may hold either.
_ROADIE_FORBIDDEN = str.maketrans({",": "\\x2c", "|": "\\x7c"})
_ROADIE_WINDOW = "5m"


def _roadie_value(value: str) -> str:
    """A quoted label value with `,` and `|` written as escapes (the same string to PromQL)."""
    return quote(value).translate(_ROADIE_FORBIDDEN)


def _one_server(deployment: Deployment, metric: str, *extra: str, rate: bool = False) -> str:
    """``metric`` of one server without a comma: one matcher per selector, joined by ``and``."""
    labels = [
        f"inferenceservice={_roadie_value(deployment.name)}",
        f"namespace={_roadie_value(deployment.namespace)}",
        f"region={_roadie_value(deployment.region)}",
        *extra,
    ]
    parts = [f"{metric}{{{label}}}" for label in labels]
    if rate:
        parts = [f"rate({part}[{_ROADIE_WINDOW}])" for part in parts]
    return " and ".join(parts)


def _roadie_mean(deployment: Deployment, total: str, count: str, scale: str = "") -> str:
    top = _one_server(deployment, total, rate=True)
    bottom = _one_server(deployment, count, rate=True)
    return f"sum by (pod) ({top}) / sum by (pod) ({bottom}){scale}"


def roadie_rules(deployment: Deployment) -> list[tuple[str, str]]:
    """Short ``(query, groupLabel)`` pairs for one server's ``prometheus.io/rule`` annotation.

    Requests, failures, mean latency (and queue depth where the runtime has one) by pod, and
    GPU utilisation by pod. No query holds a `,` or `|`: label values carry them as escapes.
    """
    d = deployment
    rules: list[tuple[str, str]] = []
    if d.runtime == Runtime.MLSERVER:
        rules += [
            (f"sum by (pod) ({_one_server(d, MLSERVER_SUCCESS, rate=True)})", "pod"),
            (f"sum by (pod) ({_one_server(d, MLSERVER_FAILURE, rate=True)})", "pod"),
            (_roadie_mean(d, f"{MLSERVER_DURATION}_sum", f"{MLSERVER_DURATION}_count"), "pod"),
        ]
    elif d.runtime == Runtime.TRITON:
        rules += [
            (f"sum by (pod) ({_one_server(d, TRITON_SUCCESS, rate=True)})", "pod"),
            (f"sum by (pod) ({_one_server(d, TRITON_FAILURE, rate=True)})", "pod"),
            (_roadie_mean(d, TRITON_DURATION_US, TRITON_SUCCESS, " / 1e6"), "pod"),
            (f"sum by (pod) ({_one_server(d, TRITON_PENDING)})", "pod"),
        ]
    elif d.runtime == Runtime.VLLM:
        failed = _one_server(d, VLLM_HTTP_REQUESTS, 'status="5xx"', rate=True)
        rules += [
            (f"sum by (pod) ({_one_server(d, VLLM_SUCCESS, rate=True)})", "pod"),
            (f"sum by (pod) ({failed})", "pod"),
            (_roadie_mean(d, f"{VLLM_E2E_SECONDS}_sum", f"{VLLM_E2E_SECONDS}_count"), "pod"),
            (f"sum by (pod) ({_one_server(d, VLLM_WAITING)})", "pod"),
            (f"sum by (pod) ({_one_server(d, VLLM_GENERATION_TOKENS, rate=True)})", "pod"),
        ]
    namespace = f"namespace={_roadie_value(d.namespace)}"
    pods = f"group by (pod) ({_one_server(d, UP)})"
    rules.append(
        (f"avg by (pod) ({DCGM_GPU_UTIL}{{{namespace}}} * on (pod) group_left () {pods})", "pod")
    )
    return [(query, group) for query, group in rules if "," not in query and "|" not in query]
