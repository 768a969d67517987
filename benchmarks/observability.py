"""What observing a fleet of model servers costs Trellis, next to the floor for each step.

Part 1, the model servers: N servers (default 1,000) across 4 regions, one cluster per
region, answered by ``tests/support/kube_replay.py`` (a Kubernetes API server cannot run
here; the replay server answers the real ``kubernetes`` client over real HTTP with objects
made from the recorded fixtures: KServe InferenceServices with the Deployments KServe makes
for them, vLLM Deployments, NetworkPolicies, and unrelated Deployments the label selector
must skip). Each run is cold: a new source, so kubeconfig loading and new connections count.

* ``kubernetes_read``: ``KubernetesSource.read()``, all clusters side by side;
* the floor, ``bare_client``: the same list calls with the bare client, side by side, the
  answers JSON-decoded and nothing else;
* for reference, ``typed_client``: the same calls decoded into the client's typed models (its
  default), which the source avoids.

Part 2, one model page: a vLLM model served in 4 regions, its history backfilled into a real
Prometheus (``tests/support/prometheus.py``, ``promtool`` then ``prometheus``); the first half
of its regions also record llm-service's rules, so the page's ``recorded or raw`` queries
find both sides:

* ``served_page``: ``GET /api/observability/...`` over HTTP from the app served by uvicorn as
  ``trellis serve`` runs it, with a kept-alive client (median of ``--page-requests``): the
  page as Backstage's proxy gets it;
* ``page``: the same request in-process (FastAPI's test client, whose thread hops add a few
  ms no server pays), and the same page from ``Observer.page()`` without the HTTP layer;
* the floor, ``raw_queries``: the same PromQL sent with httpx straight to Prometheus, as many
  at once as the page sends them, answers JSON-decoded and nothing else;
* ``queries_per_page``: Prometheus requests for a model with 1 server and with 40 (equal).

Usage: ``.venv/bin/python benchmarks/observability.py [--servers 1000] [--regions 4]
[--repeat 5] [--page-requests 20] [--page-regions 4] [--many-servers 40]``. One JSON object
goes to stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from harness import log, median, timed  # noqa: E402
from kubernetes import client as k8s  # noqa: E402
from kubernetes import config as k8s_config  # noqa: E402

from support.kube_replay import FLEET_REGIONS, KubeReplay, fleet  # noqa: E402
from support.observability import deployment  # noqa: E402
from support.prometheus import (  # noqa: E402
    Fleet,
    Server,
    hub_rules_file,
    prometheus_with,
    record_vllm,
)
from trellis.annotations import REGISTERED_MODEL  # noqa: E402
from trellis.services.observability import WORKERS as PAGE_WORKERS  # noqa: E402
from trellis.sources.kube_objects import PREDICTOR_LABEL  # noqa: E402
from trellis.sources.kubernetes import PAGE_SIZE, KubernetesSource  # noqa: E402
from trellis.sources.prometheus import PrometheusSource  # noqa: E402

TIMEOUT_SECONDS = 60.0
# --------------------------------------------------------------------------- part 1: servers


def kubernetes_read(kubeconfig: Path, contexts: list[str]) -> int:
    """One cold ``KubernetesSource.read()``; the number of model servers it found."""
    source = KubernetesSource(contexts, kubeconfig=kubeconfig, timeout_seconds=TIMEOUT_SECONDS)
    try:
        results = source.read()
    finally:
        source.close()
    failed = [f"{c}: {r.error}" for c, (r, _) in results.items() if not r.ok]
    if failed:
        raise AssertionError(f"clusters failed: {failed}")
    return sum(len(found) for _, found in results.values())


def _bare_cluster(kubeconfig: Path, context: str, *, typed: bool) -> int:
    """The source's four list calls for one cluster with the bare client; objects returned."""
    api = k8s_config.new_client_from_config(
        config_file=str(kubeconfig), context=context, persist_config=False
    )
    try:
        custom, apps = k8s.CustomObjectsApi(api), k8s.AppsV1Api(api)
        networking = k8s.NetworkingV1Api(api)
        calls: list[tuple[Callable[..., Any], dict[str, Any]]] = [
            (
                lambda **kw: custom.list_cluster_custom_object(
                    "serving.kserve.io", "v1beta1", "inferenceservices", **kw
                ),
                {},
            ),
            (apps.list_deployment_for_all_namespaces, {"label_selector": REGISTERED_MODEL}),
            (apps.list_deployment_for_all_namespaces, {"label_selector": PREDICTOR_LABEL}),
            (networking.list_network_policy_for_all_namespaces, {}),
        ]
        count = 0
        for call, kwargs in calls:
            kwargs = {"limit": PAGE_SIZE, "_request_timeout": TIMEOUT_SECONDS, **kwargs}
            if typed:
                answer = call(**kwargs)
                items = answer["items"] if isinstance(answer, dict) else answer.items
            else:
                response = call(**kwargs, _preload_content=False)
                items = json.loads(response.data)["items"]
            count += len(items)
        return count
    finally:
        api.close()


