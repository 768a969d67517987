"""The catalog benchmark's refresh part: what one changed model costs, and what GETs feel.

Two measurements over the same real MLflow server (``catalog.py`` runs them):

* ``measure_incremental``: in this process, Trellis CPU time (``time.process_time``) of a
  refresh as it was before (full read, every entity rebuilt and rendered, the whole kept
  snapshot written), of the periodic full read now (the kept builder), and of a refresh of
  one model a webhook named, after each of several kinds of change made through MLflow's
  REST API; the entities' and the serialisation's own CPU before and after; and whether the
  served bytes equal a full rebuild's of the same registry.
* ``measure_refresh_load``: against a running ``trellis serve`` wired to MLflow's webhooks,
  GET latencies of ``/catalog/entities.yaml`` idle, then while a writer adds one model per
  second (each one a webhook, a refresh), then while full reads run back to back; from one
  client and from many at once.
"""

from __future__ import annotations

import gc
import itertools
import multiprocessing
import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
from harness import log, median, percentile

from trellis.catalog import CatalogBuilder, CatalogDocument, CatalogOptions, build_catalog
from trellis.catalog.document import render_yaml
from trellis.services.catalog_refresh import CatalogService, build_document
from trellis.services.webhooks import REGISTRY_EVENTS, signature
from trellis.sources.mlflow import RestRegistry
from trellis.sources.snapshot_file import SnapshotFile

__all__ = ["WEBHOOK_ENV", "measure_incremental", "measure_refresh_load", "webhook_env"]

API = "/api/2.0/mlflow"
ENTITIES_PATH = "/catalog/entities.yaml"
#: What the MLflow server needs to deliver webhooks over plain HTTP to 127.0.0.1.
WEBHOOK_ENV = {
    "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
    "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
}
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def webhook_env(secret: str) -> dict[str, str]:
    """``trellis serve``'s settings for webhook-triggered refreshes, one per change."""
    return {"TRELLIS_WEBHOOKS__SECRET": secret, "TRELLIS_WEBHOOKS__DEBOUNCE_SECONDS": "0.2"}


# --------------------------------------------------------------------------- changes


def _post(http: httpx.Client, method: str, path: str, body: dict[str, Any]) -> None:
    response = http.request(method, f"{API}/{path}", json=body)
    if response.status_code != 200:
        raise AssertionError(f"{method} {path}: {response.status_code} {response.text[:200]}")


def change_model(http: httpx.Client, kind: str, name: str, number: int) -> str:
    """Change the registry one way through MLflow's REST API; the model that changed."""
    if kind == "new model":
        name = f"bench-new-{number:05d}-{os.getpid()}"
        tags = [{"key": "owner", "value": "group:default/bench"}, {"key": "system", "value": "s"}]
        _post(http, "POST", "registered-models/create", {"name": name, "tags": tags})
    elif kind == "tag":
        _post(http, "POST", "registered-models/set-tag", {"name": name, "key": "framework",
                                                          "value": f"torch-{number}"})  # fmt: skip
    elif kind == "alias":
        _post(http, "POST", "registered-models/alias", {"name": name, "alias": "champion",
                                                        "version": "3"})  # fmt: skip
    elif kind == "description":
        _post(http, "PATCH", "registered-models/update",
              {"name": name, "description": f"changed {number}"})  # fmt: skip
    else:  # a new version
        _post(http, "POST", "model-versions/create",
              {"name": name, "source": f"s3://models/{name}/bench-{number}"})  # fmt: skip
    return name


CHANGES = ("new model", "tag", "alias", "description", "version")


# --------------------------------------------------------------------------- CPU


def cpu(action: Callable[[], Any]) -> tuple[float, Any]:
    """Process CPU seconds (every thread) taken by ``action``, after a garbage collection."""
    gc.collect()
    started = time.process_time()
    value = action()
    return time.process_time() - started, value


