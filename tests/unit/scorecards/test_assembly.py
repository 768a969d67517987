"""Assembling one run's facts from what the sources read: pure, every source's failure apart."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from support.domain import model_server, registered_model
from trellis.blueprints import blueprint_fact
from trellis.model import Deployment, RegisteredModel
from trellis.scorecards import Unknown
from trellis.scorecards.assembly import (
    FactPolicy,
    Reads,
    Repository,
    assemble,
    server_serving_facts,
    unknowns,
)

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
MODEL = registered_model(
    "fraud", tags={"blueprint": "ml-model", "blueprint_version": "1.0.0"}, aliases={"champion": 1}
)
SERVER = replace(model_server("eu", "fraud-eu"), model_name="fraud")
RESOURCE = {"kind": "Resource", "metadata": {"name": "fraud"}, "spec": {"type": "ai-model"}}
COMPONENT = {"kind": "Component", "metadata": {"name": "fraud-eu"}, "spec": {}}


@dataclass(frozen=True)
class Target:
    model: RegisteredModel | None
    deployments: tuple[Deployment, ...] = ()


def run(reads: Reads, repositories=(), failed=None):
    return assemble(
        targets={
            "resource:default/fraud": Target(MODEL, (SERVER,)),
            "component:default/fraud-eu": Target(MODEL, (SERVER,)),
            "component:default/nothing": Target(None),
        },
        entities={"resource:default/fraud": RESOURCE, "component:default/fraud-eu": COMPONENT},
        repositories=repositories,
        failed_clusters=failed or {},
        reads=reads,
        policy=FactPolicy(),
        currency=blueprint_fact,
        now=NOW,
    )


def test_models_get_four_retrievers_servers_wait_for_prometheus():
    assembly = run(Reads(releases={"ml-model": ("1.0.0", "1.1.0")}))
    assert set(assembly.entities) == {"resource:default/fraud", "component:default/fraud-eu"}
    assert set(assembly.facts["resource:default/fraud"]) == {
        "mlflow-registry",
        "kubernetes-deployments",
        "blueprint",
        "model-lineage",
    }
    assert set(assembly.facts["component:default/fraud-eu"]) == {"kubernetes-deployments"}
    assert assembly.servers == {"component:default/fraud-eu": SERVER}
    blueprint = assembly.facts["resource:default/fraud"]["blueprint"]["blueprint"]
    assert blueprint["versionsBehind"] == 1


def test_unread_releases_make_a_models_blueprint_unknown_with_the_reason():
    assembly = run(Reads(blueprint_error="no blueprint source is configured"))
    fact = assembly.facts["resource:default/fraud"]["blueprint"]["blueprint"]
    assert fact == Unknown("no blueprint source is configured")


def test_unread_champion_details_are_unknown_with_the_reason():
    assembly = run(Reads(details_error="champion details could not be read: down"))
    registry = assembly.facts["resource:default/fraud"]["mlflow-registry"]
    assert registry["hasSignature"] == Unknown("champion details could not be read: down")


def test_a_failed_cluster_makes_its_servers_facts_unknown():
    assembly = run(Reads(), failed={"eu": "forbidden"})
    facts = assembly.facts["component:default/fraud-eu"]["kubernetes-deployments"]
    assert facts["readyReplicas"] == Unknown("cluster 'eu' could not be read: forbidden")


def test_a_repository_is_scored_unless_the_catalog_has_its_ref():
    fact = {"blueprint": "ml-model", "version": "1.0.0", "versionsBehind": None}
    repositories = [
        Repository("component:team/app", {"kind": "Component"}, fact),
        Repository("resource:default/fraud", {"kind": "Component"}, fact),
    ]
    assembly = run(Reads(), repositories)
    assert assembly.entities["resource:default/fraud"] is RESOURCE
    repository = assembly.facts["component:team/app"]["blueprint"]["blueprint"]
    assert repository["versionsBehind"] == Unknown("versionsBehind of ml-model 1.0.0 is not known")


def test_serving_facts_name_the_window_they_had_no_samples_in():
    facts = server_serving_facts(SERVER, {}, None, 7_200)
    assert facts["errorRatio"] == Unknown(
        "Prometheus has no samples of errorRatio for this server in the last 2h"
    )
    row = {("ml", "fraud-eu", "eu"): {"errorRatio": 0.25}}
    assert server_serving_facts(SERVER, row, None, 90)["errorRatio"] == 0.25


def test_unknowns_are_found_at_any_depth():
    facts = {"a": 1, "b": Unknown("x"), "c": {"d": Unknown("y"), "e": 2}}
    assert dict(unknowns(facts.items())) == {"b": "x", "c.d": "y"}
