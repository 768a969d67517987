"""Trellis's scorecards reach Backstage's Tech Insights frontend the documented way.

Everything is real and on 127.0.0.1: an MLflow registry (SQLite) with two models, ``trellis
serve`` scoring them every 5 s, and a Backstage backend with the proxy plugin configured with
exactly the ``tech-insights`` snippet of docs/backstage.md (Trellis's and Backstage's
addresses substituted, the token from the environment). Backstage runs with its default auth
policy, and the tests call it as a service with a static ``externalAccess`` token, as the
Tech Insights client sends a Backstage token.

Requests go where the frontend's client sends them: to the URL that Backstage's discovery
gives for the plugin id ``tech-insights``, plus the route.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from support.backstage import BackstageBackend
from support.registry import ModelSpec, client, seed
from support.services import TrellisServer, free_port, wait_until
from support.tech_insights import (
    Check,
    CheckResult,
    parse_bulk_check_response,
    parse_check_results,
    parse_checks,
)
from support.timing import scaled
from support.training import RunSpec, seed_trained

pytestmark = pytest.mark.backstage

REPO = Path(__file__).resolve().parents[2]
TRELLIS_TOKEN = "tech-insights-token-" + "t" * 24
BACKSTAGE_TOKEN = "backstage-service-token-" + "b" * 24
"""A Backstage credential: a static ``backend.auth.externalAccess`` token."""

DOC_TRELLIS = "trellis.internal:8080"
DOC_BACKSTAGE = "https://backstage.example.com"
PROXY_PATH = "/api/proxy/trellis/api/tech-insights"

OWNED = "fraud-detector"
"""Has an owner tag, a description and a champion with an accuracy of 0.93; no model card."""
BARE = "churn-model"
"""Has no tags, no description and no champion."""
MODEL_CHECKS = ["model-has-owner", "model-has-description", "model-has-model-card"]
EXPECTED = {
    OWNED: {"model-has-owner": True, "model-has-description": True, "model-has-model-card": False},
    BARE: {"model-has-owner": False, "model-has-description": False, "model-has-model-card": False},
}


def snippet(name: str, trellis: str, backstage: str) -> dict[str, Any]:
    """The ``app-config`` snippet ``name`` of docs/backstage.md, pointed at the test's hosts."""
    text = (REPO / "docs" / "backstage.md").read_text(encoding="utf-8")
    match = re.search(rf"<!-- snippet: {name} -->\n```yaml\n(.*?)```", text, re.S)
    assert match, f"docs/backstage.md has no snippet {name!r}"
    config: dict[str, Any] = yaml.safe_load(
        match.group(1).replace(DOC_TRELLIS, trellis).replace(DOC_BACKSTAGE, backstage)
    )
    return config


def defined_checks() -> dict[str, dict[str, Any]]:
    """Every check of scorecards/*.yaml, by id."""
    checks = {}
    for path in sorted((REPO / "scorecards").glob("*.yaml")):
        for check in yaml.safe_load(path.read_text(encoding="utf-8"))["checks"]:
            checks[check["id"]] = check
    return checks


def referenced_facts(condition: Any) -> set[str]:
    """The fact names a json-rules-engine condition tree reads."""
    if isinstance(condition, list):
        return set().union(*(referenced_facts(c) for c in condition))
    if not isinstance(condition, dict):
        return set()
    if "fact" in condition:
        return {condition["fact"]}
    return set().union(*(referenced_facts(condition.get(k, [])) for k in ("all", "any", "not")))