def bare_client(kubeconfig: Path, contexts: list[str], *, typed: bool = False) -> int:
    """The floor: the same calls for every cluster side by side, no mapping; objects read."""
    with ThreadPoolExecutor(max_workers=len(contexts)) as pool:
        counts = pool.map(lambda c: _bare_cluster(kubeconfig, c, typed=typed), contexts)
        return sum(counts)


def measure_deployments(servers: int, regions: int, repeat: int) -> dict[str, Any]:
    """Part 1: cold ``KubernetesSource.read()`` against the bare client, interleaved."""
    names = (
        tuple(FLEET_REGIONS[:regions])
        if regions <= len(FLEET_REGIONS)
        else tuple(f"region-{i}" for i in range(regions))
    )
    clusters = fleet(servers, names)
    objects = sum(len(items) for kinds in clusters.values() for items in kinds.values())
    with (
        tempfile.TemporaryDirectory(prefix="trellis-bench-") as tmp,
        KubeReplay(clusters) as replay,
    ):
        kubeconfig = replay.write_kubeconfig(Path(tmp) / "kubeconfig")
        contexts = list(names)
        log(f"{servers} servers in {regions} clusters ({objects} objects); warm-up")
        found = kubernetes_read(kubeconfig, contexts)
        requests = len(replay.requests)  # the warm-up read's requests, all clusters
        bare_client(kubeconfig, contexts)
        if found != servers:
            raise AssertionError(f"read {found} servers, expected {servers}")
        reads: list[float] = []
        bares: list[float] = []
        typed: list[float] = []
        for run in range(1, repeat + 1):
            seconds, _ = timed(lambda: bare_client(kubeconfig, contexts))
            bares.append(seconds)
            seconds, found = timed(lambda: kubernetes_read(kubeconfig, contexts))
            reads.append(seconds)
            seconds, _ = timed(lambda: bare_client(kubeconfig, contexts, typed=True))
            typed.append(seconds)
            log(
                f"run {run}/{repeat}: read {reads[-1]:.3f} s, bare client {bares[-1]:.3f} s, "
                f"typed client {typed[-1]:.3f} s"
            )
    read_s, bare_s, typed_s = median(reads), median(bares), median(typed)
    return {
        "servers": servers,
        "clusters": regions,
        "objects_in_clusters": objects,
        "list_requests_per_read": requests,
        "kubernetes_read_seconds": round(read_s, 4),
        "kubernetes_read_runs": [round(s, 4) for s in reads],
        "bare_client_seconds": round(bare_s, 4),
        "bare_client_runs": [round(s, 4) for s in bares],
        "kubernetes_read_over_bare_client": round(read_s / bare_s, 2),
        "typed_client_seconds": round(typed_s, 4),
        "typed_client_over_bare_client": round(typed_s / bare_s, 2),
    }


# --------------------------------------------------------------------------- part 2: a page

PAGE_REGIONS = ("eu-west-1", "us-east-1", "ap-south-1", "sa-east-1")


