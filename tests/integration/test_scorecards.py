"""Every shipped check for known models and servers, against a real registry and Prometheus.

The registry is a real ``mlflow server`` over models logged through MLflow's own client (real
logged models with and without signatures, runs with metrics and dataset inputs). Prometheus
is the session's backfilled fleet (``tests/integration/conftest.py``); serving facts are
expected from the generated samples, worked out in ``support.observability`` without asking
Prometheus. The blueprint source is a scratch git repository with three releases, and one
repository generated from its oldest.

No Kubernetes API server can run here, so the model servers are the ``Deployment`` objects
the Kubernetes source reports for the fleet's servers (``support.observability.deployment``);
how cluster objects become those is proven against recorded API answers in
``test_kubernetes_source.py``.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from support.blueprints import VARIANTS
from support.gitrepos import blueprint_source, generated_repo, release
from support.observability import (
    EU,
    FLAKY,
    FRAUD_EU,
    FRAUD_US,
    IMAGE_EU,
    IMAGE_US,
    LLM_EU,
    LLM_US,
    SILENT,
    STALE,
    deployment,
    fleet_facts,
)
from support.prometheus import Fleet, PrometheusServer, Server, prometheus_with
from support.registry import seed_lineage
from support.services import MlflowServer, mlflow_server, wait_until
from support.tech_insights import parse_bulk_check_response, parse_check_results, parse_checks
from support.timing import scaled
from support.training import Champion, log_champions
from trellis.api.deps import install_state, state_of
from trellis.app import create_app
from trellis.config import Settings
from trellis.model import Snapshot
from trellis.observability.queries import server_key
from trellis.scorecards import load_scorecards
from trellis.services.catalog_refresh import build_document
from trellis.services.scaffolding import Scaffolder
from trellis.services.scoring.pipeline import OneRead
from trellis.services.scoring.scorer import Scorer
from trellis.sources.blueprints import BlueprintSource
from trellis.sources.fact_store import FactStore
from trellis.sources.mlflow import RestRegistry
from trellis.sources.prometheus import PrometheusSource
from trellis.sources.repositories import Repositories
from trellis.wiring import catalog_options, default_scorecards, render_pool, scoring_options

pytestmark = [pytest.mark.mlflow, pytest.mark.prometheus]

SERVING, AVAILABILITY = 300, 3_600
TOKEN = "scorecards-token-" + "s" * 20
AUTH = {"Authorization": f"Bearer {TOKEN}"}
OWNER = "group:default/ml"
PASSED, FAILED, UNKNOWN = "passed", "failed", "unknown"

MODELS = [
    Champion(
        "fraud-detector",
        {
            "owner": OWNER,
            "system": "payments",
            "model_card": "https://git.example/fraud/docs/model-card.md",
            "data_classification": "confidential",
            "training_region": "eu-west-1",
            "blueprint": "ml-model",
            "blueprint_version": "1.1.0",
        },
        "Flags card fraud.",
        datasets=("transactions",),
        metrics={"accuracy": 0.93},
    ),
    Champion(
        "image-classifier",
        {
            "owner": OWNER,
            "data_classification": "internal",
            "training_region": "us-east-1",
            "blueprint": "ml-model",
            "blueprint_version": "1.0.0",
        },
        "Labels product photos.",
        signed=False,
        metrics={"accuracy": 0.7},
    ),
    Champion(
        "support-llm",
        {"owner": OWNER, "blueprint": "ml-model", "blueprint_version": "1.1.0-3-gabc1234"},
        champion=False,
    ),
    Champion(
        "churn-model",
        {
            "owner": "group:default/growth",
            "system": "payments",
            "model_card": "https://git.example/churn/card.md",
            "data_classification": "restricted",
            "training_region": "eu-west-1",
        },
        "Predicts churn.",
        datasets=("customers",),
        metrics={"accuracy": 0.85},
    ),
    Champion(
        "recommender",
        {
            "owner": "group:default/growth",
            "model_card": "https://git.example/rec/card.md",
            "data_classification": "internal",
            "training_region": "eu-west-1",
        },
        "Ranks products.",
        datasets=("clicks",),
        metrics={"ndcg": 0.41},  # no accuracy: the accuracy check reads a missing field
    ),
]
#: Registered 120 days before the checks run: older than the 90 days allowed.
OLD_CHAMPION = "image-classifier"
#: An open model imported into the registry, and a restricted adapter of it tuned on data in
#: eu-west-1 that the LLM servers load in both regions (tagged by ``seed_lineage``).
OPEN_MODEL, ADAPTER = "support-llm-base", "support-llm-base-eu-west-1"

# Registry and governance checks per model, from the models above.
MODEL_OUTCOMES = {
    "fraud-detector": {
        **dict.fromkeys(
            [
                "model-has-owner",
                "model-has-description",
                "model-has-model-card",
                "model-has-signature",
                "model-has-champion",
                "model-dataset-lineage",
                "model-champion-fresh",
                "model-champion-accuracy",
                "governance-data-classification",
                "governance-training-region",
                "governance-blueprint-current",  # 1.1.0: one minor line behind 1.2.0
            ],
            PASSED,
        ),
        "governance-serving-regions": FAILED,  # confidential, trained in eu, served in us too
        "governance-network-policy": FAILED,  # its us server has none
    },
    "image-classifier": {
        "model-has-owner": PASSED,
        "model-has-description": PASSED,
        "model-has-model-card": FAILED,
        "model-has-signature": FAILED,
        "model-has-champion": PASSED,
        "model-dataset-lineage": FAILED,
        "model-champion-fresh": FAILED,
        "model-champion-accuracy": FAILED,
        "governance-data-classification": PASSED,
        "governance-training-region": PASSED,
        "governance-serving-regions": PASSED,  # internal: anywhere
        "governance-network-policy": PASSED,
        "governance-blueprint-current": FAILED,  # 1.0.0: two minor lines behind
    },
    "support-llm": {
        "model-has-owner": PASSED,
        "model-has-description": FAILED,
        "model-has-model-card": FAILED,
        "model-has-signature": UNKNOWN,  # no champion: nothing to say of its signature
        "model-has-champion": FAILED,
        "model-dataset-lineage": UNKNOWN,
        "model-champion-fresh": UNKNOWN,
        "model-champion-accuracy": UNKNOWN,
        "governance-data-classification": FAILED,
        "governance-training-region": FAILED,
        "governance-serving-regions": PASSED,
        "governance-network-policy": PASSED,
        "governance-blueprint-current": UNKNOWN,  # a commit after a tag is not a release
    },
    "churn-model": {
        **dict.fromkeys(
            [
                "model-has-owner",
                "model-has-description",
                "model-has-model-card",
                "model-has-signature",
                "model-has-champion",
                "model-dataset-lineage",
                "model-champion-fresh",
                "model-champion-accuracy",
                "governance-data-classification",
                "governance-training-region",
                "governance-network-policy",
            ],
            PASSED,
        ),
        "governance-serving-regions": FAILED,  # restricted, trained in eu, served in us too
        "governance-blueprint-current": UNKNOWN,  # no blueprint recorded
    },
    "recommender": {
        **dict.fromkeys(
            [
                "model-has-owner",
                "model-has-description",
                "model-has-model-card",
                "model-has-signature",
                "model-has-champion",
                "model-dataset-lineage",
                "model-champion-fresh",
                "governance-data-classification",
                "governance-training-region",
                "governance-serving-regions",
                "governance-network-policy",
            ],
            PASSED,
        ),
        "model-champion-accuracy": FAILED,
        "governance-blueprint-current": UNKNOWN,
    },
    # Seeded without runs or description: the readiness checks of a run cannot pass.
    OPEN_MODEL: {
        **dict.fromkeys(
            [
                "model-has-owner",
                "model-has-champion",
                "model-champion-fresh",
                "governance-data-classification",
                "governance-serving-regions",
                "governance-network-policy",
                "open-model-license-allowed",  # apache-2.0
                "open-model-revision-pinned",
                "open-model-checksum",
            ],
            PASSED,
        ),
        **dict.fromkeys(
            [
                "model-has-description",
                "model-has-model-card",
                "model-dataset-lineage",
                "model-champion-accuracy",
                "governance-training-region",  # an import is not trained anywhere
            ],
            FAILED,
        ),
        "model-has-signature": UNKNOWN,  # no logged model to read
        "governance-blueprint-current": UNKNOWN,
    },
    ADAPTER: {
        **dict.fromkeys(
            [
                "model-has-owner",
                "model-has-champion",
                "model-champion-fresh",
                "governance-data-classification",
                "governance-training-region",
                "governance-network-policy",
                "adapter-trained-in-data-region",
                "adapter-lineage-recorded",
                "adapter-champion-gate-passed",  # version 1 passed; the failed 2 is not champion
            ],
            PASSED,
        ),
        **dict.fromkeys(
            [
                "model-has-description",
                "model-has-model-card",
                "model-dataset-lineage",
                "model-champion-accuracy",
                # Restricted, tuned on eu-west-1 data, and loaded by the us-east-1 LLM server.
                "governance-serving-regions",
                "adapter-served-where-allowed",
            ],
            FAILED,
        ),
        "model-has-signature": UNKNOWN,
        "governance-blueprint-current": UNKNOWN,
    },
}

SERVERS = [FRAUD_EU, FRAUD_US, IMAGE_EU, IMAGE_US, LLM_EU, LLM_US, STALE, SILENT, FLAKY]


def served(server: Server):
    """The fleet's server as the Kubernetes source reports it, with a few deliberate flaws."""
    found = replace(deployment(server), runs_as_non_root=True)
    if server is FRAUD_US:
        found = replace(found, network_policy=False)
    if server is IMAGE_EU:
        found = replace(found, runs_as_non_root=None)  # the manifest does not say
    if server in (LLM_EU, LLM_US):
        found = replace(found, adapters=(ADAPTER,))
    if server is LLM_US:
        found = replace(found, gpu_limits=2)  # requests 1 GPU per replica, limited to 2
    if server is STALE:
        found = replace(found, labels={"trellis.dev/environment": "staging"})
    return found