@dataclass
class Stack:
    trellis: TrellisServer
    backstage: BackstageBackend
    base: str
    """Where Backstage's discovery sends ``tech-insights``: the frontend's base URL."""
    caller: httpx.Client
    """Sends a Backstage token, like the frontend's client."""

    def direct(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Ask Trellis itself, with its own token."""
        headers = {"Authorization": f"Bearer {TRELLIS_TOKEN}"}
        return httpx.request(
            method, f"{self.trellis.url}/api/tech-insights{path}", headers=headers, **kwargs
        )

    def same_as_direct(self, method: str, path: str, body: Any = None) -> None:
        """The proxied answer is Trellis's own, byte for byte once parsed.

        A scorer run between the two requests changes time-dependent facts (the champion's
        age), so the pair is asked again when they differ.
        """
        for _ in range(3):
            proxied = self.caller.request(method, f"{self.base}{path}", json=body)
            direct = self.direct(method, path, json=body)
            if proxied.json() == direct.json():
                return
        assert proxied.json() == direct.json()

    def tech_insights_requests(self) -> int:
        """How many requests Trellis answered on its Tech Insights routes, from its metrics."""
        text = httpx.get(f"{self.trellis.url}/metrics").text
        pattern = (
            r"trellis_http_request_duration_seconds_count"
            r'\{[^}]*route="/api/tech-insights[^"]*"[^}]*\} ([0-9.]+)'
        )
        return int(sum(float(count) for count in re.findall(pattern, text)))


def seed_registry(uri: str) -> None:
    seed_trained(uri, OWNED, {1: RunSpec({"accuracy": [0.61, 0.93]})}, {"champion": 1})
    client(uri).update_registered_model(OWNED, description="Scores card payments for fraud.")
    seed(uri, [ModelSpec(BARE)])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("tech-insights")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        # Runs log no artifacts, but MLflow resolves their default location from here.
        patch.chdir(tmp)
        seed_registry(uri)
    trellis = TrellisServer(
        state_dir=tmp / "state",
        env={
            "TRELLIS_MLFLOW__TRACKING_URI": uri,
            "TRELLIS_API_TOKENS": TRELLIS_TOKEN,
            "TRELLIS_SCORECARDS__INTERVAL_SECONDS": "5",
        },
        port=free_port(),
    )
    trellis.state_dir.mkdir()

    def config(port: int) -> dict[str, Any]:
        documented = snippet(
            "tech-insights", f"127.0.0.1:{trellis.port}", f"http://127.0.0.1:{port}"
        )
        auth = {
            # The harness turns the default auth policy off; the proxy then checks nothing.
            "dangerouslyDisableDefaultAuthPolicy": False,
            "externalAccess": [
                {"type": "static", "options": {"token": BACKSTAGE_TOKEN, "subject": "tests"}}
            ],
        }
        assert "backend" not in documented
        return {**documented, "backend": {"auth": auth}}

    try:
        trellis.start()
        with contextlib.ExitStack() as running:
            with pytest.MonkeyPatch.context() as patch:
                # The documented snippet reads the token from the backend's environment.
                patch.setenv("TRELLIS_API_TOKEN", TRELLIS_TOKEN)
                backstage = running.enter_context(
                    BackstageBackend.start(
                        tmp / "backstage", locations=[], reading_allow=[], extra_config=config
                    )
                )
            wait_until(
                lambda: httpx.get(f"{trellis.url}/readyz").json()["scorecards"]["last_run"],
                timeout=scaled(30),
                what="the scorer's first run",
            )
            caller = running.enter_context(
                httpx.Client(
                    headers={"Authorization": f"Bearer {BACKSTAGE_TOKEN}"}, timeout=scaled(30)
                )
            )
            discovered = caller.get(f"{backstage.base_url}/api/discovery-probe/tech-insights")
            assert discovered.status_code == 200, discovered.text
            yield Stack(
                trellis=trellis,
                backstage=backstage,
                base=discovered.json()["externalBaseUrl"],
                caller=caller,
            )
    finally:
        trellis.stop()


def test_discovery_sends_the_frontend_to_trellis_through_the_proxy(stack: Stack) -> None:
    assert stack.base == f"{stack.backstage.base_url}{PROXY_PATH}"


def test_the_checks_are_trellis_s(stack: Stack) -> None:
    response = stack.caller.get(f"{stack.base}/checks")
    assert response.status_code == 200, response.text
    checks: list[Check] = parse_checks(response.json())
    defined = defined_checks()
    assert [check.id for check in checks] == list(defined)
    for check in checks:
        definition = defined[check.id]
        assert (check.name, check.description, check.factIds) == (
            definition["name"],
            definition["description"],
            definition["factIds"],
        )
        assert check.rule.conditions == definition["rule"]["conditions"]
    stack.same_as_direct("GET", "/checks")


@pytest.mark.parametrize("model", [OWNED, BARE])
def test_chosen_checks_of_a_model_follow_its_tags(stack: Stack, model: str) -> None:
    response = stack.caller.post(
        f"{stack.base}/checks/run/default/resource/{model}", json={"checks": MODEL_CHECKS}
    )
    assert response.status_code == 200, response.text
    results: list[CheckResult] = parse_check_results(response.json())
    assert {r.check.id: r.result for r in results} == EXPECTED[model]
    for result in results:
        [fact] = result.facts.values()
        assert fact.type == "boolean" and fact.value is result.result


@pytest.mark.parametrize("model", [OWNED, BARE])
def test_every_check_result_of_a_model_has_the_tech_insights_shape(
    stack: Stack, model: str
) -> None:
    # The frontend sends `{"checks": undefined}`, which is `{}` on the wire.
    response = stack.caller.post(f"{stack.base}/checks/run/default/resource/{model}", json={})
    assert response.status_code == 200, response.text
    results = parse_check_results(response.json())
    by_id = {r.check.id: r for r in results}
    assert {i: by_id[i].result for i in MODEL_CHECKS} == EXPECTED[model]
    assert by_id["model-has-champion"].result is (model == OWNED)
    if model == OWNED:
        accuracy = by_id["model-champion-accuracy"]
        assert accuracy.result is True
        assert accuracy.facts["championMetrics"].value == {"accuracy": 0.93}
    defined = defined_checks()
    for result in results:
        # As the reference backend does: the facts the check's conditions read, no others.
        assert set(result.facts) == referenced_facts(defined[result.check.id]["rule"]["conditions"])
    stack.same_as_direct("POST", f"/checks/run/default/resource/{model}", {})


def test_checks_of_several_models_at_once(stack: Stack) -> None:
    entities = [{"namespace": "default", "kind": "resource", "name": m} for m in (OWNED, BARE)]
    response = stack.caller.post(
        f"{stack.base}/checks/run", json={"entities": entities, "checks": MODEL_CHECKS}
    )
    assert response.status_code == 200, response.text
    answer = parse_bulk_check_response(response.json())
    assert [entry.entity for entry in answer] == [f"resource:default/{m}" for m in (OWNED, BARE)]
    for entry, model in zip(answer, (OWNED, BARE), strict=True):
        assert {r.check.id: r.result for r in entry.results} == EXPECTED[model]


def test_the_fact_schemas_are_trellis_s(stack: Stack) -> None:
    response = stack.caller.get(f"{stack.base}/fact-schemas")
    assert response.status_code == 200, response.text
    schemas = response.json()
    assert {s["id"] for s in schemas} == {
        "mlflow-registry",
        "prometheus-serving",
        "kubernetes-deployments",
        "blueprint",
        "model-lineage",
    }
    stack.same_as_direct("GET", "/fact-schemas")


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-backstage-token", f"Bearer {TRELLIS_TOKEN}"],
    ids=["no-credentials", "unknown-token", "trellis-s-own-token"],
)
def test_a_caller_without_backstage_credentials_is_refused_by_backstage(
    stack: Stack, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    asked = stack.tech_insights_requests()
    for method, path, body in [
        ("GET", "/checks", None),
        ("POST", f"/checks/run/default/resource/{OWNED}", {"checks": MODEL_CHECKS}),
        ("GET", "/fact-schemas", None),
    ]:
        response = httpx.request(method, f"{stack.base}{path}", headers=headers, json=body)
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"]["name"] == "AuthenticationError"
    # Backstage answered: the requests never reached Trellis.
    assert stack.tech_insights_requests() == asked


def test_the_tokens_stay_out_of_the_logs(stack: Stack) -> None:
    response = stack.caller.get(f"{stack.base}/checks")
    assert response.status_code == 200
    backstage_log = stack.backstage.log_path.read_text(encoding="utf-8", errors="replace")
    assert "/api/proxy/trellis" in backstage_log  # the log is the one that saw the requests
    assert TRELLIS_TOKEN not in backstage_log
    assert TRELLIS_TOKEN not in stack.backstage.config_path.read_text(encoding="utf-8")
    # The proxy replaces the caller's Backstage token; Trellis never sees it.
    trellis_log = stack.trellis.process_log.read_text(encoding="utf-8", errors="replace")
    assert BACKSTAGE_TOKEN not in trellis_log
    assert TRELLIS_TOKEN not in trellis_log