def _page_fleet(regions: int, many: int, end: float) -> tuple[Fleet, list[Server], list[Server]]:
    """A vLLM model in ``regions`` regions (half recording the rules), another with ``many``."""
    names = [PAGE_REGIONS[i] if i < len(PAGE_REGIONS) else f"region-{i}" for i in range(regions)]
    history = Fleet(begin=end - 70 * 60, end=end)
    model = [
        history.add(Server("vllm", "llm", "support-llm", region, (f"llm-{i}-0", f"llm-{i}-1")))
        for i, region in enumerate(names)
    ]
    for server in model[: regions // 2]:
        record_vllm(history, server, {})
    crowd = [
        history.add(Server("vllm", "crowd", f"crowd-{i}", names[i % len(names)], (f"c-{i}",)))
        for i in range(many)
    ]
    return history, model, crowd


def _counted(url: str) -> tuple[httpx.Client, list[str]]:
    sent: list[str] = []
    client = httpx.Client(
        base_url=url, timeout=30, event_hooks={"request": [lambda r: sent.append(r.url.path)]}
    )
    return client, sent


def _raw(client: httpx.Client, queries: list[str], window: Any) -> int:
    """The floor: the page's PromQL straight to Prometheus, decoded; rows returned."""

    def ask(promql: str) -> int:
        form = {
            "query": promql,
            "start": f"{window.start.timestamp():.3f}",
            "end": f"{window.end.timestamp():.3f}",
            "step": str(window.step_seconds),
        }
        response = client.post("/api/v1/query_range", data=form)
        response.raise_for_status()
        return len(response.json()["data"]["result"])

    with ThreadPoolExecutor(PAGE_WORKERS) as pool:  # as many at once as the observer sends
        return sum(pool.map(ask, queries))


def _wall_and_cpu(action: Callable[[], Any]) -> tuple[float, float]:
    """Milliseconds of wall time and of this process's CPU time (every thread) ``action`` took.

    After a garbage collection, as ``timed`` does, and outside it.
    """
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return 1000 * (time.perf_counter() - wall), 1000 * (time.process_time() - cpu)


def _road(ms: dict[str, list[float]]) -> dict[str, Any]:
    """One road's figures: the page, the observer alone, the floor, and the page over it."""
    page, floor, served = median(ms["page"]), median(ms["floor"]), median(ms["served"])
    return {
        "page_median_ms": round(page, 2),
        "page_runs_ms": [round(v, 2) for v in ms["page"]],
        "served_page_median_ms": round(served, 2),
        "served_page_runs_ms": [round(v, 2) for v in ms["served"]],
        "served_page_over_raw_queries": round(served / floor, 2),
        "observer_median_ms": round(median(ms["observer"]), 2),
        # CPU time of this process (every thread): what Trellis itself spends, whatever the
        # machine's load; the floor's is decoding the same answers.
        "observer_cpu_median_ms": round(median(ms["observer_cpu"]), 2),
        "raw_queries_cpu_median_ms": round(median(ms["floor_cpu"]), 2),
        "raw_queries_median_ms": round(floor, 2),
        "raw_queries_runs_ms": [round(v, 2) for v in ms["floor"]],
        "page_over_raw_queries": round(page / floor, 2),
    }


@contextmanager
def _served(app: Any) -> Iterator[str]:
    """``app`` served over HTTP by uvicorn as ``trellis serve`` runs it; its base URL.

    On a thread of this process, its lifespan already run by the test client: the same app
    state, reached the way Backstage's proxy reaches it.
    """
    import uvicorn

    config = uvicorn.Config(app, lifespan="off", workers=1, access_log=False, log_config=None)
    server = uvicorn.Server(config)
    with socket.create_server(("127.0.0.1", 0)) as sock:
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise AssertionError("uvicorn did not start")
            time.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{sock.getsockname()[1]}"
        finally:
            server.should_exit = True
            thread.join(TIMEOUT_SECONDS)


@dataclass(frozen=True)
class _Catalog:
    """The part of the catalog service the page route reads: the targets of its document."""

    targets: Mapping[str, Any]

    def document(self) -> _Catalog:
        return self


def measure_page(requests: int, regions: int, many: int) -> dict[str, Any]:
    """Part 2: one model page, uncached, against the queries it sends, on both roads.

    ``raw``: no recording rules are known, every rate is computed from the raw series.
    ``recorded``: platform-hub's rules, evaluated over the same history, are in Prometheus and
    Trellis reads them (its names asked once, before the timed pages). Each road's floor is
    its own PromQL sent straight to Prometheus; the runs of both roads are interleaved.
    """
    from fastapi.testclient import TestClient

    from trellis.api.deps import install_state, state_of
    from trellis.app import create_app
    from trellis.config import Settings
    from trellis.observability import EntityServers, Limits, plan_queries
    from trellis.services.observability import Observer
    from trellis.services.recording_rules import RecordedSeries

    end = float(int(time.time() // 60) * 60)
    history, model, crowd = _page_fleet(regions, many, end)
    servers = tuple(deployment(s) for s in model)
    with tempfile.TemporaryDirectory(prefix="trellis-bench-page-") as tmp:
        log(f"backfilling {len(history.samples.series)} series into Prometheus")
        started = time.perf_counter()
        with prometheus_with(history.samples, Path(tmp) / "prom") as prom:
            backfill_s = time.perf_counter() - started
            started = time.perf_counter()
            prom.record(hub_rules_file(Path(tmp) / "hub-rules.yaml"), end - 65 * 60, end)
            record_s = time.perf_counter() - started
            client, sent = _counted(prom.url)
            source = PrometheusSource(client)
            recorded = RecordedSeries(source)
            observers = {
                "raw": Observer(
                    prometheus=source, registry=None, limits=Limits(), page_ttl_seconds=0
                ),
                "recorded": Observer(
                    prometheus=source,
                    registry=None,
                    limits=Limits(),
                    page_ttl_seconds=0,  # every page read from Prometheus
                    recorded=recorded,
                ),
            }
            names = recorded.available()
            if not names:
                raise AssertionError("Prometheus has none of the hub's recorded names")
            window = observers["raw"].window("1h", "60s", None)
            target = EntityServers(None, servers)
            queries = {
                "raw": [q.promql for q in plan_queries(list(servers), window.rate_seconds)],
                "recorded": [
                    q.promql for q in plan_queries(list(servers), window.rate_seconds, names)
                ],
            }
            settings = Settings(
                state_dir=Path(tmp) / "state",
                api_tokens=["bench-token-" + "x" * 20],
                mlflow={"tracking_uri": f"sqlite:///{Path(tmp) / 'mlflow.db'}"},
                prometheus={"url": prom.url},
                catalog={"refresh_interval_seconds": 3600},
            )
            app = create_app(settings)
            # The catalog the route reads its targets from, put in the app's state as the
            # catalog service puts its own: a dependency override would be analysed again
            # on every request, a cost a served Trellis never pays.
            catalog = _Catalog({"resource:default/support-llm": target})
            url = "/api/observability/default/resource/support-llm?range=1h&step=60s"
            headers = {"Authorization": "Bearer bench-token-" + "x" * 20}
            kinds = ("page", "served", "observer", "floor", "observer_cpu", "floor_cpu")
            ms: dict[str, dict[str, list[float]]] = {
                road: {k: [] for k in kinds} for road in observers
            }
            repeat_ms: list[float] = []
            with (
                TestClient(app) as http,
                _served(app) as served_url,
                httpx.Client(base_url=served_url, headers=headers, timeout=30) as served,
            ):
                kept = replace(state_of(app), catalog=catalog)
                for road, observer in observers.items():
                    install_state(app, replace(kept, observer=observer))
                    first = http.get(url, headers=headers)
                    first.raise_for_status()
                    page = first.json()
                    statuses = {s["status"] for e in page["servers"] for s in e["signals"]}
                    if statuses != {"ok"} or len(page["servers"]) != regions:
                        raise AssertionError(f"{road} page not whole: {statuses}")
                for _ in range(requests):
                    for road, observer in observers.items():
                        install_state(app, replace(kept, observer=observer))
                        ms[road]["page"].append(
                            1000 * timed(lambda: http.get(url, headers=headers))[0]
                        )
                        ms[road]["served"].append(1000 * timed(lambda: served.get(url))[0])
                        wall, cpu = _wall_and_cpu(lambda o=observer: o.page("x", target, window))
                        ms[road]["observer"].append(wall)
                        ms[road]["observer_cpu"].append(cpu)
                        wall, cpu = _wall_and_cpu(lambda r=road: _raw(client, queries[r], window))
                        ms[road]["floor"].append(wall)
                        ms[road]["floor_cpu"].append(cpu)
                    install_state(app, kept)  # a repeat view within the step
                    http.get(url, headers=headers)
                    repeat_ms.append(1000 * timed(lambda: http.get(url, headers=headers))[0])
            roads = {road: _road(found) for road, found in ms.items()}
            for road, found in roads.items():
                log(
                    f"{road}: page {found['page_median_ms']:.1f} ms in-process, "
                    f"{found['served_page_median_ms']:.1f} ms served (observer "
                    f"{found['observer_median_ms']:.1f} ms), its queries "
                    f"{found['raw_queries_median_ms']:.1f} ms"
                )
            per_page = {}
            for label, group in (("1_server", crowd[:1]), (f"{many}_servers", crowd)):
                sent.clear()
                crowd_page = observers["recorded"].page(
                    "x", EntityServers(None, tuple(map(deployment, group))), window
                )
                found_statuses = {s["status"] for e in crowd_page["servers"] for s in e["signals"]}
                if found_statuses != {"ok"}:
                    raise AssertionError(f"{label}: statuses {found_statuses}")
                per_page[label] = len(sent)
            client.close()
    counts = list(per_page.values())
    return {
        "regions": regions,
        "series_backfilled": len(history.samples.series),
        "backfill_and_start_seconds": round(backfill_s, 2),
        "record_rules_seconds": round(record_s, 2),
        "queries_per_page": len(queries["recorded"]),
        "recorded_queries": sum("server:" in q for q in queries["recorded"]),
        **roads["recorded"],
        "raw": roads["raw"],
        "recorded_page_over_raw_page": round(
            roads["recorded"]["page_median_ms"] / roads["raw"]["page_median_ms"], 2
        ),
        "repeat_view_median_ms": round(median(repeat_ms), 2),
        "prometheus_requests_per_page": per_page,
        "requests_independent_of_servers": len(set(counts)) == 1,
    }


# --------------------------------------------------------------------------- part 3: fleet

FLEET_HISTORY_SECONDS = 900  # the scorecards benchmark's cached history (15 minutes)
FLEET_AT_BEFORE_END = 60  # asked a minute before the end of the data, as the scorer is there


def _instant(client: httpx.Client, promql: str, at: float) -> list[Any]:
    form = {"query": promql, "time": f"{at:.3f}", "timeout": f"{TIMEOUT_SECONDS:g}s"}
    response = client.post("/api/v1/query", data=form)
    response.raise_for_status()
    result: list[Any] = response.json()["data"]["result"]
    return result


def _rows(result: list[Any]) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in result}


def _largest_difference(raw: list[Any], recorded: list[Any]) -> float:
    """The largest relative difference between the roads' rows (inf: not the same rows)."""
    mine, theirs = _rows(raw), _rows(recorded)
    if mine.keys() != theirs.keys():
        return float("inf")
    worst = 0.0
    for key, value in mine.items():
        other = theirs[key]
        if value != value and other != other:  # both NaN
            continue
        worst = max(worst, abs(value - other) / max(abs(value), 1e-12))
    return worst


def measure_fleet(servers: int, repeat: int, cache_dir: Path, windows: list[int]) -> dict[str, Any]:
    """Part 3: each scorecard fleet query at ``servers`` servers, raw and from recorded rates.

    The history is the scorecards benchmark's (its cached TSDB, made the first time); the
    hub's rules are evaluated over its last minutes by that Prometheus and imported, so the
    recorded series exist where the queries are asked. Queries run one at a time, each
    road's runs interleaved; both roads' answers are compared row by row.
    """
    from scorecards import cached_prometheus, prometheus_over
    from trellis.observability.fleet import plan_fleet_queries
    from trellis.observability.queries import hub_recorded_names

    data, info, _ = cached_prometheus(cache_dir, servers, FLEET_HISTORY_SECONDS)
    at = float(info["end"]) - FLEET_AT_BEFORE_END
    names = frozenset(hub_recorded_names())
    result: dict[str, Any] = {
        "servers": servers,
        "history_seconds": FLEET_HISTORY_SECONDS,
        "series_in_history": info["series"],
    }
    with (
        tempfile.TemporaryDirectory(prefix="trellis-bench-fleet-") as tmp,
        prometheus_over(data, Path(tmp)) as prom,
    ):
        started = time.perf_counter()
        prom.record(hub_rules_file(Path(tmp) / "hub-rules.yaml"), at - 60, at, timeout=300)
        result["record_rules_seconds"] = round(time.perf_counter() - started, 1)
        log(f"recording rules evaluated and imported in {result['record_rules_seconds']} s")
        with httpx.Client(base_url=prom.url, timeout=TIMEOUT_SECONDS + 5) as client:
            for serving in windows:
                raw = {q.fact: q.promql for q in plan_fleet_queries(serving, 86_400)}
                recorded = {q.fact: q.promql for q in plan_fleet_queries(serving, 86_400, names)}
                runs: dict[str, dict[str, list[float]]] = {"raw": {}, "recorded": {}}
                answers: dict[str, dict[str, list[Any]]] = {"raw": {}, "recorded": {}}
                for _ in range(repeat):
                    for fact in raw:
                        for road, plan in (("raw", raw), ("recorded", recorded)):
                            if road == "recorded" and plan[fact] == raw[fact]:
                                continue  # the same query: timed once
                            started = time.perf_counter()  # Prometheus's time: no gc first
                            answer = _instant(client, plan[fact], at)
                            seconds = time.perf_counter() - started
                            runs[road].setdefault(fact, []).append(seconds)
                            answers[road][fact] = answer
                facts: dict[str, Any] = {}
                for fact in raw:
                    raw_s = median(runs["raw"][fact])
                    same = fact not in runs["recorded"]
                    recorded_s = raw_s if same else median(runs["recorded"][fact])
                    facts[fact] = {
                        "raw_seconds": round(raw_s, 3),
                        "recorded_seconds": round(recorded_s, 3),
                        "rows": len(answers["raw"][fact]),
                        "same_query": same,
                        "largest_relative_difference": (
                            0.0
                            if same
                            else _largest_difference(
                                answers["raw"][fact], answers["recorded"][fact]
                            )
                        ),
                    }
                    log(
                        f"serving {serving} s, {fact}: raw {raw_s:.3f} s, recorded "
                        f"{recorded_s:.3f} s ({facts[fact]['rows']} rows)"
                    )
                result[f"serving_{serving}s"] = {
                    "facts": facts,
                    "slowest_raw_seconds": max(f["raw_seconds"] for f in facts.values()),
                    "slowest_recorded_seconds": max(f["recorded_seconds"] for f in facts.values()),
                    "values_agree_to_1e-9": all(
                        f["largest_relative_difference"] <= 1e-9 for f in facts.values()
                    ),
                }
    return result


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    """Run every measurement and print one JSON object."""
    parser = argparse.ArgumentParser(description="Benchmark observing a model-server fleet.")
    parser.add_argument("--servers", type=int, default=1000, help="model servers in all")
    parser.add_argument("--regions", type=int, default=4, help="clusters, one per region")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each measurement")
    parser.add_argument("--page-requests", type=int, default=20, help="timed page requests")
    parser.add_argument("--page-regions", type=int, default=4, help="regions of the page's model")
    parser.add_argument("--many-servers", type=int, default=40, help="servers of the big page")
    parser.add_argument(
        "--fleet-servers", type=int, default=10_000, help="servers of the fleet queries (0: none)"
    )
    parser.add_argument(
        "--fleet-windows",
        default="300,3600",
        help="serving windows of the fleet queries, in seconds, comma-separated",
    )
    parser.add_argument("--fleet-repeat", type=int, default=3, help="runs of each fleet query")
    parser.add_argument(
        "--cache-dir", type=Path, default=Path(".cache/bench"), help="cached fleet history"
    )
    args = parser.parse_args(argv)
    if min(args.servers, args.regions, args.repeat, args.page_requests, args.page_regions) < 1:
        parser.error("every count must be positive")
    if args.many_servers < 2:
        parser.error("--many-servers must be at least 2")
    result: dict[str, Any] = {
        "repeat": args.repeat,
        "deployments": measure_deployments(args.servers, args.regions, args.repeat),
        "page": measure_page(args.page_requests, args.page_regions, args.many_servers),
        "fleet": (
            measure_fleet(
                args.fleet_servers,
                args.fleet_repeat,
                args.cache_dir,
                [int(w) for w in args.fleet_windows.split(",")],
            )
            if args.fleet_servers
            else None
        ),
        "load_average": os.getloadavg(),
        "environment": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
