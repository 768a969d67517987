"""GET /api/observability/... against a real Prometheus (backfilled) and a real registry.

The catalog does not read Kubernetes here, so the servers behind an entity are given by
overriding the route's ``entity_targets`` dependency with the servers of the test fleet;
one test uses the catalog's own index (a model without servers).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from support.observability import (
    FRAUD_EU,
    FRAUD_US,
    IMAGE_EU,
    LLM_EU,
    LLM_US,
    build_fleet,
    deployment,
    expected_series,
)
from support.prometheus import Fleet, PrometheusServer, prometheus_with
from support.services import free_port
from support.timing import scaled
from support.training import RunSpec, Trained, curve, seed_trained
from trellis.api.deps import entity_targets
from trellis.api.observability import ObservabilityPublic
from trellis.app import create_app
from trellis.config import Settings
from trellis.observability import EntityServers
from trellis.sources.mlflow import SqlRegistry

TOKEN = "test-token-" + "o" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROUTE = "/api/observability"


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return build_fleet(math.floor(time.time() / 60) * 60)


@pytest.fixture(scope="module")
def prom(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    with prometheus_with(fleet.samples, tmp_path_factory.mktemp("api-prom") / "data") as server:
        yield server


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Trained]:
    uri = f"sqlite:///{tmp_path_factory.mktemp('api-mlflow') / 'mlflow.db'}"
    versions = {
        1: RunSpec({"loss": curve(30, 2.0, 0.4)}),
        2: RunSpec({"loss": curve(80, 2.0, 0.2), "auc": curve(80, 0.6, 0.97)}),
    }
    trained = seed_trained(uri, "fraud-detector", versions, {"champion": 2, "candidate": 1})
    seed_trained(
        uri, "support-llm", {1: RunSpec({"perplexity": curve(20, 30, 6)})}, {"champion": 1}
    )
    return uri, trained


def settings(state: Path, uri: str, prometheus: str | None) -> Settings:
    return Settings(
        state_dir=state,
        api_tokens=[TOKEN],
        mlflow={"tracking_uri": uri, "timeout_seconds": scaled(30)},
        prometheus={"url": prometheus, "timeout_seconds": scaled(5)},
        catalog={"refresh_interval_seconds": 3600},
    )


def fleet_targets(uri: str) -> dict[str, EntityServers]:
    reader = SqlRegistry(uri, label="t", timeout_seconds=scaled(30))
    try:
        models = {m.name: m for m in reader.read().models}
    finally:
        reader.close()
    fraud, llm = models["fraud-detector"], models["support-llm"]
    return {
        "resource:default/fraud-detector": EntityServers(
            fraud, (deployment(FRAUD_EU), deployment(FRAUD_US))
        ),
        "component:default/image-classifier-eu-west-1": EntityServers(
            None, (deployment(IMAGE_EU),)
        ),
        "resource:default/support-llm": EntityServers(
            llm, (deployment(LLM_EU), deployment(LLM_US))
        ),
        "resource:default/no-servers": EntityServers(fraud, ()),
    }


@pytest.fixture(scope="module")
def http(
    tmp_path_factory: pytest.TempPathFactory, registry: tuple[str, Trained], prom: PrometheusServer
) -> Iterator[TestClient]:
    """One app for the module's read-only requests: each app start refreshes and scores."""
    uri, _ = registry
    app = create_app(settings(tmp_path_factory.mktemp("api-state"), uri, prom.url))
    app.dependency_overrides[entity_targets] = lambda: fleet_targets(uri)
    with TestClient(app) as client:
        yield client


def at(fleet: Fleet) -> str:
    return datetime.fromtimestamp(fleet.end, UTC).isoformat()


def grid(page: dict) -> list[float]:
    window = page["window"]
    start = datetime.fromisoformat(window["start"]).timestamp()
    return [start + i * window["stepSeconds"] for i in range(window["points"])]


def signal(entry: dict, signal_id: str) -> dict:
    return next(s for s in entry["signals"] if s["id"] == signal_id)


