"""No configured secret leaves the process: not in any answer, not in any log line.

Every setting that can hold a secret gets a distinct random marker: the MLflow tracking URI's
userinfo and its token, Prometheus's URL userinfo and its token, the API tokens, the fact
store's password, the repositories' URLs (a token parameter, userinfo), the canonical
blueprint URL and the webhook secret. Trellis then runs against a real MLflow server, a real
Prometheus and a real PostgreSQL (which all ignore the credentials, so every read succeeds),
every route of the OpenAPI document is requested with real entity references, and every
body, every header and every log record at DEBUG (Trellis's own, uvicorn's, httpx's) is
searched for markers."""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from support.blueprints import VARIANTS
from support.gitrepos import blueprint_source, serve_directory
from support.postgres import PostgresServer, postgres_server
from support.prometheus import Samples, prometheus_with
from support.registry import ModelSpec, seed
from support.services import MlflowServer, TrellisServer, free_port, mlflow_server, wait_until
from support.timing import scaled
from trellis.app import create_app
from trellis.config import Settings
from trellis.services.webhooks import signature

pytestmark = [pytest.mark.mlflow, pytest.mark.postgres, pytest.mark.prometheus]

MODEL = "fraud-detector"
ENTITY = ("default", "resource", MODEL)


def marker(what: str) -> str:
    return f"mk{what}{secrets.token_hex(8)}"


@dataclass
class Upstreams:
    mlflow: MlflowServer
    prometheus: str
    postgres: PostgresServer
    repositories: str  # base URL of a raw-file host serving one generated repository
    source: Path


@pytest.fixture(scope="module")
def upstreams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstreams]:
    root = tmp_path_factory.mktemp("secrets")
    db = root / "mlflow.db"
    seed(
        f"sqlite:///{db}",
        [
            ModelSpec(
                MODEL,
                tags={
                    "owner": "group:default/risk",
                    "system": "payments",
                    "blueprint": "ml-model",
                    "blueprint_version": "1.0.0",
                },
                versions=2,
                champion=2,
            ),
            ModelSpec("churn-model", tags={"owner": "group:default/growth"}),
        ],
    )
    repo = root / "raw" / "acme" / "fraud" / "main"
    repo.mkdir(parents=True)
    (repo / ".copier-answers.yml").write_text(
        yaml.safe_dump({"blueprint": "ml-model", "_commit": "1.0.0", "_src_path": "gh:acme/t"})
    )
    entity = {"apiVersion": "backstage.io/v1alpha1", "kind": "Resource"}
    (repo / "catalog-info.yaml").write_text(
        yaml.safe_dump({**entity, "metadata": {"name": MODEL}, "spec": {"type": "ai-model"}})
    )
    samples = Samples()
    samples.add("up", {"job": "trellis-test"}, time.time() - 60, 1.0)
    with (
        mlflow_server(db) as mlflow,
        prometheus_with(samples, root / "prom") as prometheus,
        postgres_server() as postgres,
        serve_directory(root / "raw") as raw,
    ):
        yield Upstreams(mlflow, prometheus.url, postgres, raw, blueprint_source(root / "src"))


