"""A bad file on disk never stops the service: it starts, serves the registry, says what is wrong.

Each test starts the whole app (``create_app``, its background catalog and scorer) over a
real SQLite MLflow registry, with one bad file where Trellis reads it at start: the kept
snapshot, the SQLite fact store, the scorecard database's address, the kubeconfig, the
scorecard definitions.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from support.postgres import PostgresServer
from support.registry import ModelSpec, seed
from support.services import free_port
from support.timing import scaled
from trellis.app import create_app
from trellis.config import Settings
from trellis.wiring import default_scorecards

TOKEN = "bad-files-token-" + "b" * 20
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SPECS = [
    ModelSpec("fraud-detector", {"owner": "group:default/risk"}, versions=2, champion=2),
    ModelSpec("churn-model", {"owner": "group:default/growth"}, versions=1),
]
NAMES = {spec.name for spec in SPECS}


@pytest.fixture(scope="module")
def registry_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    uri = f"sqlite:///{tmp_path_factory.mktemp('registry') / 'mlflow.db'}"
    seed(uri, SPECS)
    return uri


def settings(state: Path, uri: str, **overrides: Any) -> Settings:
    return Settings(
        state_dir=state,
        api_tokens=[TOKEN],
        mlflow={"tracking_uri": uri, "timeout_seconds": 5},
        catalog={"refresh_interval_seconds": 1},
        scorecards={"interval_seconds": 5, **overrides.pop("scorecards", {})},
        **overrides,
    )


def served_models(http: TestClient) -> set[str]:
    answer = http.get("/catalog/entities.yaml")
    assert answer.status_code == 200, answer.text
    documents = list(yaml.safe_load_all(answer.content))
    return {d["metadata"]["title"] for d in documents if d["kind"] == "Resource"}


def wait_for(http: TestClient, check: Callable[[dict[str, Any]], bool], what: str) -> dict:
    """Poll ``/readyz`` until ``check`` holds for its report."""
    deadline = time.monotonic() + scaled(20)
    while True:
        report = http.get("/readyz").json()
        if check(report):
            return report
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last report: {report}")
        time.sleep(0.1)


def wait_live(http: TestClient) -> dict:
    """Until the catalog is read from the registry itself (not from a kept snapshot)."""
    return wait_for(http, lambda r: r["ready"] and not r["stale"], "a live catalog")


# --- the kept snapshot ------------------------------------------------------------------------


def _kept(taken_at: str = "2026-03-01T12:00:00+00:00", **model: object) -> dict[str, object]:
    good = {
        "name": "ghost-model", "description": "kept", "tags": {}, "aliases": {},
        "created_at": "2026-03-01T12:00:00+00:00", "updated_at": "2026-03-01T12:00:00+00:00",
        "versions": [],
    }  # fmt: skip
    snapshot = {"models": [{**good, **model}], "taken_at": taken_at, "registry": "sqlite:///x"}
    return {"format": 2, "snapshot": snapshot}


BAD_SNAPSHOTS = {
    "a number as a name": json.dumps(_kept(name=5)),
    "a list as a tag value": json.dumps(_kept(tags={"owner": ["risk"]})),
    "a null description": json.dumps(_kept(description=None)),
    "a taken_at without a time zone": json.dumps(_kept(taken_at="2026-03-01T12:00:00")),
    "garbage": "\x00\x01 not json at all",
}


@pytest.mark.parametrize("case", sorted(BAD_SNAPSHOTS))
def test_a_bad_snapshot_is_set_aside_and_the_registry_is_served(tmp_path, registry_uri, case):
    kept = tmp_path / "snapshot.json"
    kept.write_text(BAD_SNAPSHOTS[case])
    with TestClient(create_app(settings(tmp_path, registry_uri))) as http:
        report = wait_live(http)
        assert served_models(http) == NAMES  # the registry's, never the bad file's
        [aside] = report["files"]
    assert aside["file"] == str(kept) and "snapshot schema" in aside["reason"]
    [moved] = tmp_path.glob("snapshot.json.bad-*")
    assert aside["set_aside_as"] == str(moved)
    assert moved.read_text() == BAD_SNAPSHOTS[case]  # kept as it was, for a person to read
    assert kept.is_file()  # and a good one written in its place


def test_a_kept_snapshot_without_a_time_zone_never_gives_a_500(tmp_path, registry_uri):
    """The registry is down: nothing to serve but the bad file, which is refused, so 503."""
    (tmp_path / "snapshot.json").write_text(BAD_SNAPSHOTS["a taken_at without a time zone"])
    down = f"http://127.0.0.1:{free_port()}"
    with TestClient(create_app(settings(tmp_path, down))) as http:
        assert http.get("/readyz").status_code == 503
        assert http.get("/catalog/entities.yaml").status_code == 503
        assert http.get("/catalog/entities").status_code == 503
    assert list(tmp_path.glob("snapshot.json.bad-*"))


# --- the fact store ---------------------------------------------------------------------------


def test_a_damaged_sqlite_fact_store_is_set_aside_and_made_anew(tmp_path, registry_uri):
    store = tmp_path / "scorecards.db"
    store.write_bytes(b"not a database " * 500)
    with TestClient(create_app(settings(tmp_path, registry_uri))) as http:
        report = wait_for(http, lambda r: r["scorecards"]["last_run"], "a scorecard run")
        assert served_models(http) == NAMES
        assert report["scorecards"]["state"] == "ok"
        assert http.get("/api/scorecards", headers=AUTH).status_code == 200
        [aside] = report["files"]
    [moved] = tmp_path.glob("scorecards.db.bad-*")
    assert aside == {**aside, "file": str(store), "set_aside_as": str(moved)}
    assert moved.read_bytes() == b"not a database " * 500


SCORECARD_ROUTES = [
    ("GET", "/api/scorecards"),
    ("GET", "/api/scorecards/default/resource/fraud-detector"),
    ("POST", "/api/tech-insights/checks/run/default/resource/fraud-detector"),
    ("GET", "/api/tech-insights/facts/latest?entity=resource:default/fraud-detector"
     "&ids[]=mlflow-registry"),
]  # fmt: skip


@pytest.mark.postgres
def test_an_unreachable_scorecard_database_leaves_the_catalog_serving(
    tmp_path, registry_uri, postgres_on
):
    """PostgreSQL down at start: the catalog serves, scorecards say why, and it is retried."""
    port = free_port()
    url = f"postgresql+psycopg://postgres:s3cret-pw@127.0.0.1:{port}/postgres"
    app = create_app(settings(tmp_path, registry_uri, scorecards={"database_url": url}))
    with TestClient(app) as http:
        wait_live(http)
        assert served_models(http) == NAMES
        report = wait_for(
            http, lambda r: r["scorecards"]["state"] == "unavailable", "scorecards unavailable"
        )
        assert f"127.0.0.1:{port}" in report["scorecards"]["reason"]
        for method, route in SCORECARD_ROUTES:
            answer = http.request(method, route, headers=AUTH)
            assert answer.status_code == 503, (route, answer.text)
            assert answer.json()["detail"].startswith("scorecards unavailable: fact store "), route
            assert "s3cret-pw" not in answer.text
        assert "s3cret-pw" not in http.get("/readyz").text
        assert http.get("/readyz").status_code == 200

        assert http.get("/api/tech-insights/checks", headers=AUTH).status_code == 200

        postgres_on(port)  # the database comes up: a later run reaches it
        report = wait_for(http, lambda r: r["scorecards"]["last_run"] is not None, "a run")
        assert report["scorecards"]["state"] == "ok"
        assert http.get("/api/scorecards", headers=AUTH).status_code == 200


@pytest.fixture
def postgres_on() -> Iterator[Callable[[int], PostgresServer]]:
    """Starts a PostgreSQL server on a given port, and stops it after the test."""
    started: list[PostgresServer] = []

    def start(port: int) -> PostgresServer:
        server = PostgresServer(root=Path(tempfile.mkdtemp(prefix="trellis-postgres-")), port=port)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


# --- kubeconfig and scorecard definitions -----------------------------------------------------

BAD_KUBECONFIGS = {
    "not YAML": "apiVersion: v1\nclusters: [\n  - {name: hub\n",
    "a list": "- a\n- b\n",
    "wrong types": "contexts: 5\nclusters: 5\nusers: 5\n",
    "a context that is not a mapping": (
        "contexts:\n- name: hub\n  context: [token-abc123]\nclusters: []\nusers: []\n"
    ),
    "not text": "\udcff\udcfe binary",
}


@pytest.mark.parametrize("case", sorted(BAD_KUBECONFIGS))
def test_a_malformed_kubeconfig_fails_its_clusters_with_a_reason(tmp_path, registry_uri, case):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_bytes(BAD_KUBECONFIGS[case].encode("utf-8", "surrogateescape"))
    kubernetes = {"kubeconfig": str(kubeconfig), "contexts": ["hub"], "timeout_seconds": 2}
    with TestClient(create_app(settings(tmp_path, registry_uri, kubernetes=kubernetes))) as http:
        report = wait_for(http, lambda r: r["ready"] and r["sources"], "a catalog read")
        assert served_models(http) == NAMES
    hub = report["sources"]["kubernetes:hub"]
    assert hub["state"] == "failing"
    assert hub["last_error"].startswith(f"kubeconfig {kubeconfig}: ")
    assert "token-abc123" not in hub["last_error"]  # never the file's contents
    assert kubeconfig.read_bytes() == BAD_KUBECONFIGS[case].encode("utf-8", "surrogateescape")


BAD_DEFINITIONS = {
    "not YAML": b"name: broken\nchecks: [\n",
    "not UTF-8": b"name: \xff\xfe\n",
    "against the schema": b"name: 5\nchecks: {}\n",
}


@pytest.mark.parametrize("case", sorted(BAD_DEFINITIONS))
def test_bad_scorecard_definitions_at_first_start_are_reported(
    tmp_path, registry_uri, case, caplog
):
    directory = tmp_path / "scorecards"
    shutil.copytree(default_scorecards() or "scorecards", directory)
    (directory / "zz-bad.yaml").write_bytes(BAD_DEFINITIONS[case])
    app = create_app(settings(tmp_path, registry_uri, scorecards={"directory": str(directory)}))
    with TestClient(app) as http:
        wait_live(http)
        assert served_models(http) == NAMES
        report = wait_for(http, lambda r: r["scorecards"]["last_error"], "a failed scorecard run")
        answer = http.get("/api/scorecards", headers=AUTH)
    assert report["scorecards"]["state"] == "unavailable"
    assert "zz-bad.yaml" in report["scorecards"]["reason"]
    assert "zz-bad.yaml" in report["scorecards"]["definitions"]
    assert answer.status_code == 503 and "zz-bad.yaml" in answer.json()["detail"]
    assert not [r for r in caplog.records if r.exc_info], "a bad file is not a crash"