def expected_server_outcomes(fleet: Fleet, server: Server) -> dict[str, str]:
    """Each serving check's outcome from the samples and the deployment, independently."""
    found = served(server)
    facts = fleet_facts(fleet, server, SERVING, AVAILABILITY)

    def below(fact: str, limit: float) -> str:
        return UNKNOWN if fact not in facts else PASSED if facts[fact] < limit else FAILED

    gpu = facts.get("gpuUtilization")
    return {
        "server-non-root": PASSED if found.runs_as_non_root else FAILED,
        "server-gpu-requests-limits": PASSED if found.gpu_requests == found.gpu_limits else FAILED,
        "server-latency-p95": below("latencyP95", 0.5),
        "server-error-ratio": below("errorRatio", 0.01),
        "server-availability": UNKNOWN
        if "availability" not in facts
        else PASSED
        if facts["availability"] >= 0.995
        else FAILED,
        "server-gpu-utilisation": UNKNOWN
        if gpu is None
        else PASSED
        if 0.2 <= gpu <= 0.9
        else FAILED,
        "server-production-replicas": PASSED
        if found.labels.get("trellis.dev/environment", "production") != "production"
        or found.ready_replicas >= 2
        else FAILED,
    }


# --- the sources ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def registry_db(tmp_path_factory: pytest.TempPathFactory, fleet: Fleet) -> Path:
    root = tmp_path_factory.mktemp("scorecards-mlflow")
    scratch = root / "scratch"
    scratch.mkdir()
    db = root / "mlflow.db"
    log_champions(db, scratch, MODELS)
    seed_lineage(f"sqlite:///{db}", OPEN_MODEL, {ADAPTER: EU})
    registered = datetime.fromtimestamp(fleet.end, UTC) - timedelta(days=120)
    with sqlite3.connect(db) as conn:  # the registry's own record of when it was registered
        conn.execute(
            "UPDATE model_versions SET creation_time = ? WHERE name = ?",
            (int(registered.timestamp() * 1000), OLD_CHAMPION),
        )
    return db


