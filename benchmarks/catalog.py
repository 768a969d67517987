"""How fast Trellis turns a large MLflow registry into a Backstage catalog, and what it costs.

One run, against a real ``mlflow server --workers 1`` over an SQLite registry of N models x 3
versions (seeded once and cached, see ``seed.py``), measures:

* the floor: the paged HTTP reads the catalog needs, JSON-decoded, and nothing else;
* a cold build: ``RestRegistry.read()`` + ``build_document()``, and its ratio to the floor;
* ``trellis serve``: GET /catalog/entities.yaml (200 and 304) on a kept-alive connection,
  next to a bare FastAPI endpoint serving the same bytes, and the process's peak RSS;
* the naive alternative: two requests per model, timed on a subset and extrapolated;
* refreshes (``catalog_refresh.py``): Trellis CPU of one changed model against a full
  rebuild, and GET latencies while a writer adds one model per second (each one a webhook
  and a refresh), against idle, from one client and from many at once.

Usage: ``.venv/bin/python benchmarks/catalog.py [--models 10000] [--subset 1000]
[--cache-dir .cache/bench] [--repeat 3] [--profile FILE] [--clients 50]``. One JSON object
goes to stdout; progress goes to stderr. Every server listens on 127.0.0.1 and is stopped at
the end.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import platform
import pstats
import re
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO
from pathlib import Path
from typing import Any

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"
_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from catalog_refresh import (  # noqa: E402
    WEBHOOK_ENV,
    measure_incremental,
    measure_refresh_load,
    webhook_env,
)
from harness import bare_app_script, log, median, percentile, timed  # noqa: E402
from seed import cached_registry  # noqa: E402

from support.services import (  # noqa: E402
    MlflowServer,
    Process,
    TrellisServer,
    free_port,
    start_process,
    wait_http,
)
from trellis.catalog import CatalogDocument, build_catalog, render_yaml  # noqa: E402
from trellis.config import MlflowSettings, Settings  # noqa: E402
from trellis.services.catalog_refresh import build_document  # noqa: E402
from trellis.sources.mlflow import RestRegistry, to_domain  # noqa: E402
from trellis.wiring import catalog_options  # noqa: E402

MODELS_PATH = "/api/2.0/mlflow/registered-models/search"
VERSIONS_PATH = "/api/2.0/mlflow/model-versions/search"
MODEL_PAGE = 1000  # RestRegistry's defaults (and MLflow's maximum for models)
VERSION_PAGE = 10_000
ENTITIES_PATH = "/catalog/entities.yaml"
REFRESH_SECONDS = 3600  # no background refresh while measuring
GOALS = {
    "cold_build_ratio": 1.3,
    "warm_get_median_ms": 50,
    "not_modified_median_ms": 10,
    "serve_peak_rss_mb": 400,
    "one_change_cpu_seconds": 0.2,
    "refresh_get_p95_ratio": 2.0,
    "refresh_get_p99_ratio": 2.0,
}

# --------------------------------------------------------------------------- processes


@contextmanager
def running(name: str, args: list[str], log_path: Path, env: dict[str, str]) -> Iterator[Process]:
    """Start a process in its own session; always stop it; show its log tail if it fails."""
    process = start_process(args, log=log_path, env=env)
    log(f"started {name} (pid {process.popen.pid})")
    try:
        yield process
    except BaseException:
        print(f"--- {name} log ---\n{process.tail()}", file=sys.stderr)
        raise
    finally:
        process.stop()
        log(f"stopped {name}")


@contextmanager
def running_server(server: MlflowServer) -> Iterator[MlflowServer]:
    """Start ``server``; always stop it."""
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- measurements


def bare_paging(client: httpx.Client) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """The floor: the same paged GETs as ``RestRegistry``, JSON-decoded, nothing more."""
    results: list[list[dict[str, Any]]] = []
    requests = 0
    for path, key, size in (
        (MODELS_PATH, "registered_models", MODEL_PAGE),
        (VERSIONS_PATH, "model_versions", VERSION_PAGE),
    ):
        items: list[dict[str, Any]] = []
        token = None
        while True:
            params: dict[str, str | int] = {"max_results": size}
            if token:
                params["page_token"] = token
            response = client.get(path, params=params)
            requests += 1
            response.raise_for_status()
            body = response.json()
            items.extend(body.get(key, ()))
            token = body.get("next_page_token")
            if not token:
                break
        results.append(items)
    return results[0], results[1], requests


def measure_builds(url: str, settings: Settings, repeat: int) -> dict[str, Any]:
    """Bare paging and cold builds, interleaved ``repeat`` times after one warm-up of each."""
    options = catalog_options(settings)

    def client() -> httpx.Client:
        return httpx.Client(base_url=url, timeout=300)

    def bare() -> tuple[float, Any]:
        with client() as http:
            return timed(lambda: bare_paging(http))

    def cold() -> tuple[float, float, CatalogDocument]:
        with client() as http:
            registry = RestRegistry(
                http, label=url, model_page_size=MODEL_PAGE, version_page_size=VERSION_PAGE
            )
            read_s, snapshot = timed(registry.read)
            build_s, document = timed(lambda: build_document(snapshot, options))
        return read_s, build_s, document

    log("warm-up: one bare paging pass and one cold build (not counted)")
    bare()
    cold()
    bare_runs: list[float] = []
    read_runs: list[float] = []
    build_runs: list[float] = []
    cold_runs: list[float] = []
    raw: Any = None
    document: CatalogDocument | None = None
    for run in range(1, repeat + 1):
        gc.collect()
        seconds, raw = bare()
        bare_runs.append(seconds)
        gc.collect()
        read_s, build_s, document = cold()
        read_runs.append(read_s)
        build_runs.append(build_s)
        cold_runs.append(read_s + build_s)
        log(
            f"run {run}/{repeat}: bare paging {seconds:.2f} s; cold build "
            f"{read_s + build_s:.2f} s (read {read_s:.2f} + build {build_s:.2f})"
        )
    assert document is not None
    models, versions, requests = raw

    # Where the cold build's client-side time goes, on the floor's own JSON.
    parts: dict[str, list[float]] = {
        "to_domain": [],
        "build_catalog": [],
        "render_yaml": [],
        "render_json_and_etags": [],
    }
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        snapshot = to_domain(models, versions, registry=url)
        mapped = time.perf_counter()
        catalog = build_catalog(snapshot, options)
        built = time.perf_counter()
        render_yaml(catalog.entities)
        rendered = time.perf_counter()
        CatalogDocument.build(catalog, taken_at=snapshot.taken_at, model_count=len(snapshot.models))
        both = time.perf_counter()
        parts["to_domain"].append(mapped - started)
        parts["build_catalog"].append(built - mapped)
        parts["render_yaml"].append(rendered - built)
        # CatalogDocument.build renders the YAML again, then the JSON and both ETags.
        parts["render_json_and_etags"].append(max(0.0, (both - rendered) - (rendered - built)))

    bare_s = median(bare_runs)
    cold_s = median(cold_runs)
    return {
        "models_read": len(models),
        "versions_read": len(versions),
        "requests_per_read": requests,
        "bare_paging_seconds": round(bare_s, 3),
        "bare_paging_runs": [round(s, 3) for s in bare_runs],
        "cold_build_seconds": round(cold_s, 3),
        "cold_build_runs": [round(s, 3) for s in cold_runs],
        "cold_read_seconds": round(median(read_runs), 3),
        "cold_document_seconds": round(median(build_runs), 3),
        "cold_build_ratio": round(cold_s / bare_s, 3),
        "cold_build_ratio_runs": [
            round(c / b, 3) for c, b in zip(cold_runs, bare_runs, strict=True)
        ],
        "client_side_breakdown_seconds": {k: round(median(v), 3) for k, v in parts.items()},
        "_document": document,
    }


def profile_build(url: str, settings: Settings, path: Path) -> None:
    """One cold build under cProfile: stats to ``path``, the top functions to stderr."""
    options = catalog_options(settings)
    with httpx.Client(base_url=url, timeout=300) as http:
        registry = RestRegistry(http, label=url)
        profiler = cProfile.Profile()
        profiler.enable()
        build_document(registry.read(), options)
        profiler.disable()
    profiler.dump_stats(path)
    for order in ("tottime", "cumulative"):
        out = StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(25)
        print(f"--- cold build profile by {order} ---\n{out.getvalue()}", file=sys.stderr)
    log(f"profile written to {path} (open with `python -m pstats {path}`)")


def naive_loop(url: str, names: list[str]) -> tuple[float, int]:
    """Per model: GET the registered model, then search its versions by name."""
    requests = 0
    with httpx.Client(base_url=url, timeout=60) as http:
        started = time.perf_counter()
        for name in names:
            model = http.get("/api/2.0/mlflow/registered-models/get", params={"name": name})
            model.raise_for_status()
            model.json()
            versions = http.get(
                VERSIONS_PATH, params={"filter": f"name='{name}'", "max_results": 1000}
            )
            versions.raise_for_status()
            versions.json()
            requests += 2
        return time.perf_counter() - started, requests


def get_times(
    http: httpx.Client, path: str, count: int, *, status: int, headers: dict[str, str] | None = None
) -> list[float]:
    """Milliseconds per GET (body read) on one kept-alive connection."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        response = http.get(path, headers=headers)
        elapsed = time.perf_counter() - started
        if response.status_code != status:
            raise AssertionError(f"GET {path}: {response.status_code}, expected {status}")
        times.append(elapsed * 1000)
    return times