def measure_incremental(
    url: str, work: Path, options: CatalogOptions, changes: int, names: list[str]
) -> dict[str, Any]:
    """Trellis CPU of a refresh before and after, one changed model at a time."""
    state = work / "incremental"
    with (
        httpx.Client(base_url=url, timeout=300) as http,
        httpx.Client(base_url=url, timeout=60) as writer,
    ):
        registry = RestRegistry(http, label=url)
        service = CatalogService(
            registry=registry,
            store=SnapshotFile(state / "snapshot.json"),
            options=options,
            interval_seconds=3600,
        )
        first_s, _ = cpu(service.refresh)

        def before() -> CatalogDocument:
            snapshot = registry.read()
            document = build_document(snapshot, options)
            SnapshotFile(state / "before.json").save(snapshot)
            return document

        full_s = [cpu(before)[0] for _ in range(2)]
        log(f"refresh as before (full read, full rebuild): {median(full_s):.2f} s CPU")
        named: dict[str, list[float]] = {kind: [] for kind in CHANGES}
        for number, kind in zip(range(changes), itertools.cycle(CHANGES), strict=False):
            changed = change_model(writer, kind, names[number % len(names)], number)
            seconds, document = cpu(lambda changed=changed: service.refresh_models({changed}))
            assert document is not None, "a named refresh published nothing"
            named[kind].append(seconds)
        every = sorted(s for runs in named.values() for s in runs)
        log(f"one changed model: median {median(every):.3f} s CPU, max {every[-1]:.3f} s")
        reconcile_s = [cpu(service.refresh)[0] for _ in range(2)]
        served = service.document()
        rebuilt = build_document(registry.read(), options)
        service.stop()
    return {
        "first_refresh_cpu_seconds": round(first_s, 3),
        "full_rebuild_cpu_seconds": round(median(full_s), 3),
        "one_change_cpu_seconds": round(median(every), 3),
        "one_change_cpu_max_seconds": round(every[-1], 3),
        "one_change_cpu_by_kind": {k: [round(s, 3) for s in v] for k, v in named.items() if v},
        "full_rebuild_over_one_change": round(median(full_s) / median(every), 1),
        "reconciliation_cpu_seconds": round(median(reconcile_s), 3),
        "incremental_matches_full_rebuild": (served.yaml, served.yaml_etag, served.json)
        == (rebuilt.yaml, rebuilt.yaml_etag, rebuilt.json),
        **_serialisation(service.snapshot(), options),
    }