@pytest.fixture(scope="module")
def mlflow(registry_db: Path) -> Iterator[MlflowServer]:
    with mlflow_server(registry_db) as server:
        yield server


@pytest.fixture(scope="module")
def blueprints(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Releases 1.0.0, 1.1.0 and 1.2.0, and a repository still on 1.0.0."""
    root = tmp_path_factory.mktemp("scorecards-blueprints")
    source = blueprint_source(root / "trellis")
    release(source, "1.1.0", "- The catalog entry says who manages it.")
    release(source, "1.2.0", "- Serving manifests set resource limits.")
    repo = generated_repo(source, root / "fraud-detector", VARIANTS["sklearn-github-aws"])
    return source, repo


def settings_for(state: Path, mlflow: MlflowServer, prom: str | None, **scorecards) -> Settings:
    return Settings(
        state_dir=state,
        api_tokens=[TOKEN],
        mlflow={"tracking_uri": mlflow.url},
        prometheus={"url": prom, "timeout_seconds": scaled(5)},
        scorecards={
            "serving_window_seconds": SERVING,
            "availability_window_seconds": AVAILABILITY,
            **scorecards,
        },
    )


def one_read(settings: Settings, registry: RestRegistry, servers: list[Server]) -> OneRead:
    snapshot: Snapshot = replace(registry.read(), deployments=tuple(map(served, servers)))
    return OneRead(registry, build_document(snapshot, catalog_options(settings)), snapshot)


def scorer_for(
    settings: Settings,
    mlflow: MlflowServer,
    servers: list[Server],
    *,
    blueprints: tuple[Path, Path] | None,
    at: float,
    directory: Path | None = None,
) -> Scorer:
    registry = RestRegistry(httpx.Client(base_url=mlflow.url, timeout=scaled(30)), label=mlflow.url)
    scaffolder = None
    if blueprints is not None:
        source, repo = blueprints
        scaffolder = Scaffolder(
            BlueprintSource(str(source)),
            renders=render_pool(),
            reader=Repositories(),
            repositories=[str(repo)],
        )
    url = settings.prometheus.url
    prometheus = PrometheusSource(httpx.Client(base_url=url, timeout=scaled(5))) if url else None
    return Scorer(
        catalog=one_read(settings, registry, servers),
        store=FactStore(settings.scorecard_database_url),
        directory=directory or default_scorecards(),
        options=scoring_options(settings),
        prometheus=prometheus,
        scaffolder=scaffolder,
        clock=lambda: datetime.fromtimestamp(at, UTC),
    )


def finish(scorer: Scorer) -> None:
    """Stop the scorer, and close the registry the test lent it (the catalog's, in the app)."""
    scorer.stop()
    scorer.pipeline.catalog.registry.close()


@pytest.fixture(scope="module")
def scored(
    tmp_path_factory: pytest.TempPathFactory,
    mlflow: MlflowServer,
    prom: PrometheusServer,
    fleet: Fleet,
    blueprints: tuple[Path, Path],
) -> Iterator[Scorer]:
    state = tmp_path_factory.mktemp("scorecards-state")
    scorer = scorer_for(
        settings_for(state, mlflow, prom.url), mlflow, SERVERS, blueprints=blueprints, at=fleet.end
    )
    report = scorer.run_once()
    assert report.unavailable == {}, report.unavailable
    yield scorer
    finish(scorer)


def server_refs(scorer: Scorer) -> dict[tuple[str, str, str], str]:
    targets = scorer.pipeline.catalog.document().targets
    return {
        server_key(target.deployments[0]): ref
        for ref, target in targets.items()
        if ref.startswith("component:") and target.deployments
    }


def outcomes_of(scorer: Scorer, ref: str) -> dict[str, str]:
    kept, _ = scorer.queries.kept([ref])
    return {check: outcome.outcome.value for check, outcome in kept[ref].items()}


# --- every shipped check, for known models and servers ----------------------------------------


@pytest.mark.parametrize("model", sorted(MODEL_OUTCOMES))
def test_each_model_gets_the_expected_outcome_of_every_model_check(scored, model):
    assert outcomes_of(scored, f"resource:default/{model}") == MODEL_OUTCOMES[model]


@pytest.mark.parametrize("server", SERVERS, ids=lambda s: "-".join(s.key[1:]))
def test_each_server_gets_the_outcome_its_samples_and_manifest_give(scored, fleet, server):
    ref = server_refs(scored)[server.key]
    assert outcomes_of(scored, ref) == expected_server_outcomes(fleet, server)


def test_the_fleet_covers_every_shipped_check_and_every_outcome(scored, fleet):
    seen: dict[str, set[str]] = {}
    for ref in scored.queries.entities():
        for check, outcome in outcomes_of(scored, ref).items():
            seen.setdefault(check, set()).add(outcome)
    shipped = {c.id for s in load_scorecards(default_scorecards()) for c in s.checks}
    assert set(seen) == shipped
    assert set().union(*seen.values()) == {PASSED, FAILED, UNKNOWN}
    # A serving check is unknown only for servers Prometheus has no samples of.
    silent = outcomes_of(scored, server_refs(scored)[SILENT.key])
    assert silent["server-latency-p95"] == UNKNOWN
    assert silent["server-non-root"] == PASSED


def test_a_generated_repository_is_scored_on_its_blueprint(scored):
    (ref,) = [
        ref
        for ref, entity in scored.queries.entities().items()
        if entity["kind"] == "Component"
        and "trellis.dev/blueprint" in entity["metadata"].get("annotations", {})
    ]
    assert outcomes_of(scored, ref) == {
        "blueprint-at-most-one-behind": FAILED,  # on 1.0.0, two releases behind 1.2.0
        "blueprint-up-to-date": FAILED,
    }
    report = scored.queries.entity_report(ref)
    (scorecard,) = report["scorecards"]
    facts = scorecard["checks"][0]["facts"]["blueprint"]
    assert facts["versionsBehind"] == 2 and facts["latestVersion"] == "1.2.0"


def test_the_entity_report_explains_each_outcome(scored):
    report = scored.queries.entity_report("resource:default/support-llm")
    by_name = {s["name"]: s for s in report["scorecards"]}
    assert set(by_name) == {"ml-model", "governance"}
    readiness = {c["id"]: c for c in by_name["ml-model"]["checks"]}
    assert readiness["model-has-signature"]["reasons"] == [
        "no version carries the `champion` alias"
    ]
    assert readiness["model-has-champion"]["reasons"] == ["hasChampion is false; wanted equal true"]
    assert by_name["ml-model"]["level"] is None  # no description: not even bronze
    fraud = scored.queries.entity_report("resource:default/fraud-detector")
    levels = {s["name"]: s["level"] for s in fraud["scorecards"]}
    assert levels == {"ml-model": "gold", "governance": "bronze"}


def test_the_fleet_rollup_counts_levels_by_owner_and_system(scored):
    report = scored.queries.fleet_report()
    readiness = next(s for s in report["scorecards"] if s["name"] == "ml-model")
    assert readiness["entities"] == len(MODELS) + 2  # and the open model and its adapter
    # support-llm, the open model and the adapter have no description, image-classifier no
    # model card, recommender no accuracy; fraud-detector and churn-model pass everything.
    assert readiness["levels"] == {"none": 3, "bronze": 1, "silver": 1, "gold": 2}
    assert readiness["byOwner"][OWNER] == {"none": 1, "bronze": 1, "silver": 0, "gold": 1}
    assert readiness["byOwner"]["group:default/growth"]["gold"] == 1
    assert readiness["byOwner"]["group:default/llm-platform"]["none"] == 2
    assert readiness["bySystem"] == {
        "system:default/payments": {"none": 0, "bronze": 0, "silver": 0, "gold": 2},
        "system:default/assistants": {"none": 1, "bronze": 0, "silver": 0, "gold": 0},
    }
    residency = next(s for s in report["scorecards"] if s["name"] == "adapter-residency")
    assert (residency["entities"], residency["levels"]["bronze"]) == (1, 1)  # served in us too


# --- the Tech Insights contract, through the app's routes -------------------------------------


@pytest.fixture(scope="module")
def api(scored: Scorer, mlflow: MlflowServer, tmp_path_factory) -> TestClient:
    """The real app with its scorer replaced by the one that ran above (no lifespan)."""
    app = create_app(settings_for(tmp_path_factory.mktemp("api-state"), mlflow, None))
    install_state(app, replace(state_of(app), scores=scored.queries))
    return TestClient(app)


def test_checks_parse_as_the_tech_insights_frontend_reads_them(api):
    response = api.get("/api/tech-insights/checks", headers=AUTH)
    assert response.status_code == 200
    checks = parse_checks(response.json())
    assert {c.type for c in checks} == {"json-rules-engine"}
    assert "governance-serving-regions" in {c.id for c in checks}


def test_check_results_parse_as_check_results_and_leave_unknowns_out(api, scored):
    response = api.post(
        "/api/tech-insights/checks/run/default/resource/support-llm", headers=AUTH, json={}
    )
    assert response.status_code == 200
    results = parse_check_results(response.json())
    known = {c: o for c, o in MODEL_OUTCOMES["support-llm"].items() if o != UNKNOWN}
    assert {r.check.id: r.result for r in results} == {c: o == PASSED for c, o in known.items()}
    owner = next(r for r in results if r.check.id == "model-has-owner")
    assert owner.facts["hasOwner"].value is True and owner.facts["hasOwner"].type == "boolean"


def test_bulk_results_and_a_chosen_subset_of_checks(api, scored):
    refs = server_refs(scored)
    server = refs[FRAUD_EU.key].split("/", 1)[1]
    body = {
        "checks": ["server-latency-p95", "model-has-owner"],
        "entities": [
            {"namespace": "default", "kind": "Component", "name": server},
            {"namespace": "default", "kind": "Resource", "name": "fraud-detector"},
        ],
    }
    response = api.post("/api/tech-insights/checks/run", headers=AUTH, json=body)
    assert response.status_code == 200
    entries = parse_bulk_check_response(response.json())
    assert [e.entity for e in entries] == [refs[FRAUD_EU.key], "resource:default/fraud-detector"]
    assert [[r.check.id for r in e.results] for e in entries] == [
        ["server-latency-p95"],
        ["model-has-owner"],
    ]
    bad = api.post("/api/tech-insights/checks/run", headers=AUTH, json={**body, "checks": ["x"]})
    assert bad.status_code == 400 and "'x'" in bad.json()["detail"]


def test_facts_latest_range_and_schemas(api, fleet):
    entity = "resource:default/fraud-detector"
    missing = api.get("/api/tech-insights/facts/latest", params={"entity": entity}, headers=AUTH)
    assert missing.status_code == 422
    # The frontend's query-string library writes arrays as ids[0]=...&ids[1]=...
    latest = api.get(
        "/api/tech-insights/facts/latest",
        params={"entity": entity, "ids[0]": "mlflow-registry", "ids[1]": "blueprint"},
        headers=AUTH,
    )
    assert latest.status_code == 200
    body = latest.json()
    assert set(body) == {"mlflow-registry", "blueprint"}
    row = body["mlflow-registry"]
    assert row["entity"] == {"namespace": "default", "kind": "resource", "name": "fraud-detector"}
    assert row["facts"]["datasets"] == ["transactions"]
    assert row["facts"]["championMetrics"] == {"accuracy": 0.93}
    end = datetime.fromtimestamp(fleet.end, UTC)
    history = api.get(
        "/api/tech-insights/facts/range",
        params={
            "entity": entity,
            "ids[]": "mlflow-registry",
            "startDatetime": (end - timedelta(hours=1)).isoformat(),
            "endDatetime": (end + timedelta(hours=1)).isoformat(),
        },
        headers=AUTH,
    )
    assert history.status_code == 200
    assert [r["facts"]["hasOwner"] for r in history.json()["mlflow-registry"]] == [True]
    schemas = api.get(
        "/api/tech-insights/fact-schemas", params={"ids[]": "blueprint"}, headers=AUTH
    )
    assert [s["id"] for s in schemas.json()] == ["blueprint"]
    assert (
        api.get("/api/tech-insights/fact-schemas", params={"ids": "nope"}, headers=AUTH).status_code
        == 422
    )


def test_scorecard_routes_need_the_token_and_404_an_unknown_entity(api):
    assert api.get("/api/scorecards").status_code == 401
    assert api.get("/api/tech-insights/checks").status_code == 401
    unknown = api.get("/api/scorecards/default/resource/no-such-model", headers=AUTH)
    assert unknown.status_code == 404
    known = api.get("/api/scorecards/default/resource/fraud-detector", headers=AUTH)
    assert [s["name"] for s in known.json()["scorecards"]] == ["governance", "ml-model"]
    fleet = api.get("/api/scorecards", headers=AUTH).json()
    assert fleet["entities"] > len(MODELS)


# --- outages, restarts and bad definitions ----------------------------------------------------


def test_prometheus_stopped_mid_run_makes_serving_checks_unknown_then_they_come_back(
    tmp_path: Path, mlflow: MlflowServer
):
    """The scorer's own loop runs against a Prometheus that is stopped, then started again."""
    now = time.time()
    fleet = Fleet(begin=now - 30 * 60, end=now)
    fleet.add(FRAUD_EU)
    with prometheus_with(fleet.samples, tmp_path / "prom") as prom:
        settings = settings_for(tmp_path / "state", mlflow, prom.url, interval_seconds=5)
        scorer = scorer_for(settings, mlflow, [FRAUD_EU], blueprints=None, at=time.time())
        scorer.pipeline.clock = lambda: datetime.now(UTC)
        scorer.start()
        try:
            ref = server_refs(scorer)[FRAUD_EU.key]
            model = "resource:default/fraud-detector"

            def runs_after(moment: datetime) -> bool:
                last = scorer.queries.health()["last_run"]
                return last is not None and datetime.fromisoformat(last["at"]) > moment

            wait_until(
                lambda: runs_after(datetime.min.replace(tzinfo=UTC)),
                timeout=scaled(60),
                what="the first run",
            )
            before = outcomes_of(scorer, ref)
            registry_before = outcomes_of(scorer, model)
            assert before["server-latency-p95"] in {PASSED, FAILED}

            prom.stop()
            stopped = datetime.now(UTC)
            wait_until(lambda: runs_after(stopped), timeout=60, what="a run without Prometheus")
            during = outcomes_of(scorer, ref)
            serving = {
                c
                for c in before
                if c in {"server-latency-p95", "server-error-ratio", "server-availability"}
            }
            assert {during[c] for c in serving} == {UNKNOWN}
            assert FAILED not in {during[c] for c in serving}
            assert during["server-non-root"] == before["server-non-root"]  # still evaluated
            assert outcomes_of(scorer, model) == registry_before
            health = scorer.queries.health()
            assert "prometheus-serving" in health["last_run"]["unavailable"]
            assert health["last_error"] is None  # nothing crashed
            kept, _ = scorer.queries.kept([ref])
            assert "Prometheus could not be read" in kept[ref]["server-latency-p95"].reasons[0]

            prom.start()
            back = datetime.now(UTC)
            wait_until(lambda: runs_after(back), timeout=60, what="a run with Prometheus back")
            assert outcomes_of(scorer, ref) == before
        finally:
            finish(scorer)


def test_a_restart_serves_what_was_kept_before_its_first_run(
    tmp_path: Path, mlflow: MlflowServer, prom: PrometheusServer, fleet: Fleet
):
    settings = settings_for(tmp_path / "state", mlflow, prom.url)
    first = scorer_for(settings, mlflow, [FRAUD_EU], blueprints=None, at=fleet.end)
    first.run_once()
    kept = first.queries.entity_report("resource:default/fraud-detector")
    finish(first)

    again = scorer_for(settings, mlflow, [FRAUD_EU], blueprints=None, at=fleet.end)
    try:
        again.pipeline.definitions.reload()
        report = again.queries.entity_report("resource:default/fraud-detector")
        assert report["scorecards"] == kept["scorecards"]
        assert again.queries.fleet_report()["scorecards"] != []
    finally:
        finish(again)


def test_a_bad_definition_keeps_the_last_valid_set_and_says_which_file(
    tmp_path: Path, mlflow: MlflowServer, fleet: Fleet
):
    directory = tmp_path / "scorecards"
    shutil.copytree(default_scorecards(), directory)
    settings = settings_for(tmp_path / "state", mlflow, None)
    scorer = scorer_for(settings, mlflow, [], blueprints=None, at=fleet.end, directory=directory)
    try:
        scorer.run_once()
        good = {s.name for s in scorer.queries.scorecards()}
        broken = directory / "ml-model.yaml"
        broken.write_text(broken.read_text().replace("operator: equal", "operator: equals", 1))
        report = scorer.run_once()
        assert {s.name for s in scorer.queries.scorecards()} == good
        problem = scorer.queries.health()["definitions"]
        assert "ml-model.yaml" in problem and "model-has-owner" in problem
        assert "operator" in problem
        assert report.outcomes[PASSED] > 0  # the run went on with the last valid set
    finally:
        finish(scorer)