def assert_matches(got: dict, want: list[list[float]]) -> None:
    assert got["status"] == "ok", got
    assert [p[0] for p in got["series"]] == [p[0] for p in want]
    assert [p[1] for p in got["series"]] == pytest.approx([p[1] for p in want], rel=1e-9)


@pytest.mark.prometheus
def test_the_route_needs_a_token(http):
    assert http.get(f"{ROUTE}/default/resource/fraud-detector").status_code == 401


@pytest.mark.prometheus
def test_an_unknown_entity_is_404(http):
    response = http.get(f"{ROUTE}/default/resource/nope", headers=AUTH)
    assert response.status_code == 404
    assert "resource:default/nope" in response.json()["detail"]


@pytest.mark.prometheus
def test_a_model_page_has_each_region_the_model_and_its_training(http, fleet, registry):
    _, trained = registry
    response = http.get(
        f"{ROUTE}/default/resource/fraud-detector",
        params={"range": "1h", "step": "60s", "end": at(fleet)},
        headers=AUTH,
    )
    assert response.status_code == 200, response.text
    page = response.json()
    ObservabilityPublic.model_validate(page)
    assert page["entity"]["model"] == "fraud-detector"
    assert (page["window"]["points"], page["window"]["rateWindowSeconds"]) == (61, 300)
    assert [s["region"] for s in page["servers"]] == ["eu-west-1", "us-east-1"]
    assert page["sources"]["prometheus"] == {"status": "ok", "reason": None, "requests": 7}
    for server, entry in zip((FRAUD_EU, FRAUD_US), page["servers"], strict=True):
        for signal_id in ("request_rate", "error_ratio", "latency_p95", "gpu_utilization"):
            want = expected_series(signal_id, fleet, [server], grid(page), 300)
            assert_matches(signal(entry, signal_id), want)
    for signal_id in ("request_rate", "latency_p99", "gpu_memory"):
        want = expected_series(signal_id, fleet, [FRAUD_EU, FRAUD_US], grid(page), 300)
        assert_matches(signal(page["model"], signal_id), want)
    runs = {run["alias"]: run for run in page["training"]}
    assert (runs["champion"]["version"], runs["candidate"]["version"]) == (2, 1)
    assert runs["champion"]["runId"] == trained.runs[2]
    champion = runs["champion"]["metrics"]
    assert sorted(champion) == ["auc", "loss"]
    assert [p["value"] for p in champion["auc"]] == pytest.approx(trained.logged["champion"]["auc"])


@pytest.mark.prometheus
def test_a_triton_server_and_a_vllm_model(http, fleet):
    triton = http.get(
        f"{ROUTE}/default/component/image-classifier-eu-west-1",
        params={"range": "30m", "step": "1m", "end": at(fleet)},
        headers=AUTH,
    ).json()
    assert [s["name"] for s in triton["servers"]] == ["image-classifier"]
    for signal_id in ("latency_p95", "queue_depth", "queue_time"):
        want = expected_series(signal_id, fleet, [IMAGE_EU], grid(triton), 300)
        assert_matches(signal(triton["servers"][0], signal_id), want)
    llm = http.get(
        f"{ROUTE}/default/resource/support-llm",
        params={"range": "2h", "step": "2m", "end": at(fleet)},
        headers=AUTH,
    ).json()
    assert llm["window"]["points"] == 61
    for signal_id in (
        "generation_tokens",
        "kv_cache_usage",
        "queue_depth",
        "latency_p50",
        "ttft_p95",
    ):
        want = expected_series(signal_id, fleet, [LLM_EU, LLM_US], grid(llm), 300)
        got = signal(llm["model"], signal_id)
        # The fleet's history is 100 minutes: the older half of the 2 h window is empty.
        assert [p[0] for p in got["series"]] == [p[0] for p in want] and want
        assert [p[1] for p in got["series"]] == pytest.approx([p[1] for p in want], rel=1e-9)


