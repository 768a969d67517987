"""Observability pages read through fakes: caching, a source down, window limits."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from support.domain import T0, model_server, registered_model
from support.fakes import FakePrometheus, FakeRegistry, labels
from support.timing import scaled
from trellis.errors import NotFound
from trellis.model import Deployment, MetricPoint, RegisteredModel, Series
from trellis.observability import Limits, WindowError
from trellis.services.observability import NOT_CONFIGURED, WORKERS, Observer, find_target

END = datetime(2026, 3, 1, 12, tzinfo=UTC)
REF = "resource:default/fraud"
SERVER = model_server("eu", "fraud-eu")
LOSS = [MetricPoint(step, T0 + timedelta(minutes=step), 1.0 / (step + 1)) for step in range(3)]


def fraud() -> RegisteredModel:
    """``fraud`` with its champion (version 1) trained in run ``r1``."""
    model = registered_model("fraud", aliases={"champion": 1}, versions=1)
    return replace(model, versions=(replace(model.versions[0], run_id="r1"),))


@dataclass(frozen=True)
class Target:
    """What the catalog says ``REF`` stands for."""

    model: RegisteredModel | None
    deployments: tuple[Deployment, ...] = (SERVER,)


def served(value: float) -> Series:
    return Series(labels("ml", "fraud-eu", "eu"), ((END.timestamp(), value),))


def observer(
    prometheus: FakePrometheus | None, registry: FakeRegistry | None, **kwargs: object
) -> Observer:
    return Observer(prometheus=prometheus, registry=registry, limits=Limits(), **kwargs)


@pytest.fixture
def prometheus() -> FakePrometheus:
    return FakePrometheus(series={"": [served(2.0)]})


@pytest.fixture
def registry() -> FakeRegistry:
    return FakeRegistry(models=(fraud(),), runs={"r1": {"loss": LOSS}})


def test_a_page_shows_the_servers_signals_and_the_training_history(prometheus, registry):
    reader = observer(prometheus, registry)
    page = reader.page(REF, Target(fraud()), reader.window("1h", None, END))
    assert page["sources"]["prometheus"]["status"] == "ok"
    assert page["sources"]["mlflow"]["status"] == "ok"
    assert [server["name"] for server in page["servers"]] == ["fraud-eu"]
    (champion,) = page["training"]
    assert champion["runId"] == "r1"
    assert [p["value"] for p in champion["metrics"]["loss"]] == [1.0, 0.5, 1.0 / 3]


def test_a_complete_page_is_served_again_without_asking(prometheus, registry):
    reader = observer(prometheus, registry)
    window = reader.window("1h", None, END)
    first = reader.page(REF, Target(fraud()), window)
    asked = len(prometheus.queries)
    again = reader.page(REF, Target(fraud()), window)
    assert asked > 0
    assert len(prometheus.queries) == asked
    assert again == first


def test_without_a_cache_every_view_asks_again(prometheus, registry):
    reader = observer(prometheus, registry, page_ttl_seconds=0)
    window = reader.window("1h", None, END)
    reader.page(REF, Target(fraud()), window)
    asked = len(prometheus.queries)
    reader.page(REF, Target(fraud()), window)
    assert len(prometheus.queries) == 2 * asked


def test_prometheus_down_degrades_only_its_part_and_is_not_kept(registry):
    down = FakePrometheus(failing={"": "connection refused"})
    reader = observer(down, registry)
    window = reader.window("1h", None, END)
    page = reader.page(REF, Target(fraud()), window)
    assert page["sources"]["prometheus"]["status"] == "unavailable"
    assert page["sources"]["prometheus"]["reason"] == "connection refused"
    assert page["sources"]["mlflow"]["status"] == "ok"
    assert page["training"][0]["metrics"]["loss"] != []
    asked = len(down.queries)
    reader.page(REF, Target(fraud()), window)
    assert len(down.queries) == 2 * asked  # a degraded page is read again, not served again


def test_mlflow_down_leaves_the_golden_signals(prometheus, registry):
    registry.failing = "timed out"
    reader = observer(prometheus, registry)
    page = reader.page(REF, Target(fraud()), reader.window("1h", None, END))
    assert page["sources"]["prometheus"]["status"] == "ok"
    assert page["sources"]["mlflow"] == {
        **page["sources"]["mlflow"],
        "status": "unavailable",
        "reason": "timed out",
    }
    assert page["training"][0]["status"] == "unavailable"


def test_a_run_that_does_not_exist_is_missing_not_an_outage(prometheus):
    reader = observer(prometheus, FakeRegistry(models=(fraud(),)))
    page = reader.page(REF, Target(fraud()), reader.window("1h", None, END))
    assert page["training"][0]["status"] == "missing"
    assert page["sources"]["mlflow"]["status"] == "ok"


def test_no_prometheus_is_said_on_the_page(registry):
    reader = observer(None, registry)
    page = reader.page(REF, Target(fraud()), reader.window("1h", None, END))
    assert page["sources"]["prometheus"]["status"] == "unavailable"
    assert page["sources"]["prometheus"]["reason"] == NOT_CONFIGURED


def test_a_window_past_the_limits_is_refused_naming_them():
    reader = Observer(prometheus=None, registry=None, limits=Limits(max_points=100))
    with pytest.raises(WindowError) as raised:
        reader.window("60d", "1s", END)
    assert "30" in str(raised.value)
    assert "100" in str(raised.value)


def test_a_window_without_a_zone_is_utc():
    reader = Observer(prometheus=None, registry=None, limits=Limits())
    window = reader.window("1h", None, END.replace(tzinfo=None))
    assert window.end <= END
    assert window.end.tzinfo is not None


def test_close_closes_prometheus_but_not_the_catalogs_registry(prometheus, registry):
    observer(prometheus, registry).close()
    assert prometheus.closed
    assert not registry.closed


def test_targets_are_found_whatever_the_case_of_kind_and_namespace():
    target = Target(fraud())
    assert find_target("Resource:Default/fraud", {REF: target}) is target
    with pytest.raises(NotFound):
        find_target("resource:default/other", {REF: target})


@dataclass
class _Gate(FakePrometheus):
    """A Prometheus whose range queries wait at a gate, counting how many wait at once."""

    gate: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    waiting: int = 0
    most: int = 0

    def query_range(self, promql, start, end, step_seconds):
        with self._lock:
            self.waiting += 1
            self.most = max(self.most, self.waiting)
        self.arrived.release()
        self.gate.wait(scaled(10))
        with self._lock:
            self.waiting -= 1
        return super().query_range(promql, start, end, step_seconds)


def test_reads_of_all_pages_at_once_are_bounded_by_one_pool():
    """A page sends its queries at once; pages viewed together share the pool, not pile up."""
    source = _Gate(series={"": [served(2.0)]})
    reader = observer(source, None, page_ttl_seconds=0)
    window = reader.window("1h", None, END)
    source.gate.set()
    reader.page(REF, Target(None), window)
    per_page = len(source.queries)
    assert per_page > 5
    source.gate.clear()
    source.arrived, source.most = threading.Semaphore(0), 0
    with ThreadPoolExecutor(4) as views:
        one = views.submit(reader.page, REF, Target(None), window)
        for _ in range(per_page):  # one page: all of its queries in flight at once
            assert source.arrived.acquire(timeout=scaled(10))
        assert source.most == per_page
        source.gate.set()
        one.result(scaled(10))
        source.gate.clear()
        source.most = 0
        pages = [views.submit(reader.page, REF, Target(None), window) for _ in range(4)]
        for _ in range(WORKERS):  # the pool fills up; nothing more is asked until it frees
            assert source.arrived.acquire(timeout=scaled(10))
        assert not source.arrived.acquire(timeout=scaled(0.2))
        assert source.most == WORKERS < 4 * per_page
        source.gate.set()
        assert all(p.result(scaled(10))["sources"]["prometheus"]["status"] == "ok" for p in pages)
    assert len(source.queries) == 6 * per_page
    reader.close()


def test_reads_stuck_upstream_make_a_page_say_so_at_its_deadline(registry):
    """Reads that never end (an answer that trickles in) hold the pool, not the pages."""
    source = _Gate(series={"": [served(2.0)]})
    reader = observer(source, registry, page_ttl_seconds=0, deadline_seconds=scaled(0.3))
    window = reader.window("1h", None, END)
    try:
        page = reader.page(REF, Target(fraud()), window)  # the gate stays shut
        prometheus = page["sources"]["prometheus"]
        assert prometheus["status"] == "unavailable"
        assert prometheus["reason"].startswith("no answer within the page's")
        assert all(s["status"] == "unavailable" for s in page["servers"][0]["signals"])
        assert page["training"][0]["status"] == "ok"  # MLflow answered in time
        assert page["sources"]["mlflow"]["status"] == "ok"
    finally:
        source.gate.set()
        reader.close()
