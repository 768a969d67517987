"""Serving facts of every model server at once: one instant query per fact, for scorecards.

A page (``queries.plan_queries``) names its servers in exact label matchers. Scorecards need
the same golden signals for the whole fleet, so these queries name no server at all: they
select every series with an ``inferenceservice`` label (``_Servers.everyone()``), every
runtime's expression is ``or``-ed into one query per fact, and each server's row comes out
``by (namespace, inferenceservice, region)``. The caller matches rows to its servers with
``server_key(deployment)``; a name, however hostile, is never part of the PromQL.

The expressions are the page's own builders (same metric names, same joins): requests and
failures from each runtime's counters, percentiles computed by Prometheus
(``histogram_quantile`` over each server's summed bucket rates, or the highest of a Triton
server's pods' summary quantile), GPU series joined to the servers' pods through ``up``.
Units are the scorecard's: seconds, ratios 0..1 (GPU utilisation too), bytes.

Where Prometheus has platform-hub's recording rules over the serving window (``recorded``),
the rates and latency bucket rates are read from them (``queries.runtime_builder``,
``queries.latency_histogram``): a few recorded series per server instead of a rate over every
raw series, the same values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from trellis.model import Sample
from trellis.observability.queries import (
    BY_SERVER,
    DCGM_GPU_UTIL,
    GPU_SIGNALS,
    HISTOGRAMS,
    PERCENTILES,
    RUNTIME_SIGNALS,
    SERVER_LABELS,
    SUMMARIES,
    UP,
    ServerKey,
    _gpu,
    _over,
    _Servers,
    hub_percentile_name,
    latency_histogram,
    runtime_builder,
)

__all__ = ["FLEET_FACTS", "FleetQuery", "fleet_rows", "plan_fleet_queries"]

#: The serving facts, in the order of their queries.
FLEET_FACTS = (
    "requestRate",
    "errorRatio",
    "latencyP50",
    "latencyP95",
    "latencyP99",
    "availability",
    "gpuUtilization",
    "gpuMemoryBytes",
)

#: Each latency fact and the page signal (so the percentile) it is.
_LATENCY = {"latencyP50": "latency_p50", "latencyP95": "latency_p95", "latencyP99": "latency_p99"}


@dataclass(frozen=True, slots=True)
class FleetQuery:
    """The instant query answering one scorecard fact for every server."""

    fact: str
    promql: str


def plan_fleet_queries(
    serving_window_seconds: int,
    availability_window_seconds: int,
    recorded: frozenset[str] = frozenset(),
) -> tuple[FleetQuery, ...]:
    """One instant query per fact for every server of every runtime.

    Rates, percentiles and GPU utilisation are taken over the serving window; availability
    (the share of scrapes that succeeded) over the availability window. ``recorded`` names
    the hub's recorded series Prometheus has; rates recorded over the serving window are read
    from them.
    """
    serving = _window(serving_window_seconds)
    availability = _window(availability_window_seconds)
    everyone = _Servers.everyone()
    promql = {
        "requestRate": _runtimes("request_rate", everyone, serving, recorded),
        "errorRatio": _runtimes("error_ratio", everyone, serving, recorded),
        **{
            fact: _percentile(PERCENTILES[signal], everyone, serving, recorded)
            for fact, signal in _LATENCY.items()
        },
        "availability": (
            f"avg by ({BY_SERVER}) ({_over('avg_over_time', UP, everyone, availability)})"
        ),
        "gpuUtilization": (
            f"avg by ({BY_SERVER}) "
            f"({_gpu(DCGM_GPU_UTIL, everyone, ('avg_over_time', serving))}) / 100"
        ),
        "gpuMemoryBytes": GPU_SIGNALS["gpu_memory"](everyone, serving)[0],
    }
    return tuple(FleetQuery(fact, promql[fact]) for fact in FLEET_FACTS)


def fleet_rows(answers: Mapping[str, Sequence[Sample]]) -> dict[ServerKey, dict[str, float]]:
    """Each server's value of each fact, from the answers by fact.

    A server with no row for a fact has no key for it; neither has one whose value is not
    finite (a ratio or percentile is NaN over a window without traffic). Answers for names
    that are not facts are ignored; should a fact have two rows for one server, the first
    counts (``or`` already keeps the first runtime's).
    """
    rows: dict[ServerKey, dict[str, float]] = {}
    for fact in FLEET_FACTS:
        for sample in answers.get(fact, ()):
            key = _key(sample.labels)
            if key is None or not math.isfinite(sample.value):
                continue
            rows.setdefault(key, {}).setdefault(fact, sample.value)
    return rows


def _window(seconds: int) -> str:
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds <= 0:
        raise ValueError(f"a window is a positive number of seconds, not {seconds!r}")
    return f"{seconds}s"


def _runtimes(signal: str, servers: _Servers, window: str, recorded: frozenset[str]) -> str:
    """The per-server expression of ``signal`` for every runtime that has it, ``or``-ed.

    Recorded rates cover every runtime in one series per server, so one part stands for all.
    """
    parts: list[str] = []
    for runtime in sorted(RUNTIME_SIGNALS):
        builder = runtime_builder(runtime, signal, window, recorded)
        if builder is not None:
            part = f"({builder(servers, window)[0]})"
            if part not in parts:
                parts.append(part)
    return " or ".join(parts)


def _percentile(q: float, servers: _Servers, window: str, recorded: frozenset[str]) -> str:
    """The ``q`` quantile of each server's latency, in seconds, every runtime ``or``-ed.

    Histograms' quantiles come from the hub's recorded percentiles when Prometheus has them
    (one series per server), else from its recorded bucket rates, else from the raw buckets.
    """
    parts: list[str] = []
    name = hub_percentile_name(q, window)
    if name is not None and name in recorded:
        parts.append(f"(max by ({BY_SERVER}) ({name}))")
    else:
        for runtime in sorted(HISTOGRAMS):
            rows = latency_histogram(runtime, window, recorded) or HISTOGRAMS[runtime]
            parts.append(f"(histogram_quantile({q!r}, {rows(servers, window)}))")
        parts = list(dict.fromkeys(parts))  # runtimes reading the same recorded rows: once
    parts += [
        f"({quantiles([q], BY_SERVER)(servers, window)})"
        for _, quantiles in sorted(SUMMARIES.items())
    ]
    return " or ".join(parts)


def _key(labels: Mapping[str, str]) -> ServerKey | None:
    """The row's server; an absent label is empty, as in Prometheus. No name: no server."""
    namespace, name, region = (labels.get(label, "") for label in SERVER_LABELS)
    return (namespace, name, region) if name else None
