"""A real Prometheus for the tests, with history backfilled by ``promtool``, and its math.

``Fleet`` writes the series that MLServer, Triton, vLLM, the DCGM exporter and Prometheus
itself (``up``) would have produced for a set of servers, every 30 s, with the labels the
blueprints' PodMonitor adds. ``PrometheusServer`` imports them as TSDB blocks before it starts
(FACTS.md: timestamps in seconds, ``# EOF`` at the end, blocks in place before the start).

The expected values the tests compare against are computed here, from the same samples,
by re-implementing what Prometheus 2.42 does (``rate()`` with its extrapolation,
``histogram_quantile()`` with linear interpolation in the bucket), never by asking Prometheus.
"""

from __future__ import annotations

import math
import random
import subprocess
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.markers import starting
from support.services import Process, free_port, start_process, wait_http
from support.timing import scaled
from support.tools import tool
from trellis.observability.window import parse_duration

INSTALL = "apt-get install -y --no-install-recommends prometheus"
SCRAPE = 30.0  # seconds between samples, as the PodMonitor's interval
OFFSET = 7.0  # samples are never on a minute boundary, where a window's edge could fall
LOOKBACK = 300.0

Labels = tuple[tuple[str, str], ...]
Points = list[tuple[float, float]]


def binaries() -> tuple[str, str]:
    """``prometheus`` and ``promtool``; a test fails (never skips) when they are missing."""
    starting("prometheus")
    hint = f"install Prometheus 2.x: `{INSTALL}` (Debian's package)"
    return tool("prometheus", install=hint), tool("promtool", install=hint)


# --- OpenMetrics ---------------------------------------------------------------------------


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@dataclass
class Samples:
    """Every sample to backfill, by metric name and label set."""

    series: dict[tuple[str, Labels], Points] = field(default_factory=dict)

    def add(self, name: str, labels: Mapping[str, str], t: float, value: float) -> None:
        key = (name, tuple(sorted(labels.items())))
        self.series.setdefault(key, []).append((t, value))

    def find(self, name: str, **match: str) -> list[tuple[dict[str, str], Points]]:
        """Series of ``name`` whose labels include ``match``."""
        found = []
        for (metric, labels), points in self.series.items():
            as_dict = dict(labels)
            if metric == name and all(as_dict.get(k) == v for k, v in match.items()):
                found.append((as_dict, points))
        return found

    def openmetrics(self) -> str:
        lines = []
        for (name, labels), points in sorted(self.series.items()):
            text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            lines.extend(f"{name}{{{text}}} {v!r} {t:.3f}" for t, v in sorted(points))
        lines.append("# EOF")
        return "\n".join(lines) + "\n"


# --- the fleet -----------------------------------------------------------------------------


MLSERVER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
VLLM_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0)
#: vLLM's time-to-first-token buckets (vllm/v1/metrics/loggers.py).
VLLM_TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
TRITON_QUANTILES = ("0.5", "0.9", "0.95", "0.99", "0.999")


@dataclass(frozen=True)
class Server:
    """One model server as Prometheus sees it: its labels, pods and GPUs."""

    runtime: str
    namespace: str
    name: str
    region: str
    pods: tuple[str, ...]
    gpus_per_pod: int = 1
    #: Seconds before the end of the data when this server stopped reporting.
    stops_before_end: float = 0.0
    seed: int = 0
    #: Every n-th scrape of the first pod fails (0: none): ``up`` is 0 and the pod's own
    #: series miss that sample (its GPUs, scraped from the DCGM exporter, do not).
    fails_every: int = 0

    def scraped(self, pod: int, scrape: int) -> bool:
        """Whether the ``scrape``-th scrape of the ``pod``-th pod succeeded."""
        n = self.fails_every
        return pod != 0 or not n or scrape % n != n - 1

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.namespace, self.name, self.region)

    def labels(self, pod: str) -> dict[str, str]:
        return {
            "namespace": self.namespace,
            "inferenceservice": self.name,
            "region": self.region,
            "pod": pod,
            "container": "kserve-container",
            "job": "trellis-tests",
            "instance": f"{pod}:8082",
        }


