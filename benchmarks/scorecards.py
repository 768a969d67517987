"""What scoring every check for a fleet of models costs Trellis, next to the reads it cannot avoid.

One run, against a real ``mlflow server --workers 1`` over an SQLite registry of N models x 3
versions (``seed.py``, cached) and a real Prometheus holding backfilled history of N model
servers, one per model (generated with ``tests/support/prometheus.py``, imported with
``promtool``, cached as a TSDB data directory), measures:

* the floor: ``RestRegistry.read()`` of the registry (the catalog's snapshot read) plus the 8
  batched fleet queries (``plan_fleet_queries``), sent at once on 8 threads as the scorer
  sends them, JSON-decoded;
* ``Scorer.run_once()`` over that snapshot (every server as a deployment) and Prometheus:
  the first, cold run (no champion details kept, empty fact store) and later, warm runs,
  each split into its parts;
* the naive alternative on a subset: per model, one instant query per signal naming its one
  server by exact label matchers, and two registry requests; extrapolated to the fleet;
* ``trellis serve``: ``POST /api/tech-insights/checks/run/default/resource/<model>`` answered
  from kept results, next to a bare FastAPI endpoint returning a body of the same size.

Usage: ``.venv/bin/python benchmarks/scorecards.py [--models 10000] [--subset 500]
[--repeat 3] [--posts 300] [--history-minutes 15] [--cache-dir .cache/bench]
[--profile FILE]``. One JSON object goes to stdout; progress goes to stderr. Every server
listens on 127.0.0.1 and is stopped at the end.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import math
import os
import platform
import pstats
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"
_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from harness import bare_app_script, log, median, percentile, timed  # noqa: E402
from seed import cached_registry, fleet_specs  # noqa: E402

import trellis.services.scoring.last_run as last_run_module  # noqa: E402
import trellis.services.scoring.pipeline as pipeline_module  # noqa: E402
from support.observability import deployment  # noqa: E402
from support.prometheus import SCRAPE, Fleet, PrometheusServer, Server, binaries  # noqa: E402
from support.services import (  # noqa: E402
    Process,
    TrellisServer,
    free_port,
    mlflow_server,
    start_process,
    wait_http,
)
from support.walked_checks import walked_run_checks  # noqa: E402
from trellis.config import (  # noqa: E402
    MlflowSettings,
    PrometheusSettings,
    ScorecardSettings,
    Settings,
)
from trellis.model import Deployment, ModelTags, Runtime, Snapshot  # noqa: E402
from trellis.observability.fleet import fleet_rows, plan_fleet_queries  # noqa: E402
from trellis.observability.queries import (  # noqa: E402
    BY_SERVER,
    DCGM_GPU_UTIL,
    GPU_SIGNALS,
    HISTOGRAMS,
    PERCENTILES,
    RUNTIME_SIGNALS,
    SUMMARIES,
    UP,
    _gpu,
    _over,
    _Servers,
    server_key,
)
from trellis.scorecards.scoring import (  # noqa: E402
    CheckOutcome,
    compile_checks,
    run_checks,
)
from trellis.services.catalog_refresh import build_document  # noqa: E402
from trellis.services.scoring.pipeline import OneRead  # noqa: E402
from trellis.services.scoring.scorer import Scorer  # noqa: E402
from trellis.services.scoring.state import RunReport  # noqa: E402
from trellis.sources.fact_store import FactStore  # noqa: E402
from trellis.sources.mlflow import RestRegistry  # noqa: E402
from trellis.sources.prometheus import to_samples  # noqa: E402
from trellis.wiring import (  # noqa: E402
    build_prometheus,
    build_scaffolder,
    catalog_options,
    default_scorecards,
    scoring_options,
)

#: Bump when the generated fleet's shape changes, so cached Prometheus data is made again.
PROM_LAYOUT = 1
REGIONS = ("eu-west-1", "us-east-1")
NAMESPACES = 20
#: Runtime of server i: ``_RUNTIMES[i % 10]`` (80 % MLServer, 10 % Triton, 10 % vLLM).
_RUNTIMES = (Runtime.MLSERVER,) * 8 + (Runtime.TRITON, Runtime.VLLM)
SERVING_WINDOW_SECONDS = 300
#: The scorer is asked this long before the end of the data (rates see 10 scrapes).
EVALUATE_BEFORE_END_SECONDS = 60
_BLOCK_SECONDS = 7200  # promtool cuts blocks on 2 h boundaries; keep the data inside one
_CHUNK_SERVERS = 250
WORKERS = 8  # the scorer's pool: its 8 fleet queries go at once
#: The benchmark's Prometheus timeout: at 10,000 servers on 2 cores the latency queries take
#: about as long as Trellis's default (10 s), and a timed-out query makes every serving fact
#: unknown. ``slowest_fleet_query_s`` shows how close the default is.
PROMETHEUS_TIMEOUT_SECONDS = 60.0
DEFAULT_PROMETHEUS_TIMEOUT = PrometheusSettings.model_fields["timeout_seconds"].default
MODELS_PATH = "/api/2.0/mlflow/registered-models/get"
VERSIONS_PATH = "/api/2.0/mlflow/model-versions/search"
QUERY_PATH = "/api/v1/query"
TOKEN = "bench-token-" + "x" * 24
GOALS = {
    "evaluate_plus_read_over_floor": 1.2,
    "cold_evaluate_plus_read_over_floor": 1.5,
    "post_median_ms": 20,
    "serve_peak_rss_mb": 400,
}


def r3(value: float) -> float:
    """Rounded for the JSON."""
    return round(value, 3)


# --------------------------------------------------------------------------- the fleet's data


def fleet_servers(count: int) -> list[Server]:
    """One server per registered model, named as the model (so ``deployment()`` links it)."""
    return [
        Server(
            _RUNTIMES[i % len(_RUNTIMES)],
            f"team-{i % NAMESPACES:02d}",
            spec.name,
            REGIONS[i % len(REGIONS)],
            (f"{spec.name}-predictor-0",),
            seed=i,
        )
        for i, spec in enumerate(fleet_specs(count))
    ]


def data_window(history: float, now: float) -> tuple[float, float]:
    """``(begin, end)`` of the history: ending a minute ago, inside one 2 h TSDB block."""
    end = math.floor(now / 60) * 60 - 60
    if math.floor((end - history) / _BLOCK_SECONDS) != math.floor(end / _BLOCK_SECONDS):
        end = math.floor(end / _BLOCK_SECONDS) * _BLOCK_SECONDS - 60
    return end - history, end


def _openmetrics_chunk(task: tuple[float, float, list[Server]]) -> tuple[bytes, int, int]:
    """OpenMetrics lines (no ``# EOF``) of some servers; with their series and samples."""
    begin, end, servers = task
    history = Fleet(begin=begin, end=end)
    for server in servers:
        history.add(server)
    text = history.samples.openmetrics()
    samples = sum(len(points) for points in history.samples.series.values())
    return text.removesuffix("# EOF\n").encode(), len(history.samples.series), samples


def _backfill(servers: list[Server], begin: float, end: float, data: Path) -> dict[str, Any]:
    """Write the servers' history as OpenMetrics (chunks made on every core), then promtool."""
    _, promtool = binaries()
    source = data.parent / f"{data.name}.om"
    tasks = [
        (begin, end, servers[i : i + _CHUNK_SERVERS])
        for i in range(0, len(servers), _CHUNK_SERVERS)
    ]
    series = samples = 0
    started = time.perf_counter()
    with source.open("wb") as out, ProcessPoolExecutor(os.cpu_count() or 1) as pool:
        for done, (text, n_series, n_samples) in enumerate(pool.map(_openmetrics_chunk, tasks)):
            out.write(text)
            series += n_series
            samples += n_samples
            if (done + 1) % 8 == 0 or done + 1 == len(tasks):
                log(f"  generated {min(len(servers), (done + 1) * _CHUNK_SERVERS)} servers")
        out.write(b"# EOF\n")
    generate_s = time.perf_counter() - started
    size = source.stat().st_size
    log(
        f"generated {series:,} series, {samples:,} samples ({size / 1e9:.2f} GB) in "
        f"{generate_s:.0f} s; promtool create-blocks-from openmetrics"
    )
    started = time.perf_counter()
    try:
        result = subprocess.run(
            [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
            capture_output=True,
            text=True,
            check=False,
            timeout=3600,
        )
    finally:
        source.unlink(missing_ok=True)
    if result.returncode != 0:
        raise AssertionError(f"promtool failed:\n{result.stderr[-3000:]}")
    backfill_s = time.perf_counter() - started
    log(f"promtool took {backfill_s:.0f} s")
    return {
        "series": series,
        "samples": samples,
        "openmetrics_bytes": size,
        "generate_seconds": round(generate_s, 1),
        "backfill_seconds": round(backfill_s, 1),
    }


def cached_prometheus(
    cache_dir: Path, count: int, history: int
) -> tuple[Path, dict[str, Any], list[Server]]:
    """The cached TSDB data directory of ``count`` servers' history, made now when missing."""
    servers = fleet_servers(count)
    key = f"prometheus-{count}-{history}s"
    data, info_path = cache_dir / key, cache_dir / f"{key}.json"
    if data.is_dir() and info_path.exists():
        info = json.loads(info_path.read_text())
        if info.get("layout") == PROM_LAYOUT:
            log(
                f"reusing {data} (made in {info['generate_seconds'] + info['backfill_seconds']:.0f}"
                " s)"
            )
            return data, {**info, "cached": True}, servers
        log(f"{data} has an old layout; making it again")
    cache_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(data, ignore_errors=True)
    begin, end = data_window(history, time.time())
    log(f"backfilling {history // 60} min of history for {count} servers into {data}")
    # Made under a temporary name and renamed, so an interrupted run leaves no half cache.
    tmp = Path(tempfile.mkdtemp(dir=cache_dir, prefix=f".{key}-"))
    try:
        made = _backfill(servers, begin, end, tmp / "data")
        (tmp / "data").replace(data)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    info = {
        "layout": PROM_LAYOUT,
        "servers": count,
        "history_seconds": history,
        "begin": begin,
        "end": end,
        **made,
        "block_bytes": sum(f.stat().st_size for f in data.rglob("*") if f.is_file()),
    }
    info_path.write_text(json.dumps(info, indent=2) + "\n")
    return data, {**info, "cached": False}, servers


@contextmanager
def prometheus_over(cached: Path, work: Path) -> Iterator[PrometheusServer]:
    """Prometheus over a copy of the cached data (it writes to its data directory)."""
    data = work / "prometheus"
    shutil.copytree(cached, data)
    server = PrometheusServer(data)
    started = time.perf_counter()
    server.start(timeout=300)
    log(f"Prometheus ready in {time.perf_counter() - started:.1f} s")
    try:
        yield server
    finally:
        server.stop()


class PinnedPrometheus(ThreadingHTTPServer):
    """A relay to Prometheus that moves every instant query to one moment of the history.

    ``trellis serve`` asks at the wall clock's now; the cached history ends earlier. Only the
    ``time`` of ``/api/v1/query`` changes; everything else passes through.
    """

    daemon_threads = True

    def __init__(self, upstream: str, at: float) -> None:
        """Listen on a free 127.0.0.1 port; relay to ``upstream``."""
        super().__init__(("127.0.0.1", free_port()), _PinnedHandler)
        self.client = httpx.Client(base_url=upstream, timeout=300)
        self.at = f"{at:.3f}"
        self.pinned = 0
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Where Trellis should find Prometheus."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> PinnedPrometheus:
        """Start relaying."""
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop relaying."""
        self.shutdown()
        self.server_close()
        self.client.close()


class _PinnedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: PinnedPrometheus

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True)
        if self.path.split("?", 1)[0] == QUERY_PATH:
            form = [(k, self.server.at if k == "time" else v) for k, v in form]
            self.server.pinned += 1
        body = urlencode(form)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        self._relay(self.server.client.post(self.path, content=body, headers=headers))

    def do_GET(self) -> None:
        self._relay(self.server.client.get(self.path))

    def _relay(self, response: httpx.Response) -> None:
        body = response.content
        self.send_response(response.status_code)
        self.send_header("Content-Type", response.headers.get("content-type", "application/json"))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


# --------------------------------------------------------------------------- the floor


def registry_read(url: str) -> Snapshot:
    """``RestRegistry.read()`` on a new client, as the catalog's refresh reads."""
    with httpx.Client(base_url=url, timeout=300) as http:
        return RestRegistry(http, label=url).read()


def batched_queries(
    http: httpx.Client, queries: Sequence[Any], at: float, timeout: float
) -> tuple[int, dict[str, float]]:
    """The scorer's fleet queries, all at once on 8 threads, JSON-decoded.

    Returns the rows answered and each query's own seconds (they share the CPU).
    """

    def ask(query: Any) -> tuple[int, float]:
        form = {"query": query.promql, "time": f"{at:.3f}", "timeout": f"{timeout:g}s"}
        started = time.perf_counter()
        response = http.post(QUERY_PATH, data=form)
        response.raise_for_status()
        rows = len(response.json()["data"]["result"])
        return rows, time.perf_counter() - started

    with ThreadPoolExecutor(WORKERS) as pool:
        answers = list(pool.map(ask, queries))
    seconds = {q.fact: s for q, (_, s) in zip(queries, answers, strict=True)}
    return sum(rows for rows, _ in answers), seconds


# --------------------------------------------------------------------------- the scorer


class StepClock:
    """The scorer's clock: one scrape later at each run, and a second later per call in one.

    Each run sees one more scrape of every server, so its serving facts change (as runs
    minutes apart would see) and its results are written again; the last ends at ``end``,
    where the history still has data.
    """

    def __init__(self, end: datetime, runs: int) -> None:
        """``runs`` runs, the last of them at ``end``."""
        self._run = end - timedelta(seconds=SCRAPE * runs)
        self._now = self._run
        self._lock = threading.Lock()

    def next_run(self) -> None:
        """Move to the next run's moment."""
        with self._lock:
            self._run += timedelta(seconds=SCRAPE)
            self._now = self._run

    def __call__(self) -> datetime:
        """One second after the last answer."""
        with self._lock:
            self._now += timedelta(seconds=1)
            return self._now


class Spans:
    """Wall time of the parts of a run, from wrappers around the scorer's steps."""

    def __init__(self) -> None:
        """No spans yet."""
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def wrap(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """``function``, adding each call's duration to ``name``."""

        def timed_call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                with self._lock:
                    self.seconds[name] += time.perf_counter() - started
                    self.calls[name] += 1

        return timed_call

    def take(self) -> dict[str, float]:
        """The spans since the last ``take``, emptied."""
        with self._lock:
            taken = dict(self.seconds)
            self.seconds.clear()
            self.calls.clear()
        return taken

    def count_gc(self) -> None:
        """Add the garbage collector's pauses to ``gc`` (they happen inside the other spans)."""
        started: list[float] = []

        def on_gc(phase: str, info: Mapping[str, int]) -> None:
            if phase == "start":
                started.append(time.perf_counter())
            elif started:
                with self._lock:
                    self.seconds["gc"] += time.perf_counter() - started.pop()

        gc.callbacks.append(on_gc)


class Capture:
    """The entities and facts ``run_checks`` is given while ``on``, to time them again."""

    def __init__(self) -> None:
        """Capture nothing until switched on."""
        self.on = False
        self.calls: list[tuple[Mapping[str, Any], Mapping[str, Mapping[str, object]]]] = []

    def wrap(self, run_checks: Callable[..., Any]) -> Callable[..., Any]:
        """``run_checks``, keeping its entity and facts while ``on``."""

        def captured(checks: Any, entity: Any, facts: Any, **options: Any) -> Any:
            if self.on:
                self.calls.append((entity, facts))
            return run_checks(checks, entity, facts, **options)

        return captured


def run_alone(scorer: Scorer, spans: Spans) -> RunReport:
    """``scorer.run_once()``, its spans alone: not the reads or collections before it."""
    spans.take()
    return scorer.run_once()


def check_evaluation(scorer: Scorer, capture: Capture) -> dict[str, Any]:
    """A warm run's check evaluation again, compiled and walked; both must agree."""
    scorecards = scorer.pipeline.definitions.scorecards()  # those the runs used, no read
    calls = capture.calls
    gc.collect()

    def compiled_run() -> list[list[CheckOutcome]]:
        checks = compile_checks(scorecards)  # once per run, as the pipeline does
        return [run_checks(checks, entity, facts) for entity, facts in calls]

    compiled_s, compiled = timed(compiled_run)
    gc.collect()
    walked_s, walked = timed(lambda: [walked_run_checks(scorecards, e, f) for e, f in calls])
    if compiled != walked:
        raise AssertionError("compiled checks disagree with the tree walk")
    return {
        "check_entities": len(calls),
        "check_outcomes": sum(len(outcomes) for outcomes in walked),
        "checks_compiled_s": r3(compiled_s),
        "checks_walked_s": r3(walked_s),
        "checks_walked_over_compiled": round(walked_s / compiled_s, 2),
    }


def instrument(scorer: Scorer, spans: Spans, capture: Capture) -> None:
    """Time the pipeline's steps (instance attributes and the module's functions it calls)."""
    pipeline = scorer.pipeline
    definitions = pipeline.definitions
    definitions.reload = spans.wrap("definitions", definitions.reload)  # type: ignore[method-assign]
    pipeline._read_sources = spans.wrap("read_sources", pipeline._read_sources)  # type: ignore[method-assign]
    pipeline._ask_prometheus = spans.wrap("prometheus", pipeline._ask_prometheus)  # type: ignore[method-assign]
    store = scorer.queries.store
    store.write = spans.wrap("store_write", store.write)  # type: ignore[method-assign]
    store.forget = spans.wrap("store_forget", store.forget)  # type: ignore[method-assign]
    registry = pipeline.catalog.registry
    registry.version_details = spans.wrap("champion_details", registry.version_details)  # type: ignore[method-assign]
    if pipeline.scaffolder is not None:
        pipeline.scaffolder.survey = spans.wrap("blueprint_survey", pipeline.scaffolder.survey)  # type: ignore[method-assign]
    pipeline_module.assemble = spans.wrap("facts", pipeline_module.assemble)
    last_run_module.run_checks = spans.wrap("checks", capture.wrap(last_run_module.run_checks))
    pipeline_module.tally_levels = spans.wrap("rollup", pipeline_module.tally_levels)


def breakdown(total: float, spans: Mapping[str, float]) -> dict[str, float]:
    """The run's parts; ``rest`` is what no wrapper covered (fact and result rows, the loop).

    ``read_sources`` is the wall time of the parallel reads; ``prometheus``,
    ``champion_details`` and ``blueprint_survey`` run inside it, side by side.
    ``gc_pauses`` are the garbage collector's, wherever they fell.
    """
    sequential = ("definitions", "read_sources", "facts", "checks", "store_write")
    parts = {name: spans.get(name, 0.0) for name in sequential}
    parts.update({name: spans.get(name, 0.0) for name in ("store_forget", "rollup")})
    rest = total - sum(parts.values())
    inside = {
        f"read_sources.{name}": spans.get(name, 0.0)
        for name in ("prometheus", "champion_details", "blueprint_survey")
    }
    inside["gc_pauses"] = spans.get("gc", 0.0)
    return {k: r3(v) for k, v in {**parts, "rest": rest, **inside}.items()}


def counted_registry(url: str, counts: Counter[str]) -> RestRegistry:
    """The scorer's registry, counting its requests by path."""
    client = httpx.Client(
        base_url=url,
        timeout=30,
        event_hooks={"request": [lambda request: counts.update([request.url.path])]},
    )
    return RestRegistry(client, label=url)


def build_bench_scorer(
    settings: Settings, registry: RestRegistry, snapshot: Snapshot, clock: StepClock
) -> tuple[Scorer, float]:
    """A scorer as ``build_scorer`` makes one, with the benchmark's clock; document seconds."""
    document_s, document = timed(lambda: build_document(snapshot, catalog_options(settings)))
    scorer = Scorer(
        catalog=OneRead(registry, document, snapshot),
        store=FactStore(
            settings.scorecard_database_url, history_days=settings.scorecards.history_days
        ),
        directory=settings.scorecards.directory or default_scorecards(),
        options=scoring_options(settings),
        prometheus=build_prometheus(settings),
        scaffolder=build_scaffolder(settings),
        clock=clock,
    )
    return scorer, document_s


def summary(report: RunReport) -> dict[str, Any]:
    """What a run reported."""
    return {
        "seconds": r3(report.seconds),
        "entities": report.entities,
        "outcomes": dict(report.outcomes),
        "unavailable": dict(report.unavailable),
        "facts_written": report.facts_written,
    }


def profile_run(scorer: Scorer, path: Path) -> None:
    """One more warm run under cProfile: stats to ``path``, the top functions to stderr."""
    profiler = cProfile.Profile()
    gc.collect()
    profiler.enable()
    scorer.run_once()
    profiler.disable()
    profiler.dump_stats(path)
    for order in ("tottime", "cumulative"):
        out = StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(30)
        print(f"--- warm run_once profile by {order} ---\n{out.getvalue()}", file=sys.stderr)
    log(f"profile written to {path} (open with `python -m pstats {path}`)")


def measure_scoring(
    mlflow: str,
    prometheus: str,
    settings: Settings,
    deployments: tuple[Deployment, ...],
    at: datetime,
    repeat: int,
    profile: Path | None,
) -> dict[str, Any]:
    """The floor and the scorer's runs (one cold, ``repeat`` warm), interleaved."""
    config = settings.scorecards
    queries = plan_fleet_queries(config.serving_window_seconds, config.availability_window_seconds)
    timeout = settings.prometheus.timeout_seconds
    prom = httpx.Client(base_url=prometheus, timeout=300)
    log("warm-up: one registry read and one batched Prometheus pass (not counted)")
    snapshot = replace(registry_read(mlflow), deployments=deployments)
    rows, _ = batched_queries(prom, queries, at.timestamp(), timeout)

    requests: Counter[str] = Counter()
    registry = counted_registry(mlflow, requests)
    clock = StepClock(at, repeat + 2)  # the cold run, the warm runs and a profiled one
    scorer, document_s = build_bench_scorer(settings, registry, snapshot, clock)
    log(
        f"catalog document with {len(deployments)} servers built in {document_s:.1f} s; "
        "cold scorer run"
    )
    spans = Spans()
    spans.count_gc()
    capture = Capture()
    instrument(scorer, spans, capture)
    try:
        clock.next_run()
        cold_s, cold = timed(lambda: run_alone(scorer, spans))
        cold_parts = breakdown(cold_s, spans.take())
        cold_requests = dict(requests)
        requests.clear()
        log(f"cold run: {cold_s:.1f} s, {cold.entities} entities, {dict(cold.outcomes)}")
        read_runs, prom_runs, warm_runs, parts = [], [], [], []
        warm_written: list[int] = []
        per_query: list[dict[str, float]] = []
        for run in range(1, repeat + 1):
            capture.on = run == repeat
            read_s, _ = timed(lambda: registry_read(mlflow))
            prom_s, (_, each) = timed(
                lambda: batched_queries(prom, queries, at.timestamp(), timeout)
            )
            per_query.append(each)
            clock.next_run()
            warm_s, warm = timed(lambda: run_alone(scorer, spans))
            warm_written.append(warm.facts_written)
            read_runs.append(read_s)
            prom_runs.append(prom_s)
            warm_runs.append(warm_s)
            parts.append(breakdown(warm_s, spans.take()))
            log(
                f"run {run}/{repeat}: registry read {read_s:.2f} s, batched Prometheus "
                f"{prom_s:.2f} s, warm scorer run {warm_s:.2f} s"
            )
        capture.on = False
        warm_requests = {k: v / repeat for k, v in requests.items()}
        log(f"check evaluation of {len(capture.calls)} entities again, compiled and walked")
        checks = check_evaluation(scorer, capture)
        capture.calls.clear()
        answered = fleet_rows(
            {q.fact: to_samples(_ask(prom, q.promql, at.timestamp())) for q in queries}
        )
        if profile:
            clock.next_run()
            profile_run(scorer, profile)
    finally:
        scorer.stop()
        registry.close()
        prom.close()
    read_s, prom_s, warm_s = median(read_runs), median(prom_runs), median(warm_runs)
    floor_s = read_s + prom_s
    return {
        "versions": sum(len(m.versions) for m in snapshot.models),
        "champions": sum(1 for m in snapshot.models if m.version_for_alias(ModelTags.CHAMPION)),
        "fleet_queries": len(queries),
        "fleet_query_rows": rows,
        "servers_with_rows": len(answered),
        "registry_read_s": r3(read_s),
        "registry_read_runs": [r3(s) for s in read_runs],
        "prometheus_batched_s": r3(prom_s),
        "prometheus_batched_runs": [r3(s) for s in prom_runs],
        "prometheus_batched_query_s": {
            fact: r3(median([run[fact] for run in per_query])) for fact in per_query[0]
        },
        "floor_s": r3(floor_s),
        "document_build_s": r3(document_s),
        "evaluate_cold_s": r3(cold_s),
        "evaluate_cold_breakdown_s": cold_parts,
        "evaluate_cold_report": summary(cold),
        "registry_requests_cold_run": cold_requests,
        "evaluate_s": r3(warm_s),
        "evaluate_runs": [r3(s) for s in warm_runs],
        "evaluate_runs_facts_written": warm_written,
        "evaluate_breakdown_s": {k: r3(median([p[k] for p in parts])) for k in parts[0]},
        "evaluate_warm_report": summary(warm),
        "registry_requests_per_warm_run": warm_requests,
        "evaluate_plus_read_s": r3(read_s + warm_s),
        "evaluate_plus_read_over_floor": round((read_s + warm_s) / floor_s, 3),
        "evaluate_plus_read_over_floor_runs": [
            round((r + w) / (r + p), 3)
            for r, p, w in zip(read_runs, prom_runs, warm_runs, strict=True)
        ],
        "evaluate_over_floor": round(warm_s / floor_s, 3),
        "cold_evaluate_plus_read_over_floor": round((read_s + cold_s) / floor_s, 3),
        **checks,
        "_rows": answered,
    }


def _ask(http: httpx.Client, promql: str, at: float) -> list[Any]:
    response = http.post(QUERY_PATH, data={"query": promql, "time": f"{at:.3f}"})
    response.raise_for_status()
    result: list[Any] = response.json()["data"]["result"]
    return result


# --------------------------------------------------------------------------- naive


def naive_queries(server: Deployment, serving: int, availability: int) -> dict[str, str]:
    """The fleet facts for one server, each naming it by exact label matchers.

    The same expressions as ``plan_fleet_queries`` (Trellis's own builders), built over
    ``_Servers.of([server])`` (``matcher`` for namespace, region and name) and only the
    server's runtime, instead of every server and every runtime.
    """
    one = _Servers.of([server])
    window, up_window = f"{serving}s", f"{availability}s"
    runtime = RUNTIME_SIGNALS[server.runtime]
    queries = {
        "requestRate": runtime["request_rate"](one, window)[0],
        "errorRatio": runtime["error_ratio"](one, window)[0],
    }
    for fact, signal in (
        ("latencyP50", "latency_p50"),
        ("latencyP95", "latency_p95"),
        ("latencyP99", "latency_p99"),
    ):
        q = PERCENTILES[signal]
        if server.runtime in HISTOGRAMS:
            queries[fact] = f"histogram_quantile({q!r}, {HISTOGRAMS[server.runtime](one, window)})"
        else:
            queries[fact] = SUMMARIES[server.runtime]([q], BY_SERVER)(one, window)
    queries["availability"] = f"avg by ({BY_SERVER}) ({_over('avg_over_time', UP, one, up_window)})"
    gpu = _gpu(DCGM_GPU_UTIL, one, ("avg_over_time", window))
    queries["gpuUtilization"] = f"avg by ({BY_SERVER}) ({gpu}) / 100"
    queries["gpuMemoryBytes"] = GPU_SIGNALS["gpu_memory"](one, window)[0]
    return queries


def measure_naive(
    mlflow: str,
    prometheus: str,
    servers: Sequence[Deployment],
    settings: Settings,
    at: float,
    batched: Mapping[tuple[str, str, str], Mapping[str, float]],
) -> dict[str, Any]:
    """Per model, one query per signal for its server and two registry requests, in a loop."""
    config = settings.scorecards
    plans = [
        (s, naive_queries(s, config.serving_window_seconds, config.availability_window_seconds))
        for s in servers
    ]
    prom_s = registry_s = 0.0
    mismatches = 0
    requests = 0
    with (
        httpx.Client(base_url=prometheus, timeout=60) as prom,
        httpx.Client(base_url=mlflow, timeout=60) as registry,
    ):
        for server, queries in plans:
            started = time.perf_counter()
            model = registry.get(MODELS_PATH, params={"name": server.name})
            model.raise_for_status()
            model.json()
            versions = registry.get(
                VERSIONS_PATH, params={"filter": f"name='{server.name}'", "max_results": 1000}
            )
            versions.raise_for_status()
            versions.json()
            asked = time.perf_counter()
            values = {fact: _ask(prom, promql, at) for fact, promql in queries.items()}
            prom_s += time.perf_counter() - asked
            registry_s += asked - started
            requests += 2 + len(queries)
            row = fleet_rows({f: to_samples(v) for f, v in values.items()}).get(server_key(server))
            mismatches += _differs(row or {}, batched.get(server_key(server), {}))
    return {
        "naive_requests": requests,
        "naive_subset_s": r3(prom_s + registry_s),
        "naive_subset_prometheus_s": r3(prom_s),
        "naive_subset_registry_s": r3(registry_s),
        "naive_facts_differing_from_batched": mismatches,
    }


def _differs(mine: Mapping[str, float], theirs: Mapping[str, float]) -> int:
    """How many facts of one server differ between two answers."""
    return sum(
        1
        for fact in set(mine) | set(theirs)
        if fact not in mine
        or fact not in theirs
        or not math.isclose(mine[fact], theirs[fact], rel_tol=1e-9, abs_tol=1e-12)
    )


# --------------------------------------------------------------------------- trellis serve


def wait_for_first_run(base: str, timeout: float) -> dict[str, Any]:
    """``/readyz`` once the scorer's first run has ended; its ``scorecards`` part."""
    deadline = time.monotonic() + timeout
    said = None
    with httpx.Client(base_url=base, timeout=30) as http:
        while time.monotonic() < deadline:
            health = http.get("/readyz").json()
            scorecards: dict[str, Any] = health["scorecards"]
            if scorecards.get("last_run") is not None:
                return scorecards
            if scorecards.get("last_error") not in (None, said):
                said = scorecards["last_error"]
                log(f"scorer's last error so far: {said}")
            time.sleep(1)
    raise AssertionError(f"the scorer did not finish a run in {timeout:.0f} s")


def post_times(
    http: httpx.Client, paths: Sequence[str], *, headers: Mapping[str, str] | None = None
) -> tuple[list[float], list[bytes]]:
    """Milliseconds per POST (body read) on one kept-alive connection, and the bodies."""
    times, bodies = [], []
    for path in paths:
        started = time.perf_counter()
        response = http.post(path, json={}, headers=headers)
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise AssertionError(f"POST {path}: {response.status_code} {response.text[:300]}")
        times.append(elapsed * 1000)
        bodies.append(response.content)
    return times, bodies


def peak_rss_mb(pid: int) -> float:
    """VmHWM of ``pid`` in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure_serve(
    mlflow: str,
    prometheus: str,
    settings: Settings,
    at: float,
    names: Sequence[str],
    posts: int,
    work: Path,
) -> dict[str, Any]:
    """``trellis serve``: readiness, its first scorer run, then timed POSTs of one entity."""
    config = settings.scorecards
    env = {
        "TRELLIS_MLFLOW__TRACKING_URI": mlflow,
        "TRELLIS_CATALOG__REFRESH_INTERVAL_SECONDS": "3600",
        "TRELLIS_SCORECARDS__INTERVAL_SECONDS": "86400",
        "TRELLIS_SCORECARDS__SERVING_WINDOW_SECONDS": str(config.serving_window_seconds),
        "TRELLIS_SCORECARDS__AVAILABILITY_WINDOW_SECONDS": str(config.availability_window_seconds),
        "TRELLIS_PROMETHEUS__TIMEOUT_SECONDS": f"{settings.prometheus.timeout_seconds:g}",
        "TRELLIS_API_TOKENS": TOKEN,
        "TRELLIS_LOG_LEVEL": "warning",
    }
    rng = random.Random(11)
    warmup = [rng.choice(names) for _ in range(10)]
    chosen = [rng.choice(names) for _ in range(posts)]
    route = "/api/tech-insights/checks/run/default/resource/{}"
    with PinnedPrometheus(prometheus, at) as relay:
        env["TRELLIS_PROMETHEUS__URL"] = relay.url
        (work / "trellis-state").mkdir()
        server = TrellisServer(state_dir=work / "trellis-state", env=env, port=free_port())
        started = time.perf_counter()
        server.start(timeout=900)
        try:
            ready_s = time.perf_counter() - started
            log(
                f"trellis serve ready in {ready_s:.1f} s (pid {server.process.popen.pid}); "
                "waiting for its first scorer run"
            )
            scorecards = wait_for_first_run(server.url, timeout=3600)
            first_s = time.perf_counter() - started
            run = scorecards["last_run"]
            log(
                f"first scorer run in the server: {run['seconds']:.1f} s, "
                f"{run['entities']} entities, {run['outcomes']}"
            )
            headers = {"Authorization": f"Bearer {TOKEN}"}
            with httpx.Client(base_url=server.url, timeout=60, headers=headers) as http:
                post_times(http, [route.format(n) for n in warmup])
                log(f"{posts} POSTs of one entity's checks")
                times, bodies = post_times(http, [route.format(n) for n in chosen])
            rss = peak_rss_mb(server.process.popen.pid)
        finally:
            server.stop()
        pinned = relay.pinned
    results = [len(json.loads(body)) for body in bodies]
    sizes = sorted(len(body) for body in bodies)
    typical = next(body for body in bodies if len(body) == sizes[len(sizes) // 2])
    (work / "body.json").write_bytes(typical)
    return {
        "serve_ready_s": round(ready_s, 2),
        "serve_ready_to_first_run_end_s": round(first_s, 2),
        "serve_first_run": run,
        "serve_prometheus_queries_pinned": pinned,
        "posts": posts,
        "post_median_ms": round(median(times), 2),
        "post_p95_ms": round(percentile(times, 0.95), 2),
        "post_p99_ms": round(percentile(times, 0.99), 2),
        "post_body_bytes_median": sizes[len(sizes) // 2],
        "post_results_per_entity": dict(sorted(Counter(results).items())),
        "serve_peak_rss_mb": round(rss, 1),
    }


@contextmanager
def running(name: str, args: list[str], log_path: Path) -> Iterator[Process]:
    """Start a process in its own session; always stop it; show its log tail if it fails."""
    process = start_process(args, log=log_path, env={})
    try:
        yield process
    except BaseException:
        print(f"--- {name} log ---\n{process.tail()}", file=sys.stderr)
        raise
    finally:
        process.stop()


def measure_bare_fastapi(work: Path, posts: int) -> dict[str, Any]:
    """A bare FastAPI app (uvicorn, one worker) POSTing back the same-sized JSON body."""
    port = free_port()
    script = work / "bare_app.py"
    script.write_text(bare_app_script("post", "application/json"))
    args = [sys.executable, str(script), str(work / "body.json"), str(port)]
    result: dict[str, Any] = {}
    with running("bare FastAPI app", args, work / "bare.log") as process:
        base = f"http://127.0.0.1:{port}"
        wait_http(process, f"{base}/healthz", timeout=60, what="the bare FastAPI app")
        with httpx.Client(base_url=base, timeout=60) as http:
            for route, key in (("/async", "bare_fastapi"), ("/sync", "bare_fastapi_sync")):
                post_times(http, [route] * 10)
                times, _ = post_times(http, [route] * posts)
                result[f"{key}_post_median_ms"] = round(median(times), 2)
                result[f"{key}_post_p95_ms"] = round(percentile(times, 0.95), 2)
    return result


# --------------------------------------------------------------------------- main


def notes(result: Mapping[str, Any], history: int) -> list[str]:
    """What the figures mean, in words."""
    return [
        "floor_s = registry_read_s (RestRegistry.read(): the catalog's snapshot read) + "
        "prometheus_batched_s (the 8 fleet queries at once on 8 threads, JSON-decoded).",
        "run_once() does not read the snapshot (the catalog service does, and builds the "
        "document: document_build_s, not counted anywhere), so the goal compares "
        "registry_read_s + evaluate_s with the floor (evaluate_plus_read_over_floor); "
        "evaluate_over_floor is run_once() alone. The goal is judged on warm runs.",
        "evaluate_s is the median of warm runs: champion details already kept. The cold run "
        "(evaluate_cold_s) also reads every champion's MLmodel through the tracking server "
        "(registry_requests_cold_run): the seeded versions have s3:// sources the server "
        "cannot read and no runs, so every read fails (HTTP 500). After 16 such failures in "
        "a row the rest of s3://models is not asked in that run (unknown, asked next run); "
        "each failed version is not asked again for an hour. Versions without runs cost no "
        "run search.",
        "checks_compiled_s / checks_walked_s: the last warm run's check evaluation timed "
        "again over the same entities and facts, compiled once (as runs do) and walked per "
        "entity (evaluate(), the definition); the two must give the same outcomes.",
        "Runs are timed with wrappers around the scorer's steps (evaluate_breakdown_s): "
        "read_sources is the wall time of the parallel source reads (prometheus, "
        "champion_details and blueprint_survey run inside it); checks is run_checks over "
        "every entity; rest is building fact and result rows and the loop itself.",
        f"The history is {history // 60} minutes at 30 s scrapes, one pod and one GPU per "
        "server; the scorer's clock is pinned near the end of it (one second later per call, "
        "so every run has its own timestamp), and trellis serve reaches Prometheus through a "
        "relay that moves each instant query to the same moment (serve_prometheus_queries_"
        "pinned): the cached history ends before the wall clock's now.",
        "Naive: per model in the subset, GET registered-models/get + model-versions/search, "
        "then one instant query per fact naming its one server by exact label matchers "
        "(Trellis's own expressions over that server), one after another; extrapolated "
        "linearly. naive_over_batched_ratio = naive_extrapolated_s / floor_s; "
        "naive_over_evaluate_plus_read compares it with what Trellis does.",
        f"Prometheus timeout: {result['parameters']['prometheus_timeout_seconds']:g} s for the "
        f"scorer and trellis serve; Trellis's default is {DEFAULT_PROMETHEUS_TIMEOUT:g} s, and "
        "a fleet query slower than that (slowest_fleet_query_s, measured with the 8 side by "
        "side) would leave every serving fact unknown.",
        "The served catalog has no Kubernetes source, so trellis serve scores the models' "
        "Resources only; each POST reads one entity's kept results from the SQLite store.",
    ]


def main(argv: list[str] | None = None) -> int:
    """Make (or reuse) the registry and the history, run every measurement, print JSON."""
    parser = argparse.ArgumentParser(
        description="Benchmark scoring every check for a fleet of models."
    )
    parser.add_argument("--models", type=int, default=10_000, help="models, one server each")
    parser.add_argument("--subset", type=int, default=500, help="models in the naive loop")
    parser.add_argument("--repeat", type=int, default=3, help="warm runs and floor passes")
    parser.add_argument("--posts", type=int, default=300, help="timed POSTs of one entity")
    parser.add_argument("--history-minutes", type=int, default=15, help="backfilled history")
    parser.add_argument(
        "--prometheus-timeout",
        type=float,
        default=PROMETHEUS_TIMEOUT_SECONDS,
        help="TRELLIS_PROMETHEUS__TIMEOUT_SECONDS for the scorer and trellis serve",
    )
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache/bench"))
    parser.add_argument("--profile", type=Path, help="also profile one warm run into FILE")
    args = parser.parse_args(argv)
    if min(args.models, args.subset, args.repeat, args.posts) < 1:
        parser.error("--models, --subset, --repeat and --posts must be positive")
    if args.history_minutes * 60 < SERVING_WINDOW_SECONDS + 2 * EVALUATE_BEFORE_END_SECONDS:
        parser.error("--history-minutes must cover the 5 minute serving window and more")
    subset = min(args.subset, args.models)
    history = args.history_minutes * 60
    load_before = os.getloadavg()
    cache = args.cache_dir.resolve()

    db, seed_info = cached_registry(cache, args.models, log=log)
    data, prom_info, servers = cached_prometheus(cache, args.models, history)
    deployments = tuple(deployment(s) for s in servers)
    at = datetime.fromtimestamp(prom_info["end"] - EVALUATE_BEFORE_END_SECONDS, UTC)
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="trellis-bench-") as tmp:
        work = Path(tmp)
        shutil.copyfile(db, work / "mlflow.db")  # the caches stay as made
        with mlflow_server(work / "mlflow.db") as mlflow, prometheus_over(data, work) as prom:
            prometheus = {"url": prom.url, "timeout_seconds": args.prometheus_timeout}
            (work / "state").mkdir()
            settings = Settings(
                state_dir=work / "state",
                mlflow=MlflowSettings(tracking_uri=mlflow.url),
                prometheus=PrometheusSettings(**prometheus),
                scorecards=ScorecardSettings(
                    serving_window_seconds=SERVING_WINDOW_SECONDS,
                    availability_window_seconds=history,
                ),
            )
            scoring = measure_scoring(
                mlflow.url, prom.url, settings, deployments, at, args.repeat, args.profile
            )
            batched = scoring.pop("_rows")
            picked = sorted(random.Random(7).sample(range(args.models), subset))
            log(f"naive loop over {subset} models ({len(picked) * 10} requests)")
            naive = measure_naive(
                mlflow.url,
                prom.url,
                [deployments[i] for i in picked],
                settings,
                at.timestamp(),
                batched,
            )
            log(f"naive loop: {naive['naive_subset_s']:.1f} s")
            serve = measure_serve(
                mlflow.url,
                prom.url,
                settings,
                at.timestamp(),
                [s.name for s in servers],
                args.posts,
                work,
            )
        bare = measure_bare_fastapi(work, args.posts)

    extrapolated = naive["naive_subset_s"] * args.models / subset
    result.update(
        {
            "models": args.models,
            "servers": len(servers),
            "parameters": {
                "repeat": args.repeat,
                "naive_subset": subset,
                "posts": args.posts,
                "history_seconds": history,
                "serving_window_seconds": SERVING_WINDOW_SECONDS,
                "availability_window_seconds": history,
                "prometheus_timeout_seconds": settings.prometheus.timeout_seconds,
                "evaluated_at": at.isoformat(),
                "regions": list(REGIONS),
                "namespaces": NAMESPACES,
                "runtimes": dict(Counter(s.runtime for s in servers)),
                "pods_per_server": 1,
                "gpus_per_pod": 1,
            },
            "seed": {
                "cached": seed_info["cached"],
                "seconds": seed_info["seed_seconds"],
                "method": seed_info["method"],
            },
            "prometheus_data": {
                k: prom_info[k]
                for k in (
                    "cached",
                    "series",
                    "samples",
                    "openmetrics_bytes",
                    "block_bytes",
                    "generate_seconds",
                    "backfill_seconds",
                    "history_seconds",
                )
            },
            **scoring,
            **naive,
            "slowest_fleet_query_s": max(scoring["prometheus_batched_query_s"].values()),
            "trellis_default_prometheus_timeout_s": DEFAULT_PROMETHEUS_TIMEOUT,
            "naive_extrapolated_s": round(extrapolated, 1),
            "naive_over_batched_ratio": round(extrapolated / scoring["floor_s"], 1),
            "naive_over_evaluate_plus_read": round(
                extrapolated / scoring["evaluate_plus_read_s"], 1
            ),
            **serve,
            **bare,
            "goals": GOALS,
        }
    )
    result["met"] = {key: result[key] <= goal for key, goal in GOALS.items()}
    result["machine"] = {
        "cpus": os.cpu_count(),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "python": platform.python_version(),
        "mlflow": seed_info["mlflow"],
        "platform": platform.platform(),
    }
    result["notes"] = notes(result, history)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