@pytest.mark.prometheus
def test_over_the_limits_is_422_before_prometheus_is_asked(http, prom):
    before = prom.query_count()
    year = http.get(
        f"{ROUTE}/default/resource/fraud-detector",
        params={"range": "365d", "step": "1s"},
        headers=AUTH,
    )
    assert year.status_code == 422
    detail = year.json()["detail"]
    assert (
        "TRELLIS_PROMETHEUS__MAX_RANGE_DAYS" in detail
        and "TRELLIS_PROMETHEUS__MAX_POINTS" in detail
    )
    malformed = http.get(
        f"{ROUTE}/default/resource/fraud-detector", params={"range": "1 year"}, headers=AUTH
    )
    assert malformed.status_code == 422 and "range" in malformed.json()["detail"]
    assert prom.query_count() == before
    # A window no other case asks for: the app keeps pages a few seconds, and one kept page
    # would answer without asking Prometheus.
    unseen = {"range": "45m"}
    fresh = http.get(f"{ROUTE}/default/resource/fraud-detector", params=unseen, headers=AUTH)
    assert fresh.status_code == 200
    assert prom.query_count() == before + 7  # the count does move when Prometheus is asked


@pytest.mark.prometheus
def test_without_an_end_the_window_ends_now_and_the_data_is_fresh(http):
    page = http.get(f"{ROUTE}/default/resource/fraud-detector", headers=AUTH).json()
    end = datetime.fromisoformat(page["window"]["end"]).timestamp()
    assert time.time() - 120 < end <= time.time()
    statuses = {s["status"] for entry in page["servers"] for s in entry["signals"]}
    assert statuses == {"ok"}


@pytest.mark.prometheus
def test_an_entity_without_servers_still_shows_its_training(http):
    page = http.get(f"{ROUTE}/default/resource/no-servers", headers=AUTH).json()
    assert page["servers"] == [] and page["model"] == {"servers": 0, "signals": []}
    assert [run["alias"] for run in page["training"]] == ["champion", "candidate"]


@pytest.mark.prometheus
def test_the_catalog_index_is_used_when_nothing_overrides_it(tmp_path, registry, prom):
    uri, _ = registry
    with TestClient(create_app(settings(tmp_path, uri, prom.url))) as client:
        deadline = time.monotonic() + scaled(30)
        while not client.get("/readyz").json()["ready"] and time.monotonic() < deadline:
            time.sleep(0.1)
        page = client.get(f"{ROUTE}/default/resource/support-llm", headers=AUTH)
    assert page.status_code == 200, page.text
    body = page.json()
    assert body["servers"] == [] and body["training"][0]["metrics"]["perplexity"]


@pytest.mark.parametrize("prometheus", [None, "closed"])
def test_a_missing_or_down_prometheus_leaves_a_200_with_the_reason(tmp_path, registry, prometheus):
    uri, _ = registry
    url = f"http://127.0.0.1:{free_port()}" if prometheus else None
    app = create_app(settings(tmp_path, uri, url))
    app.dependency_overrides[entity_targets] = lambda: fleet_targets(uri)
    with TestClient(app) as client:
        response = client.get(f"{ROUTE}/default/resource/fraud-detector", headers=AUTH)
    assert response.status_code == 200
    page = response.json()
    reason = (
        "TRELLIS_PROMETHEUS__URL is not set"
        if url is None
        else f"cannot reach {url} (ConnectError)"
    )
    assert page["sources"]["prometheus"]["reason"] == reason
    statuses = {(s["status"], s["reason"]) for e in page["servers"] for s in e["signals"]}
    assert statuses == {("unavailable", reason)}
    assert page["sources"]["mlflow"]["status"] == "ok"
    assert page["training"][0]["metrics"]["loss"]


@pytest.mark.prometheus
def test_the_route_is_documented(http):
    spec = http.get("/openapi.json").json()
    operation = spec["paths"]["/api/observability/{namespace}/{kind}/{name}"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"range", "step", "end"}
    assert set(operation["responses"]) >= {"200", "404", "422"}
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ObservabilityPublic"}