def peak_rss_mb(pid: int) -> tuple[float, float]:
    """(VmHWM, VmRSS) of ``pid`` in MiB, read from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()

    def mib(key: str) -> float:
        amount, unit = fields[key].split()
        assert unit == "kB"
        return int(amount) / 1024

    return mib("VmHWM"), mib("VmRSS")


def measure_serve(
    url: str, work: Path, gets: int, not_modified: int, load: dict[str, Any]
) -> dict[str, Any]:
    """``trellis serve`` against the MLflow server: readiness, GET latencies, peak RSS.

    Then GETs during refreshes (``load`` holds ``measure_refresh_load``'s sizes): the serve
    takes MLflow's webhooks, so each model the writer adds is a refresh.
    """
    secret = "bench-" + secrets.token_hex(16)
    env = {
        "TRELLIS_MLFLOW__TRACKING_URI": url,
        "TRELLIS_CATALOG__REFRESH_INTERVAL_SECONDS": str(REFRESH_SECONDS),
        "TRELLIS_LOG_LEVEL": "warning",
        **webhook_env(secret),
    }
    (work / "trellis-state").mkdir()
    server = TrellisServer(state_dir=work / "trellis-state", env=env, port=free_port())
    started = time.perf_counter()
    server.start(timeout=300)
    try:
        ready_s = time.perf_counter() - started
        log(f"trellis serve ready (pid {server.process.popen.pid})")
        base = server.url
        pid = server.process.popen.pid
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if b"trellis" not in cmdline or not Path(cmdline[0].decode()).name.startswith("python"):
            raise AssertionError(f"pid {pid} is not the trellis python process: {cmdline!r}")
        with httpx.Client(base_url=base, timeout=60) as http:
            health = http.get("/readyz").json()
            log(f"trellis ready in {ready_s:.1f} s: {health['snapshot']}")
            first = http.get(ENTITIES_PATH)
            first.raise_for_status()
            body, etag = first.content, first.headers["etag"]
            get_times(http, ENTITIES_PATH, 5, status=200)  # warm-up
            log(f"{gets} GETs of {ENTITIES_PATH} ({len(body):,} bytes)")
            warm = get_times(http, ENTITIES_PATH, gets, status=200)
            log(f"{not_modified} GETs with If-None-Match (expect 304)")
            cached = get_times(
                http, ENTITIES_PATH, not_modified, status=304, headers={"If-None-Match": etag}
            )
        peak, current = peak_rss_mb(pid)
        refresh_load = measure_refresh_load(url, base, pid, secret, **load)
        load_peak, _ = peak_rss_mb(pid)
        with httpx.Client(base_url=base, timeout=60) as http:
            after = http.get("/readyz").json()["snapshot"]
    finally:
        server.stop()
    (work / "entities.yaml").write_bytes(body)
    return {
        "serve_ready_seconds": round(ready_s, 2),
        "entities": health["snapshot"]["entities"],
        "yaml_documents": len(re.findall(rb"^---$", body, flags=re.MULTILINE)),
        "yaml_bytes": len(body),
        "etag": etag,
        "warm_get_median_ms": round(median(warm), 2),
        "warm_get_p95_ms": round(percentile(warm, 0.95), 2),
        "warm_gets": gets,
        "not_modified_median_ms": round(median(cached), 2),
        "not_modified_p95_ms": round(percentile(cached, 0.95), 2),
        "not_modified_gets": not_modified,
        "serve_peak_rss_mb": round(peak, 1),
        "serve_rss_after_gets_mb": round(current, 1),
        "serve_problems": health["snapshot"]["problems"],
        "refresh_load": {
            **refresh_load,
            "models_after_writes": after["models"],
            "serve_peak_rss_after_load_mb": round(load_peak, 1),
        },
    }


def measure_bare_fastapi(work: Path, gets: int) -> dict[str, Any]:
    """A bare FastAPI app (uvicorn, one worker) serving the same bytes: the GET floor."""
    port = free_port()
    body_path = work / "entities.yaml"
    script = work / "bare_app.py"
    script.write_text(bare_app_script("get", "application/yaml"))
    args = [sys.executable, str(script), str(body_path), str(port)]
    with running("bare FastAPI app", args, work / "bare.log", {}) as process:
        base = f"http://127.0.0.1:{port}"
        wait_http(process, f"{base}/healthz", timeout=60, what="the bare FastAPI app")
        result = {}
        with httpx.Client(base_url=base, timeout=60) as http:
            for route, key in (("/async", "bare_fastapi"), ("/sync", "bare_fastapi_sync")):
                first = http.get(route)
                assert len(first.content) == body_path.stat().st_size
                get_times(http, route, 5, status=200)
                times = get_times(http, route, gets, status=200)
                result[f"{key}_get_median_ms"] = round(median(times), 2)
                result[f"{key}_get_p95_ms"] = round(percentile(times, 0.95), 2)
    return result


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    """Seed (or reuse) the registry, run every measurement, print one JSON object."""
    parser = argparse.ArgumentParser(
        description="Benchmark Trellis's catalog over a large MLflow registry."
    )
    parser.add_argument("--models", type=int, default=10_000, help="registered models (x3)")
    parser.add_argument("--subset", type=int, default=1000, help="models for the naive loop")
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache/bench"))
    parser.add_argument("--repeat", type=int, default=3, help="runs of each build measurement")
    parser.add_argument("--gets", type=int, default=50, help="timed 200 GETs")
    parser.add_argument("--not-modified-gets", type=int, default=200, help="timed 304 GETs")
    parser.add_argument("--profile", type=Path, help="also profile one cold build into FILE")
    parser.add_argument("--changes", type=int, default=10, help="single-model changes timed")
    parser.add_argument("--clients", type=int, default=50, help="concurrent GET clients")
    parser.add_argument("--concurrent-gets", type=int, default=3, help="GETs per client")
    parser.add_argument("--load-gets", type=int, default=150, help="single-client GETs")
    parser.add_argument("--write-period", type=float, default=1.0, help="seconds per write")
    parser.add_argument("--rounds", type=int, default=3, help="turns of idle/refreshing GETs")
    args = parser.parse_args(argv)
    if args.models < 1 or args.repeat < 1 or args.subset < 1:
        parser.error("--models, --subset and --repeat must be positive")
    subset = min(args.subset, args.models)

    started_load = os.getloadavg()
    db, seed_info = cached_registry(args.cache_dir.resolve(), args.models, log=log)
    result: dict[str, Any] = {"models": args.models}
    with tempfile.TemporaryDirectory(prefix="trellis-bench-") as tmp:
        work = Path(tmp)
        shutil.copyfile(db, work / "mlflow.db")  # the cache stays as seeded
        mlflow = MlflowServer(db=work / "mlflow.db", port=free_port(), env=WEBHOOK_ENV)
        with running_server(mlflow):
            url = mlflow.url
            settings = Settings(
                state_dir=work / "unused-state", mlflow=MlflowSettings(tracking_uri=url)
            )
            builds = measure_builds(url, settings, args.repeat)
            document: CatalogDocument = builds.pop("_document")
            if args.profile:
                profile_build(url, settings, args.profile.resolve())
            log(f"naive per-model loop over {subset} models")
            names = [f"model-{i:05d}" for i in range(subset)]
            naive_s, naive_requests = naive_loop(url, names)
            log(f"naive loop: {naive_s:.1f} s for {naive_requests} requests")
            load = {
                "clients": args.clients,
                "each": args.concurrent_gets,
                "single": args.load_gets,
                "period": args.write_period,
                "rounds": args.rounds,
            }
            serve = measure_serve(url, work, args.gets, args.not_modified_gets, load)
            names = [f"model-{i:05d}" for i in range(min(args.models, 100))]
            log(f"{args.changes} single-model changes, each refreshed alone (CPU)")
            incremental = measure_incremental(
                url, work, catalog_options(settings), args.changes, names
            )
        bare_api = measure_bare_fastapi(work, args.gets)

    if serve["etag"] != document.yaml_etag:
        log("note: the served YAML differs from the in-process build's YAML")
    extrapolated = naive_s * args.models / subset
    result.update(
        {
            "versions": builds.pop("versions_read"),
            "entities": serve["entities"],
            "yaml_bytes": serve["yaml_bytes"],
            "seed": {
                "cached": seed_info["cached"],
                "seconds": seed_info["seed_seconds"],
                "method": seed_info["method"],
                "db_bytes": db.stat().st_size,
            },
            "repeat": args.repeat,
            **builds,
            **{k: v for k, v in serve.items() if k not in {"entities", "yaml_bytes", "etag"}},
            "incremental": incremental,
            "one_change_cpu_seconds": incremental["one_change_cpu_seconds"],
            "refresh_get_p95_ratio": serve["refresh_load"]["refresh_get_p95_ratio"],
            "refresh_get_p99_ratio": serve["refresh_load"]["refresh_get_p99_ratio"],
            "served_yaml_matches_in_process_build": serve["etag"] == document.yaml_etag,
            **bare_api,
            "naive_subset": subset,
            "naive_requests": naive_requests,
            "naive_per_model_loop_seconds": round(naive_s, 2),
            "extrapolated_naive_full_seconds": round(extrapolated, 1),
            "naive_over_cold_build": round(extrapolated / builds["cold_build_seconds"], 1),
            "goals": GOALS,
        }
    )
    if result.pop("models_read") != args.models:
        log(f"note: the registry holds a different number of models than {args.models}")
    result["met"] = {key: result[key] <= goal for key, goal in GOALS.items()}
    result["environment"] = {
        "load_average": [started_load, os.getloadavg()],
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "mlflow": seed_info["mlflow"],
        "platform": platform.platform(),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
