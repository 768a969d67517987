"""A registry that suddenly answers "no models" is held, never handed to Backstage.

A real MLflow server is restarted on the same port against a new, empty database (what an
operator's typo in ``--backend-store-uri`` does), and an SQLite registry file goes away.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from support.registry import ModelSpec, seed
from support.services import MlflowServer, free_port, wait_until
from support.timing import scaled
from trellis.app import create_app
from trellis.config import Settings
from trellis.errors import SourceUnavailable
from trellis.sources.mlflow import SqlRegistry

TOKEN = "drop-token-" + "x" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SPECS = [ModelSpec(f"model-{i}", {"owner": "risk"}, versions=1) for i in range(3)]


def settings(state: Path, uri: str, confirm_seconds: float) -> Settings:
    return Settings(
        state_dir=state,
        api_tokens=[TOKEN],
        mlflow={"tracking_uri": uri, "timeout_seconds": scaled(10)},
        catalog={"refresh_interval_seconds": 1, "drop_confirm_seconds": confirm_seconds},
    )


def resources(body: bytes) -> list[str]:
    documents = yaml.safe_load_all(body)
    return sorted(d["metadata"]["name"] for d in documents if d["kind"] == "Resource")


def held(http: TestClient) -> list[dict]:
    drops: list[dict] = http.get("/readyz").json()["drops_held"]
    return drops


def last_success(http: TestClient) -> datetime:
    return datetime.fromisoformat(http.get("/readyz").json()["sources"]["mlflow"]["last_success"])


def metric(http: TestClient, line: str) -> bool:
    return line in http.get("/metrics").text


def wait_fresh(http: TestClient) -> None:
    wait_until(
        lambda: (
            http.get("/readyz").json().get("snapshot", {}).get("models") == len(SPECS)
            and not http.get("/readyz").json()["stale"]
        ),
        timeout=scaled(20),
        what="the first read of the seeded registry",
    )


@pytest.mark.mlflow
def test_a_server_restarted_on_an_empty_database_is_held_until_confirmed(tmp_path):
    port = free_port()
    server = MlflowServer(db=tmp_path / "old" / "mlflow.db", port=port)
    server.db.parent.mkdir()
    server.start(timeout=scaled(60))
    try:
        seed(server.url, SPECS)
        # One app waits out a short confirmation period (held for one read at least, then
        # confirmed by the next); the other is confirmed by an operator.
        waiting = create_app(settings(tmp_path / "waiting", server.url, 1))
        confirmed = create_app(settings(tmp_path / "operator", server.url, 3_600))
        with TestClient(waiting) as wait_http, TestClient(confirmed) as op_http:
            wait_fresh(wait_http)
            wait_fresh(op_http)
            good = wait_http.get("/catalog/entities.yaml")
            assert resources(good.content) == ["model-0", "model-1", "model-2"]
            kept_file = (tmp_path / "operator" / "snapshot.json").read_bytes()

            server.stop()
            server = MlflowServer(db=tmp_path / "new" / "mlflow.db", port=port)
            server.db.parent.mkdir()
            server.start(timeout=scaled(60))
            restarted = datetime.now(UTC)
            wait_until(
                lambda: last_success(op_http) > restarted,
                timeout=scaled(20),
                what="a read of the restarted server",
            )
            # Backstage is still told about every model.
            assert op_http.get("/catalog/entities.yaml").content == good.content
            assert held(op_http), "the drop is not reported as held"
            assert held(op_http)[0] | {"since": None, "last_read": None, "confirms_at": None} == {
                "source": "mlflow",
                "kept": 3,
                "read": 0,
                "since": None,
                "last_read": None,
                "reads": held(op_http)[0]["reads"],
                "confirms_at": None,
            }
            served = op_http.get("/catalog/entities.yaml")
            assert served.status_code == 200
            assert served.content == good.content
            assert served.headers["x-trellis-stale"] == "true"
            assert op_http.get("/readyz").json()["stale"] is True
            assert metric(op_http, 'trellis_catalog_drop_held{source="mlflow"} 1.0')
            assert metric(
                op_http, 'trellis_catalog_drop_held_items{snapshot="read",source="mlflow"} 0.0'
            )
            assert (tmp_path / "operator" / "snapshot.json").read_bytes() == kept_file
            # Conditional reads keep Backstage's entities, too.
            again = op_http.get(
                "/catalog/entities.yaml", headers={"If-None-Match": good.headers["etag"]}
            )
            assert again.status_code == 304

            assert op_http.post("/api/catalog/drops/confirm").status_code == 401
            answer = op_http.post("/api/catalog/drops/confirm", headers=AUTH)
            assert answer.status_code == 200
            assert [(d["source"], d["kept"], d["read"]) for d in answer.json()["published"]] == [
                ("mlflow", 3, 0)
            ]
            assert resources(op_http.get("/catalog/entities.yaml").content) == []
            assert metric(
                op_http, 'trellis_catalog_drops_total{outcome="operator",source="mlflow"} 1.0'
            )
            assert op_http.post("/api/catalog/drops/confirm", headers=AUTH).status_code == 409

            # The other app publishes the drop once reads have repeated it for its period.
            wait_until(
                lambda: resources(wait_http.get("/catalog/entities.yaml").content) == [],
                timeout=scaled(30),
                what="the confirmation period to publish the drop",
            )
            assert held(wait_http) == []
            assert wait_http.get("/catalog/entities.yaml").headers["x-trellis-stale"] == "false"
            assert metric(
                wait_http, 'trellis_catalog_drops_total{outcome="confirmed",source="mlflow"} 1.0'
            )
    finally:
        server.stop()


def test_a_configured_sqlite_file_that_does_not_exist_is_an_error_and_is_not_created(tmp_path):
    missing = tmp_path / "mlfow.db"  # a typo of mlflow.db
    registry = SqlRegistry(f"sqlite:///{missing}", label="sqlite", timeout_seconds=scaled(10))
    with pytest.raises(SourceUnavailable, match="does not exist") as raised:
        registry.read()
    assert str(missing) in str(raised.value)
    assert not missing.exists()
    registry.close()
    # The embedded default may start empty: Trellis's own demo registry.
    embedded = tmp_path / "embedded.db"
    own = SqlRegistry(
        f"sqlite:///{embedded}", label="sqlite", timeout_seconds=scaled(30), create_missing=True
    )
    assert own.read().models == ()
    assert embedded.exists()
    own.close()


def test_an_sqlite_registry_that_goes_away_keeps_the_kept_snapshot(tmp_path):
    db = tmp_path / "registry" / "mlflow.db"
    db.parent.mkdir()
    uri = f"sqlite:///{db}"
    seed(uri, SPECS)
    with TestClient(create_app(settings(tmp_path / "state", uri, 3_600))) as http:
        wait_fresh(http)
        good = http.get("/catalog/entities.yaml").content
        shutil.rmtree(db.parent)
        wait_until(
            lambda: http.get("/readyz").json()["sources"]["mlflow"]["state"] == "failing",
            timeout=scaled(20),
            what="the missing file to be reported",
        )
        report = http.get("/readyz").json()
        assert str(db) in report["sources"]["mlflow"]["last_error"]
        assert report["stale"] is True
        assert http.get("/catalog/entities.yaml").content == good
        assert not db.exists()