def _serialisation(snapshot: Any, options: CatalogOptions) -> dict[str, Any]:
    """The entities' and the bytes' CPU for a whole catalog, and for one change of it."""
    entities_s, catalog = cpu(lambda: build_catalog(snapshot, options))
    yaml_s, _ = cpu(lambda: render_yaml(catalog.entities))
    document_s, _ = cpu(
        lambda: CatalogDocument.build(catalog, taken_at=snapshot.taken_at, model_count=0)
    )
    builder = CatalogBuilder(options)
    CatalogDocument.build(
        builder.build(snapshot), taken_at=snapshot.taken_at, model_count=0,
        cache=builder.render_cache,
    )  # fmt: skip
    models = list(snapshot.models)
    models[len(models) // 2] = replace(models[len(models) // 2], description="one change")
    changed = replace(snapshot, models=tuple(models))
    after_entities_s, after = cpu(lambda: builder.build(changed))
    after_document_s, _ = cpu(
        lambda: CatalogDocument.build(
            after, taken_at=snapshot.taken_at, model_count=0, cache=builder.render_cache
        )
    )
    return {
        "serialisation": {
            "before_render_yaml_cpu_seconds": round(yaml_s, 3),
            "before_document_cpu_seconds": round(document_s, 3),
            "after_one_change_document_cpu_seconds": round(after_document_s, 3),
            "entities_rendered_after_one_change": builder.render_cache.rendered,
            "before_entities_cpu_seconds": round(entities_s, 3),
            "after_one_change_entities_cpu_seconds": round(after_entities_s, 3),
        }
    }


# --------------------------------------------------------------------------- GETs under load


def _gets(base: str, clients: int, each: int) -> list[float]:
    """Milliseconds per GET from ``clients`` kept-alive clients at once, ``each`` GETs apiece."""
    start = threading.Barrier(clients)

    def client(_: int) -> list[float]:
        times = []
        with httpx.Client(base_url=base, timeout=300) as http:
            http.get(ENTITIES_PATH).raise_for_status()  # connect, not timed
            start.wait()
            for _ in range(each):
                began = time.perf_counter()
                response = http.get(ENTITIES_PATH)
                times.append((time.perf_counter() - began) * 1000)
                response.raise_for_status()
        return times

    with ThreadPoolExecutor(max_workers=clients) as pool:
        return [t for times in pool.map(client, range(clients)) for t in times]


def _refreshes(base: str) -> tuple[float, float]:
    """(count, seconds) of catalog refreshes so far, from the server's metrics."""
    text = httpx.get(f"{base}/metrics", timeout=30).text
    found = {
        key: float(value)
        for key, value in re.findall(
            r"^trellis_catalog_refresh_duration_seconds_(count|sum) ([0-9.e+-]+)$", text, re.M
        )
    }
    return found.get("count", 0.0), found.get("sum", 0.0)


def _serve_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _write(kind: str, mlflow_url: str, base: str, secret: str, period: float, stop: Any,
           done: Any) -> None:  # fmt: skip
    """In a child process (no GIL shared with the clients): one write every ``period`` s.

    ``named``: a new model through MLflow, whose webhook makes Trellis read that model;
    ``full``: a signed event that names no model, so Trellis reads the whole registry.
    """
    body = b'{"entity":"registered_model","action":"created","data":{}}'
    with (
        httpx.Client(base_url=mlflow_url, timeout=60) as mlflow,
        httpx.Client(base_url=base, timeout=60) as trellis,
    ):
        while not stop.is_set():
            began = time.monotonic()
            number = done.value
            if kind == "named":
                change_model(mlflow, "new model", "", 50_000 + number)
            else:
                delivery = f"bench-full-{os.getpid()}-{number}"
                stamp = str(int(time.time()))
                headers = {
                    "X-MLflow-Delivery-Id": delivery,
                    "X-MLflow-Timestamp": stamp,
                    "X-MLflow-Signature": signature(secret, delivery, stamp, body),
                    "Content-Type": "application/json",
                }
                trellis.post("/api/webhooks/mlflow", content=body, headers=headers)
            done.value = number + 1
            stop.wait(max(0.0, period - (time.monotonic() - began)))


class _Writer:
    """``_write`` in a child process, from ``start`` to ``stop``."""

    def __init__(self, kind: str, mlflow_url: str, base: str, secret: str, period: float) -> None:
        context = multiprocessing.get_context("fork")  # starts at once; no thread runs now
        self.period = period
        self._stop = context.Event()
        self._done = context.Value("i", 0)
        self._process = context.Process(
            target=_write,
            args=(kind, mlflow_url, base, secret, period, self._stop, self._done),
            daemon=True,
        )

    @property
    def count(self) -> int:
        return int(self._done.value)

    def start(self) -> None:
        self._process.start()
        while self.count == 0 and self._process.is_alive():  # the first write is made
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._process.join(timeout=60)
        if self._process.exitcode != 0:
            raise AssertionError(f"the writer failed (exit code {self._process.exitcode})")


def _settle(base: str, quiet: float) -> None:
    """Wait until no refresh has ended for ``quiet`` seconds: the next phase starts idle."""
    last, since = _refreshes(base)[0], time.monotonic()
    while time.monotonic() - since < quiet:
        time.sleep(0.25)
        count = _refreshes(base)[0]
        if count != last:
            last, since = count, time.monotonic()


@dataclass
class _Condition:
    """What the GETs of one condition met, pooled over the rounds."""

    times: list[float] = field(default_factory=list)
    refreshes: float = 0.0
    refresh_seconds: float = 0.0
    serve_cpu: float = 0.0
    wall: float = 0.0
    writes: int = 0

    def report(self) -> dict[str, Any]:
        return {
            "gets": len(self.times),
            "p50_ms": round(median(self.times), 1),
            "p95_ms": round(percentile(self.times, 0.95), 1),
            "p99_ms": round(percentile(self.times, 0.99), 1),
            "refreshes": int(self.refreshes),
            "refresh_seconds": round(self.refresh_seconds, 2),
            "refresh_wall_share": round(self.refresh_seconds / self.wall, 3),
            "serve_cpu_seconds": round(self.serve_cpu, 2),
            "wall_seconds": round(self.wall, 1),
            "writes": self.writes,
        }


def _phase(
    base: str, pid: int, shape: tuple[int, int], writer: _Writer | None, into: _Condition
) -> None:
    """One round of one condition: GETs, with the writer (if any) running throughout."""
    count, seconds = _refreshes(base)
    cpu_before, began = _serve_cpu(pid), time.perf_counter()
    if writer is not None:
        writer.start()
        time.sleep(writer.period / 2)  # the first refresh is under way when the GETs begin
    into.times += _gets(base, *shape)
    if writer is not None:
        writer.stop()
        into.writes += writer.count
    into.wall += time.perf_counter() - began
    count_after, seconds_after = _refreshes(base)
    into.refreshes += count_after - count
    into.refresh_seconds += seconds_after - seconds
    into.serve_cpu += _serve_cpu(pid) - cpu_before


def measure_refresh_load(
    mlflow_url: str,
    base: str,
    pid: int,
    secret: str,
    *,
    clients: int,
    each: int,
    single: int,
    period: float,
    rounds: int,
) -> dict[str, Any]:
    """GET latencies idle, during named refreshes (one write a second), during full reads.

    The three conditions take turns for ``rounds`` rounds and each one's GETs are pooled, so
    a change in the machine's other load weighs on all three alike.
    """
    from mlflow import MlflowClient  # heavy import, only here

    MlflowClient(tracking_uri=mlflow_url, registry_uri=mlflow_url).create_webhook(
        name="trellis-bench",
        url=f"{base}/api/webhooks/mlflow",
        events=sorted(REGISTRY_EVENTS),
        secret=secret,
    )
    result: dict[str, Any] = {"rounds": rounds, "write_period_seconds": period}
    quiet = 3.0 * period  # seconds without a refresh ending before a phase (3 s at 1 write/s)
    for mode, shape in (("single_client", (1, single)), ("concurrent", (clients, each))):
        pooled = {condition: _Condition() for condition in ("idle", "named", "full")}
        for round_number in range(1, rounds + 1):
            for condition, found in pooled.items():
                _settle(base, quiet)
                log(f"GETs, {mode} {shape[0]} x {shape[1]}, {condition}, round {round_number}")
                writer = (
                    _Writer(condition, mlflow_url, base, secret, period)
                    if condition != "idle"
                    else None
                )
                _phase(base, pid, shape, writer, found)
                if found.refreshes:  # a refresh still running must end before the next phase
                    quiet = max(quiet, 2 * found.refresh_seconds / found.refreshes)
        idle, named, full = (pooled[c].report() for c in ("idle", "named", "full"))
        result[mode] = {
            "idle": idle,
            "named_refreshes": named,
            "full_reads": full,
            "p95_ratio": round(named["p95_ms"] / idle["p95_ms"], 2),
            "p99_ratio": round(named["p99_ms"] / idle["p99_ms"], 2),
            "full_reads_p95_ratio": round(full["p95_ms"] / idle["p95_ms"], 2),
            "full_reads_p99_ratio": round(full["p99_ms"] / idle["p99_ms"], 2),
        }
    modes = ("single_client", "concurrent")
    result["refresh_get_p95_ratio"] = max(result[mode]["p95_ratio"] for mode in modes)
    result["refresh_get_p99_ratio"] = max(result[mode]["p99_ratio"] for mode in modes)
    return result