@dataclass
class Fleet:
    """The history of several servers from ``begin`` to ``end`` (Unix seconds)."""

    begin: float
    end: float
    samples: Samples = field(default_factory=Samples)
    servers: list[Server] = field(default_factory=list)

    def times(self, server: Server) -> list[float]:
        last = self.end - server.stops_before_end
        count = int((last - self.begin - OFFSET) // SCRAPE) + 1
        return [self.begin + OFFSET + SCRAPE * i for i in range(count)]

    def add(self, server: Server) -> Server:
        self.servers.append(server)
        writer = {"kserve-mlserver": _mlserver, "triton": _triton, "vllm": _vllm}.get(
            server.runtime
        )
        for index, pod in enumerate(server.pods):
            rng = random.Random(f"{server.seed}/{server.key}/{pod}")
            times = self.times(server)
            labels = server.labels(pod)
            for i, t in enumerate(times):
                self.samples.add("up", labels, t, 1.0 if server.scraped(index, i) else 0.0)
            if writer:
                scraped = [t for i, t in enumerate(times) if server.scraped(index, i)]
                writer(self.samples, labels, scraped, rng, index)
            _dcgm(self.samples, server, pod, times, rng)
        return server

    def add_gpu_decoy(self, namespace: str, pod: str) -> None:
        """A GPU in a server's namespace used by a pod of no server (a training job)."""
        rng = random.Random(f"decoy/{namespace}/{pod}")
        times = self.times(Server("", namespace, "", "", ()))
        labels = _gpu_labels(namespace, pod, 0)
        for t in times:
            self.samples.add("DCGM_FI_DEV_GPU_UTIL", labels, t, 99.0)
            self.samples.add("DCGM_FI_DEV_FB_USED", labels, t, 70_000.0 + rng.random())


def _counter(
    samples: Samples,
    name: str,
    labels: Mapping[str, str],
    times: Sequence[float],
    steps: Iterable[float],
) -> None:
    total = 0.0
    for t, step in zip(times, steps, strict=False):
        total += step
        samples.add(name, labels, t, total)


def _histogram(
    samples: Samples,
    name: str,
    labels: Mapping[str, str],
    times: Sequence[float],
    observations: Sequence[Sequence[float]],
    buckets: Sequence[float],
) -> None:
    counts = [0] * (len(buckets) + 1)
    total = 0.0
    for t, seen in zip(times, observations, strict=True):
        for value in seen:
            total += value
            index = next((i for i, bound in enumerate(buckets) if value <= bound), len(buckets))
            counts[index] += 1
        running = 0
        for bound, count in zip([*buckets, math.inf], counts, strict=True):
            running += count
            le = "+Inf" if bound == math.inf else repr(float(bound))
            samples.add(f"{name}_bucket", {**labels, "le": le}, t, float(running))
        samples.add(f"{name}_count", labels, t, float(running))
        samples.add(f"{name}_sum", labels, t, total)


def _mlserver(
    samples: Samples, labels: dict[str, str], times: list[float], rng: random.Random, index: int
) -> None:
    model = {**labels, "model": labels["inferenceservice"], "version": ""}
    ok = [float(rng.randint(20, 40)) for _ in times]
    failed = [float(rng.randint(0, 3)) for _ in times]
    _counter(samples, "model_infer_request_success_total", model, times, ok)
    _counter(samples, "model_infer_request_failure_total", model, times, failed)
    mean = 0.04 + 0.01 * index
    _counter(
        samples,
        "model_infer_request_duration_count",
        model,
        times,
        [o + f for o, f in zip(ok, failed, strict=True)],
    )
    _counter(
        samples,
        "model_infer_request_duration_sum",
        model,
        times,
        [(o + f) * mean for o, f in zip(ok, failed, strict=True)],
    )
    rest = {**labels, "method": "POST", "status_code": "200", "app_name": "mlserver"}
    infer = [[rng.lognormvariate(math.log(mean), 0.6) for _ in range(int(o))] for o in ok]
    path = f"/v2/models/{labels['inferenceservice']}/infer"
    _histogram(
        samples,
        "rest_server_request_duration_seconds",
        {**rest, "path": path},
        times,
        infer,
        MLSERVER_BUCKETS,
    )
    # Metadata requests are slow and must not count as inference latency.
    slow = [[rng.uniform(2.0, 9.0) for _ in range(5)] for _ in times]
    meta = {**rest, "method": "GET", "path": f"/v2/models/{labels['inferenceservice']}"}
    _histogram(samples, "rest_server_request_duration_seconds", meta, times, slow, MLSERVER_BUCKETS)
    for t in times:
        samples.add(
            "rest_server_requests_in_progress",
            {**labels, "method": "POST", "app_name": "mlserver"},
            t,
            float(rng.randint(0, 6)),
        )


def _triton(
    samples: Samples, labels: dict[str, str], times: list[float], rng: random.Random, index: int
) -> None:
    model = {**labels, "model": labels["inferenceservice"], "version": "1"}
    ok = [float(rng.randint(50, 90)) for _ in times]
    failed = [float(rng.randint(0, 4)) for _ in times]
    _counter(samples, "nv_inference_request_success", model, times, ok)
    _counter(samples, "nv_inference_request_failure", {**model, "reason": "BACKEND"}, times, failed)
    _counter(
        samples,
        "nv_inference_request_duration_us",
        model,
        times,
        [o * rng.uniform(8_000, 12_000) for o in ok],
    )
    _counter(
        samples,
        "nv_inference_queue_duration_us",
        model,
        times,
        [o * rng.uniform(500, 900) for o in ok],
    )
    base = 9_000.0 + 1_000 * index
    for t in times:
        samples.add("nv_inference_pending_request_count", model, t, float(rng.randint(0, 9)))
        for rank, quantile in enumerate(TRITON_QUANTILES):
            value = base * (1 + 0.3 * rank) + rng.uniform(0, 500)
            samples.add(
                "nv_inference_request_summary_us", {**model, "quantile": quantile}, t, value
            )


def _vllm(
    samples: Samples, labels: dict[str, str], times: list[float], rng: random.Random, index: int
) -> None:
    model = {**labels, "model_name": f"org/{labels['inferenceservice']}", "engine": "0"}
    finished = {
        reason: [float(rng.randint(1, 6)) for _ in times] for reason in ("stop", "length", "abort")
    }
    for reason, steps in finished.items():
        _counter(
            samples,
            "vllm:request_success_total",
            {**model, "finished_reason": reason},
            times,
            steps,
        )
    done = [sum(parts) for parts in zip(*finished.values(), strict=True)]
    latencies = [
        [rng.lognormvariate(math.log(3.0 + index), 0.7) for _ in range(int(n))] for n in done
    ]
    _histogram(samples, "vllm:e2e_request_latency_seconds", model, times, latencies, VLLM_BUCKETS)
    # Its own generator: the fleet's other series keep the values they had before it.
    first = random.Random(f"ttft/{sorted(labels.items())}")
    ttft = [[first.lognormvariate(math.log(0.2 + 0.1 * index), 0.8) for _ in range(int(n))]
            for n in done]  # fmt: skip
    _histogram(samples, "vllm:time_to_first_token_seconds", model, times, ttft, VLLM_TTFT_BUCKETS)
    _counter(samples, "vllm:request_queue_time_seconds_count", model, times, done)
    _counter(
        samples,
        "vllm:request_queue_time_seconds_sum",
        model,
        times,
        [n * rng.uniform(0.1, 0.4) for n in done],
    )
    _counter(
        samples,
        "vllm:generation_tokens_total",
        model,
        times,
        [n * rng.randint(80, 200) for n in done],
    )
    _counter(
        samples, "vllm:prompt_tokens_total", model, times, [n * rng.randint(300, 900) for n in done]
    )
    api = {**labels, "handler": "/v1/completions", "method": "POST"}
    _counter(samples, "http_requests_total", {**api, "status": "2xx"}, times, done)
    _counter(
        samples,
        "http_requests_total",
        {**api, "status": "5xx"},
        times,
        [float(rng.randint(0, 2)) for _ in times],
    )
    # Failing health checks are not failed requests.
    _counter(
        samples,
        "http_requests_total",
        {**labels, "handler": "/health", "method": "GET", "status": "5xx"},
        times,
        [3.0] * len(times),
    )
    for t in times:
        samples.add("vllm:num_requests_waiting", model, t, float(rng.randint(0, 12)))
        samples.add("vllm:num_requests_running", model, t, float(rng.randint(1, 16)))
        samples.add("vllm:kv_cache_usage_perc", model, t, rng.uniform(0.2, 0.95))


def _gpu_labels(namespace: str, pod: str, gpu: int) -> dict[str, str]:
    return {
        "namespace": namespace,
        "pod": pod,
        "container": "kserve-container",
        "gpu": str(gpu),
        "UUID": f"GPU-{zlib.crc32(f'{namespace}/{pod}/{gpu}'.encode()):08x}",
        "modelName": "NVIDIA A100-SXM4-80GB",
        "Hostname": "gpu-node-1",
    }


def _dcgm(
    samples: Samples, server: Server, pod: str, times: list[float], rng: random.Random
) -> None:
    for gpu in range(server.gpus_per_pod):
        labels = _gpu_labels(server.namespace, pod, gpu)
        for t in times:
            samples.add("DCGM_FI_DEV_GPU_UTIL", labels, t, float(rng.randint(5, 100)))
            samples.add("DCGM_FI_DEV_FB_USED", labels, t, float(rng.randint(10_000, 60_000)))


# --- vLLM's recording rules, evaluated ----------------------------------------------------

#: Rules are evaluated every 30 s, off the scrapes (at ``OFFSET``): before a point on the
#: minute, the newest evaluation is 25 s old and its window holds a sample the raw rate at the
#: point does not, so recorded and raw values differ and a test can tell which was read.
RULE_OFFSET = 5.0
RULE_WINDOW = 300.0
GENERATION_RATE = "server:vllm_generation_tokens:rate5m"
PROMPT_RATE = "server:vllm_prompt_tokens:rate5m"
TTFT_BUCKET_RATE = "server:vllm_time_to_first_token_seconds_bucket:rate5m"
WAITING_SUM = "server:vllm_num_requests_waiting:sum"
KV_CACHE_MAX = "server:vllm_kv_cache_usage_perc:max"


def record_vllm(fleet: Fleet, server: Server, external: Mapping[str, str]) -> None:
    """What llm-service's recording rules write for ``server``, evaluated here.

    Each rule is ``by (namespace, inferenceservice, region)`` (the TTFT one also ``by le``),
    evaluated every 30 s over the server's raw samples with Prometheus's ``rate()`` and
    lookback. ``external`` are the labels the recording Prometheus adds on its way to the
    one Trellis reads (remote write or federation).
    """
    own = {"namespace": server.namespace, "inferenceservice": server.name, "region": server.region}
    labels = {**own, **external}
    samples = fleet.samples

    def raw(name: str) -> list[tuple[dict[str, str], Points]]:
        return samples.find(name, **own)

    generation, prompt = raw("vllm:generation_tokens_total"), raw("vllm:prompt_tokens_total")
    waiting, kv = raw("vllm:num_requests_waiting"), raw("vllm:kv_cache_usage_perc")
    buckets = raw("vllm:time_to_first_token_seconds_bucket")
    count = int((fleet.end - fleet.begin - RULE_OFFSET) // SCRAPE) + 1
    for t in (fleet.begin + RULE_OFFSET + SCRAPE * i for i in range(count)):
        for name, found in ((GENERATION_RATE, generation), (PROMPT_RATE, prompt)):
            value = summed_rates((p for _, p in found), t, RULE_WINDOW)
            if value is not None:
                samples.add(name, labels, t, value)
        for le, value in bucket_rates(buckets, t, RULE_WINDOW).items():
            bound = "+Inf" if le == math.inf else repr(le)
            samples.add(TTFT_BUCKET_RATE, {**labels, "le": bound}, t, value)
        for name, found, join in ((WAITING_SUM, waiting, sum), (KV_CACHE_MAX, kv, max)):
            values = [v for _, p in found if (v := instant(p, t)) is not None]
            if values:
                samples.add(name, labels, t, join(values))


def drop_raw_vllm(fleet: Fleet, server: Server) -> None:
    """Drop the server's ``vllm:*`` series, as a relabelling after recording would."""
    key = {"namespace": server.namespace, "inferenceservice": server.name, "region": server.region}
    for name, labels in list(fleet.samples.series):
        as_dict = dict(labels)
        if name.startswith("vllm:") and all(as_dict.get(k) == v for k, v in key.items()):
            del fleet.samples.series[(name, labels)]


# --- the server ------------------------------------------------------------------------------


@dataclass
class PrometheusServer:
    """``prometheus`` on a free 127.0.0.1 port over a data directory filled beforehand."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def backfill(self, samples: Samples, *, name: str = "") -> None:
        _, promtool = binaries()
        source = self.data_dir.parent / f"{self.data_dir.name}{name}.om"
        source.write_text(samples.openmetrics())
        self.data_dir.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [
                promtool,
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                str(source),
                str(self.data_dir),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=scaled(300),
        )
        assert result.returncode == 0, f"promtool failed:\n{result.stderr[-3000:]}"

    def record(self, rules: Path, start: float, end: float, *, timeout: float = 60) -> None:
        """Evaluate the recording ``rules`` over the data from ``start`` to ``end``, and keep them.

        Each rule's expression is evaluated by this Prometheus at every step of its group's
        interval from ``start`` (a range query: the same evaluation as a rule's), and the
        results are imported under the rule's name, as ``promtool tsdb create-blocks-from
        rules`` does, except that the evaluation instants are ``start + k * interval`` rather
        than shifted by a hash of the group (so they fall on the minutes queries ask about).
        Prometheus is restarted over the new blocks. Rules that read other recorded rules
        are evaluated in a later round, once those are imported (as a rule group's later rules
        see its earlier ones at the same moment).
        """
        import yaml

        groups = yaml.safe_load(rules.read_text())["groups"]
        pending = [
            (parse_duration(group.get("interval", "60s"), what="rule interval"), rule)
            for group in groups
            for rule in group["rules"]
            if "record" in rule
        ]
        for round_ in range(len(pending)):
            waiting = {rule["record"] for _, rule in pending}
            ready = [(step, rule) for step, rule in pending
                     if not any(name in rule["expr"] for name in waiting)]  # fmt: skip
            assert ready, f"recording rules that read each other: {sorted(waiting)}"
            recorded = Samples()
            for step, rule in ready:
                self._evaluate(rule, start, end, step, recorded)
            self.stop()
            self.backfill(recorded, name=f"rules-{round_}")
            self.start(timeout=timeout)
            pending = [item for item in pending if item not in ready]
            if not pending:
                return

    def _evaluate(
        self, rule: dict[str, Any], start: float, end: float, step: float, into: Samples
    ) -> None:
        """One recording rule over ``start``..``end`` at ``step``, added to ``into``."""
        import httpx

        form = {"query": rule["expr"], "start": f"{start:.3f}", "end": f"{end:.3f}",
                "step": f"{step:g}"}  # fmt: skip
        answer = httpx.post(f"{self.url}/api/v1/query_range", data=form, timeout=scaled(300))
        assert answer.status_code == 200, answer.text[:2000]
        for series in answer.json()["data"]["result"]:
            labels = {k: v for k, v in series["metric"].items() if k != "__name__"}
            labels.update(rule.get("labels", {}))
            for t, value in series["values"]:
                into.add(rule["record"], labels, float(t), float(value))

    def start(self, *, timeout: float = 60) -> PrometheusServer:
        prometheus, _ = binaries()
        config = self.data_dir.parent / f"{self.data_dir.name}.yml"
        config.write_text("global:\n  scrape_interval: 30s\n")  # no scrapes: only the backfill
        self.process = start_process(
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.data_dir}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=30d",
                "--log.level=warn",
            ],
            log=self.data_dir.parent / f"prometheus-{self.port}.log",
            env={},
        )
        wait_http(self.process, f"{self.url}/-/ready", timeout=timeout, what="Prometheus")
        return self

    def stop(self) -> None:
        if self.process:
            self.process.stop()
            self.process = None

    def query_count(self, handler: str = "/api/v1/query_range") -> float:
        """How many requests Prometheus has answered on ``handler`` (its own metric)."""
        import httpx

        text = httpx.get(f"{self.url}/metrics", timeout=scaled(5)).text
        prefix = f'prometheus_http_requests_total{{code="200",handler="{handler}"}}'
        errors = f'prometheus_http_requests_total{{code="400",handler="{handler}"}}'
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith((prefix, errors))
        )


HUB_RULES = (
    Path(__file__).resolve().parents[2]
    / "blueprints/platform-hub/template/deploy/monitoring/prometheusrule.yaml.jinja"
)


def hub_rules_file(path: Path) -> Path:
    """platform-hub's recording rules as a Prometheus rule file at ``path``.

    The template needs no answers, so Jinja renders it alone (as Copier would).
    """
    import jinja2
    import yaml

    rendered = jinja2.Environment(keep_trailing_newline=True).from_string(HUB_RULES.read_text())
    rule = yaml.safe_load(rendered.render())
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    return path


@contextmanager
def prometheus_with(samples: Samples, data_dir: Path) -> Iterator[PrometheusServer]:
    server = PrometheusServer(data_dir)
    server.backfill(samples)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --- Prometheus's math, re-done ------------------------------------------------------------


def in_range(points: Points, t: float, window: float) -> Points:
    """The samples a range selector ``[window]`` sees at ``t`` (2.42: both ends included)."""
    return [(ts, v) for ts, v in points if t - window <= ts <= t]


def rate(points: Points, t: float, window: float) -> float | None:
    """``rate(x[window])`` at ``t``: Prometheus's ``extrapolatedRate`` for a counter."""
    seen = in_range(points, t, window)
    if len(seen) < 2:
        return None
    result = seen[-1][1] - seen[0][1]
    last = 0.0
    for _, value in seen:
        if value < last:
            result += last
        last = value
    to_start = seen[0][0] - (t - window)
    to_end = t - seen[-1][0]
    sampled = seen[-1][0] - seen[0][0]
    average = sampled / (len(seen) - 1)
    if result > 0 and seen[0][1] >= 0:
        to_zero = sampled * (seen[0][1] / result)
        to_start = min(to_start, to_zero)
    threshold = average * 1.1
    interval = sampled
    interval += to_start if to_start < threshold else average / 2
    interval += to_end if to_end < threshold else average / 2
    return result * (interval / sampled / window)  # one factor, as Prometheus multiplies


def instant(points: Points, t: float) -> float | None:
    """An instant selector at ``t``: the newest sample no older than the lookback."""
    seen = [v for ts, v in points if t - LOOKBACK < ts <= t]
    return seen[-1] if seen else None


def bucket_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """``histogram_quantile(q, ...)`` over cumulative bucket counts keyed by upper bound."""
    bounds = sorted(buckets)
    if not bounds or bounds[-1] != math.inf:
        return None
    counts = [buckets[b] for b in bounds]
    for i in range(1, len(counts)):  # ensureMonotonic
        counts[i] = max(counts[i], counts[i - 1])
    total = counts[-1]
    if len(bounds) < 2 or total == 0:
        return None
    rank = q * total
    b = next((i for i in range(len(bounds) - 1) if counts[i] >= rank), len(bounds) - 1)
    if b == len(bounds) - 1:
        return bounds[-2]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    start, end, count = 0.0, bounds[b], counts[b]
    if b > 0:
        start = bounds[b - 1]
        count -= counts[b - 1]
        rank -= counts[b - 1]
    return start + (end - start) * (rank / count)


def summed_rates(series: Iterable[Points], t: float, window: float) -> float | None:
    """``sum(rate(...))`` over several series; None when none has a rate at ``t``."""
    values = [r for points in series if (r := rate(points, t, window)) is not None]
    return sum(values) if values else None


def bucket_rates(
    found: Iterable[tuple[dict[str, str], Points]], t: float, window: float
) -> dict[float, float]:
    """``sum by (le) (rate(x_bucket[window]))`` at ``t``."""
    by_le: dict[float, float] = defaultdict(float)
    present = False
    for labels, points in found:
        r = rate(points, t, window)
        if r is not None:
            present = True
            by_le[math.inf if labels["le"] == "+Inf" else float(labels["le"])] += r
    return dict(by_le) if present else {}
