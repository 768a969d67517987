"""The catalog API over a real embedded registry (MLflow's SQLite store)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from support.registry import ModelSpec, client, seed
from support.services import free_port, wait_until
from support.timing import scaled
from trellis.app import create_app
from trellis.config import Settings

TOKEN = "test-token-" + "x" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SPECS = [
    ModelSpec("fraud-detector", {"owner": "risk", "system": "payments"}, versions=2, champion=2),
    ModelSpec("Churn Model", {"owner": "", "tags": "🔥"}, versions=1),
]


@pytest.fixture(scope="module")
def registry_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    uri = f"sqlite:///{tmp_path_factory.mktemp('api') / 'mlflow.db'}"
    seed(uri, SPECS)
    return uri


def settings(state: Path, uri: str, **catalog) -> Settings:
    return Settings(
        state_dir=state,
        api_tokens=[TOKEN],
        mlflow={
            "tracking_uri": uri,
            "ui_url": "http://mlflow.example",
            "timeout_seconds": scaled(5),
        },
        catalog={"refresh_interval_seconds": 1, **catalog},
    )


def wait_ready(http: TestClient, *, stale: bool | None = None) -> dict:
    deadline = time.monotonic() + scaled(30)
    while time.monotonic() < deadline:
        report = http.get("/readyz").json()
        if report["ready"] and (stale is None or report["stale"] is stale):
            return report
        time.sleep(0.1)
    raise AssertionError(f"not ready: {report}")


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory, registry_uri: str) -> Iterator[TestClient]:
    """One ready app for the cases that only read: each app start reads and scores the catalog.

    It never refreshes again, so what it serves cannot change under a case.
    """
    state = tmp_path_factory.mktemp("api-state")
    with TestClient(
        create_app(settings(state, registry_uri, refresh_interval_seconds=3600))
    ) as client:
        wait_ready(client)
        yield client


def test_entities_yaml_has_an_etag_and_answers_304(http):
    first = http.get("/catalog/entities.yaml")
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("application/yaml")
    docs = list(yaml.safe_load_all(first.content))
    assert {d["metadata"]["title"] for d in docs if d["kind"] == "Resource"} == {
        "fraud-detector",
        "Churn Model",
    }
    etag = first.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    again = http.get("/catalog/entities.yaml", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = http.get("/catalog/entities.yaml", headers={"If-None-Match": '"nope"'})
    assert other.status_code == 200

    as_json = http.get("/catalog/entities")
    assert as_json.json()["items"] == docs
    assert (
        http.get(
            "/catalog/entities", headers={"If-None-Match": as_json.headers["etag"]}
        ).status_code
        == 304
    )


def test_a_new_model_appears_after_the_next_refresh(tmp_path):
    uri = f"sqlite:///{tmp_path / 'own.db'}"
    seed(uri, SPECS[:1])
    with TestClient(create_app(settings(tmp_path / "state", uri))) as http:
        wait_ready(http)
        etag = http.get("/catalog/entities.yaml").headers["etag"]
        first_read = http.get("/readyz").json()["snapshot"]["taken_at"]
        wait_until(
            lambda: http.get("/readyz").json()["snapshot"]["taken_at"] > first_read,
            timeout=scaled(20),
            what="a second read of the unchanged registry",
        )
        assert http.get("/catalog/entities.yaml").headers["etag"] == etag
        seed(uri, [ModelSpec("brand-new")])
        deadline = time.monotonic() + scaled(20)
        while b"brand-new" not in http.get("/catalog/entities.yaml").content:
            assert time.monotonic() < deadline, "the new model never appeared"
            time.sleep(0.2)
        assert http.get("/catalog/entities.yaml").headers["etag"] != etag


def test_api_routes_need_the_token(http):
    assert http.get("/api/catalog/problems").status_code == 401
    wrong = http.get("/api/catalog/problems", headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert http.get("/api/catalog/problems", params={"token": TOKEN}).status_code == 401
    problems = http.get("/api/catalog/problems", headers=AUTH).json()["items"]
    assert {"model": "Churn Model", "severity": "warning"}.items() <= next(
        p for p in problems if "🔥" in p["message"]
    ).items()
    # Open routes stay open.
    for path in ("/healthz", "/readyz", "/metrics", "/catalog/entities.yaml"):
        assert http.get(path).status_code == 200, path


def test_a_protected_catalog_accepts_the_token_as_header_or_query(tmp_path, registry_uri):
    app = create_app(settings(tmp_path, registry_uri, requires_token=True))
    with TestClient(app) as http:
        wait_ready(http)
        assert http.get("/catalog/entities.yaml").status_code == 401
        assert http.get("/catalog/entities.yaml", params={"token": "bad"}).status_code == 401
        assert http.get("/catalog/entities.yaml", headers=AUTH).status_code == 200
        assert http.get("/catalog/entities.yaml", params={"token": TOKEN}).status_code == 200


def test_no_snapshot_and_no_registry_is_503_never_an_empty_200(tmp_path):
    down = f"http://127.0.0.1:{free_port()}"
    with TestClient(create_app(settings(tmp_path, down))) as http:
        time.sleep(0.5)
        response = http.get("/catalog/entities.yaml")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        ready = http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["sources"]["mlflow"]["state"] == "failing"


def test_the_kept_snapshot_is_served_when_the_registry_is_down(tmp_path, registry_uri):
    with TestClient(create_app(settings(tmp_path, registry_uri))) as http:
        wait_ready(http, stale=False)
        good = http.get("/catalog/entities.yaml")
    down = f"http://127.0.0.1:{free_port()}"
    with TestClient(create_app(settings(tmp_path, down))) as http:
        report = wait_ready(http, stale=True)
        assert report["snapshot"]["models"] == len(SPECS)
        assert report["snapshot"]["age_seconds"] >= 0
        served = http.get("/catalog/entities.yaml")
        assert served.status_code == 200
        assert served.content == good.content
        assert served.headers["etag"] == good.headers["etag"]
        assert served.headers["x-trellis-stale"] == "true"
        assert int(served.headers["x-trellis-snapshot-age"]) >= 0


def test_metrics_describe_requests_sources_and_the_catalog(http):
    http.get("/catalog/entities.yaml")
    text = http.get("/metrics").text
    assert (
        'trellis_http_request_duration_seconds_count{method="GET",route="/catalog/entities.yaml",status="200"}'
        in text
    )
    assert "trellis_catalog_entities 3.0" in text  # two models and one system
    assert "trellis_snapshot_age_seconds" in text
    assert "trellis_source_errors_total" in text


def test_a_corrupted_state_file_does_not_stop_the_service(tmp_path, registry_uri):
    (tmp_path / "snapshot.json").write_text("{broken")
    with TestClient(create_app(settings(tmp_path, registry_uri))) as http:
        assert wait_ready(http)["stale"] is False
    assert client(registry_uri).search_registered_models()  # the registry is untouched