def with_userinfo(url: str, user: str, password: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{user}:{password}@{rest}"


@dataclass
class Secrets:
    markers: dict[str, str]
    env: dict[str, str]

    @property
    def token(self) -> str:
        return self.markers["api_token"]

    def found_in(self, text: str) -> list[str]:
        return sorted(name for name, value in self.markers.items() if value in text)


def configure(upstreams: Upstreams, state: Path) -> Secrets:
    """A distinct marker in every setting that can hold a secret, as environment variables."""
    names = [
        "api_token",
        "mlflow_user",
        "mlflow_password",
        "mlflow_token",
        "prometheus_user",
        "prometheus_password",
        "prometheus_token",
        "database_password",
        "repository_token",
        "missing_repository_token",
        "repository_password",
        "canonical_password",
        "webhook_secret",
    ]
    m = {name: marker(name.replace("_", "")) for name in names}
    raw = upstreams.repositories
    database = upstreams.postgres.database().replace("@", f":{m['database_password']}@", 1)
    repositories = [
        f"{raw}/acme/fraud/main?token={m['repository_token']}",
        f"{raw}/acme/missing/main?private_token={m['missing_repository_token']}",
        with_userinfo(f"{raw}/acme/fraud/main", "reader", m["repository_password"]),
    ]
    env = {
        "TRELLIS_STATE_DIR": str(state),
        "TRELLIS_API_TOKENS": m["api_token"],
        "TRELLIS_LOG_LEVEL": "debug",
        "TRELLIS_MLFLOW__TRACKING_URI": with_userinfo(
            upstreams.mlflow.url, m["mlflow_user"], m["mlflow_password"]
        ),
        "TRELLIS_MLFLOW__TOKEN": m["mlflow_token"],
        "TRELLIS_PROMETHEUS__URL": with_userinfo(
            upstreams.prometheus, m["prometheus_user"], m["prometheus_password"]
        ),
        "TRELLIS_PROMETHEUS__TOKEN": m["prometheus_token"],
        "TRELLIS_SCORECARDS__DATABASE_URL": database,
        "TRELLIS_BLUEPRINTS__SOURCE": str(upstreams.source),
        "TRELLIS_BLUEPRINTS__VCS_REF": "1.0.0",
        "TRELLIS_BLUEPRINTS__REPOSITORY_URL": with_userinfo(
            "https://git.example.com/platform/trellis.git", "ci", m["canonical_password"]
        ),
        "TRELLIS_BLUEPRINTS__REPOSITORIES": ",".join(repositories),
        "TRELLIS_WEBHOOKS__SECRET": m["webhook_secret"],
    }
    return Secrets(m, env)


def signed_delivery(secret: str) -> dict:
    """A ``model_version.created`` webhook signed with ``secret``, as MLflow sends it."""
    body = json.dumps({"entity": "model_version", "action": "created", "data": {}}).encode()
    delivery, stamp = secrets.token_hex(8), str(int(time.time()))
    headers = {
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": signature(secret, delivery, stamp, body),
    }
    return {"content": body, "headers": headers}


def requests_for_every_route(doc: dict, leaks: Secrets) -> dict[tuple[str, str], dict]:
    """One real request per operation of the OpenAPI document, with real entity references."""
    namespace, kind, name = ENTITY
    ref = f"{kind}:{namespace}/{name}"
    entity = {"namespace": namespace, "kind": kind, "name": name}
    now = time.time()
    day = 86_400
    iso = time.strftime
    window = {
        "startDatetime": iso("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - day)),
        "endDatetime": iso("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + day)),
    }
    path = f"{namespace}/{kind}/{name}"
    values = {**VARIANTS["sklearn-github-aws"], "repository": "acme/fraud-detector"}
    planned = {
        ("GET", "/healthz"): {},
        ("GET", "/readyz"): {},
        ("GET", "/metrics"): {},
        ("GET", "/catalog/entities.yaml"): {},
        ("GET", "/catalog/entities"): {},
        ("GET", "/api/catalog/problems"): {},
        ("POST", "/api/catalog/drops/confirm"): {},
        ("GET", "/api/blueprints"): {},
        ("GET", "/api/blueprints/repositories"): {},
        # The Resource the repositories' catalog-info.yaml names.
        ("GET", "/api/blueprints/currency/{namespace}/{kind}/{name}"): {
            "url": f"/api/blueprints/currency/default/resource/{MODEL}",
        },
        ("POST", "/api/blueprints/{name}/render"): {
            "url": "/api/blueprints/ml-model/render",
            "json": {"values": values},
        },
        ("GET", "/api/observability/{namespace}/{kind}/{name}"): {
            "url": f"/api/observability/{path}",
            "params": {"range": "1h"},
        },
        ("GET", "/api/scorecards"): {},
        ("GET", "/api/scorecards/{namespace}/{kind}/{name}"): {"url": f"/api/scorecards/{path}"},
        ("GET", "/api/tech-insights/checks"): {},
        ("POST", "/api/tech-insights/checks/run/{namespace}/{kind}/{name}"): {
            "url": f"/api/tech-insights/checks/run/{path}",
            "json": {},
        },
        ("POST", "/api/tech-insights/checks/run"): {"json": {"entities": [entity]}},
        ("GET", "/api/tech-insights/facts/latest"): {
            "params": {"entity": ref, "ids[]": ["mlflow-registry", "blueprint"]}
        },
        ("GET", "/api/tech-insights/facts/range"): {
            "params": {"entity": ref, "ids[]": ["mlflow-registry", "blueprint"], **window}
        },
        ("GET", "/api/tech-insights/fact-schemas"): {},
        ("POST", "/api/webhooks/mlflow"): signed_delivery(leaks.markers["webhook_secret"]),
    }
    operations = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    # A new route must be added here, so that it is searched too.
    assert operations == set(planned), operations ^ set(planned)
    planned[("GET", "/openapi.json")] = {}
    planned[("GET", "/docs")] = {}
    return {key: {"url": key[1], **request} for key, request in planned.items()}


def answers_of(send, doc: dict, leaks: Secrets) -> dict[tuple[str, str], httpx.Response]:
    auth = {"Authorization": f"Bearer {leaks.token}"}
    return {
        key: send(key[0], **{**request, "headers": {**auth, **request.get("headers", {})}})
        for key, request in requests_for_every_route(doc, leaks).items()
    }


def leaks_in_answers(answers: dict, leaks: Secrets) -> dict[str, list[str]]:
    """``{route: [names of the markers its answer holds]}`` for each answer that leaks."""
    found = {}
    for (method, route), response in answers.items():
        assert response.status_code < 500, (method, route, response.status_code, response.text)
        text = response.text + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        if leaked := leaks.found_in(text):
            found[f"{method} {route}"] = leaked
    return found


def test_no_answer_and_no_log_line_holds_a_configured_secret(
    upstreams, tmp_path, caplog, monkeypatch
):
    leaks = configure(upstreams, tmp_path / "state")
    for name, value in leaks.env.items():
        monkeypatch.setenv(name, value)  # read exactly as the process reads them
    caplog.set_level(logging.DEBUG)
    app = create_app(Settings())
    # Set after the app quietened them: their URL-bearing lines must be scrubbed, not absent.
    for noisy in ("httpx", "httpcore", "uvicorn", "uvicorn.error", "mlflow"):
        caplog.set_level(logging.DEBUG, logger=noisy)
    auth = {"Authorization": f"Bearer {leaks.token}"}
    with TestClient(app) as http:
        wait_until(
            lambda: http.get("/readyz").json()["ready"], timeout=scaled(30), what="a catalog"
        )
        wait_until(
            lambda: (
                http.get(f"/api/scorecards/{'/'.join(ENTITY)}", headers=auth).status_code == 200
            ),
            timeout=scaled(60),
            what="a scorecard run",
        )
        answers = answers_of(http.request, app.openapi(), leaks)

    records = caplog.records
    in_log = {
        f"{r.name}: {r.getMessage()}": leaks.found_in(f"{r.getMessage()}\n{r.exc_text or ''}")
        for r in records
    }
    in_log = {line: names for line, names in in_log.items() if names}
    assert {"answers": leaks_in_answers(answers, leaks), "log": in_log} == {
        "answers": {},
        "log": {},
    }
    assert leaks.found_in(caplog.text) == []
    assert any(r.name.startswith("httpx") for r in records), "no httpx line was captured"

    # The answers are real: the MLflow link is there (without its userinfo), the
    # repositories were read, and the one that is missing is a problem naming its host.
    entities = answers[("GET", "/catalog/entities")].json()
    model = next(e for e in entities["items"] if e["metadata"]["title"] == MODEL)
    links = [link["url"] for link in model["metadata"]["links"]]
    assert f"{upstreams.mlflow.url}/#/models/{MODEL}" in links
    survey = answers[("GET", "/api/blueprints/repositories")].json()
    assert len(survey["items"]) == 2
    [problem] = survey["problems"]
    assert problem["location"].startswith(f"{upstreams.repositories}/acme/missing/main?")
    currency = answers[("GET", "/api/blueprints/currency/{namespace}/{kind}/{name}")].json()
    assert (currency["blueprint"], currency["currentVersion"]) == ("ml-model", "1.0.0")
    assert (currency["status"], currency["upToDate"]) == ("ok", True)
    assert currency["location"].endswith("/acme/fraud/main?token=REDACTED")
    rendered = answers[("POST", "/api/blueprints/{name}/render")]
    assert rendered.status_code == 200, rendered.text
    taken = answers[("POST", "/api/webhooks/mlflow")]
    assert (taken.status_code, taken.json()) == (
        202,
        {"event": "model_version.created", "refresh": True},
    )


def test_trellis_serve_logs_no_secret_at_debug(upstreams, tmp_path):
    """The same through ``trellis serve``: its own logging set-up, uvicorn's loggers included."""
    leaks = configure(upstreams, tmp_path / "state")
    server = TrellisServer(tmp_path / "state", env=leaks.env, port=free_port()).start(
        timeout=scaled(60)
    )
    try:
        with httpx.Client(base_url=server.url, timeout=scaled(60)) as http:
            wait_until(
                lambda: http.get("/readyz").json()["ready"], timeout=scaled(30), what="a catalog"
            )
            doc = http.get("/openapi.json").json()
            answers = answers_of(http.request, doc, leaks)
    finally:
        server.stop()
    log = server.process_log.read_text()
    # The log is there, at debug level: each registry read names the registry it read.
    assert "DEBUG trellis.sources.mlflow: registry" in log and "Uvicorn running" in log
    leaked_lines = [line for line in log.splitlines() if leaks.found_in(line)]
    assert {"answers": leaks_in_answers(answers, leaks), "log": leaked_lines} == {
        "answers": {},
        "log": [],
    }
