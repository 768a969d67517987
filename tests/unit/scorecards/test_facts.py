"""Fact retrievers: each fact worked out from what the sources read, unknown when it was not."""

from dataclasses import replace
from datetime import timedelta

import pytest

from support.domain import T0, open_model, regional_adapter, registered_model
from trellis.model import ChampionDetails, Condition, Deployment
from trellis.scorecards import Unknown
from trellis.scorecards.facts import (
    RETRIEVERS,
    blueprint_facts,
    lineage_facts,
    model_deployment_facts,
    registry_facts,
    server_deployment_facts,
    serving_facts,
)

NOW = T0 + timedelta(days=30)
TAGS = {
    "owner": "group:default/fraud",
    "data_classification": "confidential",
    "training_region": "eu-west-1",
    "model_card": "https://git.example/fraud/docs/model-card.md",
}
DETAILS = ChampionDetails("fraud", 2, True, ("s3://lake/fraud.parquet",), {"accuracy": 0.93})


def model(**changes):
    base = registered_model(
        "fraud", tags=TAGS, aliases={"champion": 2}, description="Flags card fraud."
    )
    return replace(base, **changes)


def server(region="eu-west-1", cluster="hub", **changes) -> Deployment:
    base = Deployment(
        cluster=cluster,
        region=region,
        namespace="fraud",
        name=f"fraud-{region}",
        kind="InferenceService",
        runtime="kserve-mlserver",
        model_name="fraud",
        model_version="champion",
        ready_replicas=2,
        desired_replicas=2,
        gpu_requests=1,
        gpu_limits=1,
        gpu_product=None,
        url=None,
        conditions=(Condition("Ready", "True"),),
        network_policy=True,
        selector={"app": "fraud"},
        runs_as_non_root=True,
    )
    return replace(base, **changes)


def test_every_fact_given_is_in_its_retrievers_schema():
    by_id = {retriever.id: set(retriever.schema) for retriever in RETRIEVERS}
    given = {
        "mlflow-registry": set(registry_facts(model(), DETAILS, NOW)),
        "kubernetes-deployments": set(server_deployment_facts(server(), None))
        | set(model_deployment_facts(model(), [server()], {}, {})),
        "prometheus-serving": set(serving_facts({}, None, "1h")),
        "blueprint": set(blueprint_facts({"blueprint": "ml-model"}, None)),
        "model-lineage": set(lineage_facts(model(), [], {}, {}, ())),
    }
    assert given == by_id
    for retriever in RETRIEVERS:
        shape = retriever.as_json()
        assert set(shape) == {"id", "version", "entityFilter", *retriever.schema}
        for fact in (shape[name] for name in retriever.schema):
            assert fact["type"] in {
                "integer",
                "float",
                "string",
                "boolean",
                "datetime",
                "set",
                "object",
            }
            assert fact["description"]


def test_registry_facts_of_a_ready_model():
    facts = registry_facts(model(), DETAILS, NOW)
    assert facts == {
        "owner": "group:default/fraud",
        "hasOwner": True,
        "hasDescription": True,
        "hasModelCard": True,
        "hasChampion": True,
        "championVersion": 2,
        "championAgeDays": 30,
        "hasSignature": True,
        "hasDatasetLineage": True,
        "datasets": ["s3://lake/fraud.parquet"],
        "championMetrics": {"accuracy": 0.93},
        "dataClassification": "confidential",
        "trainingRegion": "eu-west-1",
    }


@pytest.mark.parametrize(
    ("age", "days"),
    [
        (timedelta(0), 0),
        (timedelta(seconds=1), 1),
        (timedelta(days=90), 90),
        (timedelta(days=90, seconds=1), 91),
        (timedelta(days=-1), 0),  # a clock behind the registry's
    ],
)
def test_champion_age_counts_started_days_so_at_most_n_days_holds_exactly(age, days):
    facts = registry_facts(model(), DETAILS, T0 + age)
    assert facts["championAgeDays"] == days and type(facts["championAgeDays"]) is int


def test_a_model_without_a_champion_has_unknown_champion_facts_not_false_ones():
    facts = registry_facts(model(aliases={}), None, NOW)
    assert facts["hasChampion"] is False
    for name in ("hasSignature", "hasDatasetLineage", "championAgeDays", "championMetrics"):
        assert isinstance(facts[name], Unknown)
        assert "champion" in facts[name].reason
    dangling = registry_facts(model(aliases={"champion": 9}), None, NOW)
    assert "version 9" in dangling["championVersion"].reason


def test_details_that_could_not_be_read_are_unknown_with_the_reason():
    partial = ChampionDetails("fraud", 2, None, ("d",), None, ("MLmodel: HTTP 404",))
    facts = registry_facts(model(), partial, NOW)
    assert facts["hasSignature"] == Unknown("MLmodel: HTTP 404")
    assert facts["championMetrics"] == Unknown("MLmodel: HTTP 404")
    assert facts["hasDatasetLineage"] is True
    down = registry_facts(model(), Unknown("registry down"), NOW)
    assert down["hasSignature"] == Unknown("registry down")
    assert down["hasOwner"] is True  # what the snapshot holds is still known


def test_a_diverged_metric_is_unknown_not_a_number():
    details = replace(DETAILS, metrics={"accuracy": float("nan"), "f1": 0.8})
    metrics = registry_facts(model(), details, NOW)["championMetrics"]
    assert isinstance(metrics["accuracy"], Unknown) and metrics["f1"] == 0.8


def test_missing_tags_are_known_to_be_missing():
    facts = registry_facts(model(tags={}, description="  "), DETAILS, NOW)
    assert facts["hasOwner"] is False and facts["owner"] == ""
    assert facts["hasDescription"] is False and facts["hasModelCard"] is False
    assert facts["dataClassification"] == "" and facts["trainingRegion"] == ""


RESIDENCY = {"Confidential": ["training"], "internal": ["eu-west-1", "us-east-1"]}


@pytest.mark.parametrize(
    ("classification", "regions", "disallowed"),
    [
        ("confidential", ["eu-west-1"], []),
        ("confidential", ["eu-west-1", "us-east-1"], ["us-east-1"]),
        ("CONFIDENTIAL", ["ap-south-1"], ["ap-south-1"]),
        ("internal", ["eu-west-1", "us-east-1"], []),
        ("internal", ["ap-south-1"], ["ap-south-1"]),
        ("public", ["ap-south-1", "eu-west-1"], []),
        ("", ["ap-south-1"], []),
    ],
)
def test_serving_regions_against_the_residency_policy(classification, regions, disallowed):
    tags = {**TAGS, "data_classification": classification}
    servers = [server(region) for region in regions]
    facts = model_deployment_facts(model(tags=tags), servers, {}, RESIDENCY)
    assert facts["servingRegions"] == sorted(regions)
    assert facts["disallowedRegions"] == disallowed
    assert facts["servingRegionsAllowed"] is (not disallowed)


def test_a_confidential_model_without_a_training_region_is_allowed_nowhere():
    tags = {**TAGS, "training_region": ""}
    facts = model_deployment_facts(model(tags=tags), [server()], {}, RESIDENCY)
    assert facts["servingRegionsAllowed"] is False


def test_network_policy_and_a_failed_cluster():
    servers = [server(), server("us-east-1", cluster="edge", network_policy=False)]
    facts = model_deployment_facts(model(), servers, {}, {})
    assert facts["allServersHaveNetworkPolicy"] is False and facts["serverCount"] == 2
    failed = model_deployment_facts(model(), servers, {"edge": "connection refused"}, {})
    assert all(isinstance(value, Unknown) for value in failed.values())
    assert "edge" in failed["serverCount"].reason
    assert model_deployment_facts(model(), [], {}, {})["allServersHaveNetworkPolicy"] is True


def test_server_facts_and_what_an_unset_security_context_means():
    facts = server_deployment_facts(server(), None)
    assert facts["runsAsNonRoot"] is True and facts["environment"] == "production"
    assert server_deployment_facts(server(runs_as_non_root=None), None)["runsAsNonRoot"] is False
    staging = server(labels={"trellis.dev/environment": "staging"})
    assert server_deployment_facts(staging, None)["environment"] == "staging"
    stale = server_deployment_facts(server(), "timed out")
    assert stale["readyReplicas"] == Unknown("cluster 'hub' could not be read: timed out")


def test_serving_facts_are_unknown_when_prometheus_is_down_or_has_no_samples():
    row = {"requestRate": 3.0, "errorRatio": 0.01, "latencyP95": 0.2, "availability": 1.0}
    facts = serving_facts(row, None, "1h")
    assert facts["requestRate"] == 3.0 and facts["latencySeconds"]["p95"] == 0.2
    assert "no samples of latencyP99" in facts["latencySeconds"]["p99"].reason
    assert "in the last 1h" in facts["gpuUtilization"].reason
    down = serving_facts(None, "Prometheus could not be read: refused", "1h")
    assert set(down) == {
        "requestRate",
        "errorRatio",
        "availability",
        "gpuUtilization",
        "gpuMemoryBytes",
        "latencySeconds",
    }
    assert all(v == Unknown("Prometheus could not be read: refused") for v in down.values())


def test_blueprint_facts_turn_nulls_into_unknowns():
    fact = {
        "blueprint": "ml-model",
        "version": "0.1.0-2-gabc",
        "versionsBehind": None,
        "minorVersionsBehind": None,
        "latestVersion": "0.2.0",
    }
    facts = blueprint_facts(fact, None)["blueprint"]
    assert isinstance(facts["minorVersionsBehind"], Unknown)
    assert facts["latestVersion"] == "0.2.0"
    assert isinstance(blueprint_facts(None, None)["blueprint"], Unknown)
    assert blueprint_facts(fact, "git: not found")["blueprint"] == Unknown("git: not found")


# --- model-lineage ---------------------------------------------------------------------------

POLICY = {"Restricted": "data-region", "confidential": "data-region", "internal": "anywhere"}
LICENSES = ("Apache-2.0", "mit")


def adapter_server(region, cluster="edge"):
    return server(region, cluster, model_name="qwen2", adapters=("qwen2-eu",))


def test_an_adapter_trained_and_served_in_its_data_region_is_resident():
    adapter = regional_adapter("qwen2-eu", "qwen2", "eu-west-1")
    facts = lineage_facts(adapter, [adapter_server("eu-west-1")], {}, POLICY, LICENSES)
    assert facts == {
        "modelKind": "adapter",
        "dataRegion": "eu-west-1",
        "trainingRegion": "eu-west-1",
        "trainedInDataRegion": True,
        "hasLineage": True,
        "championGatePassed": True,
        "servingRegions": ["eu-west-1"],
        "disallowedRegions": [],
        "servedWhereAllowed": True,
        "license": Unknown("not an imported open model (`model_kind` is not `base`)"),
        "licenseAllowed": Unknown("not an imported open model (`model_kind` is not `base`)"),
        "upstreamRevision": Unknown("not an imported open model (`model_kind` is not `base`)"),
        "upstreamPinned": Unknown("not an imported open model (`model_kind` is not `base`)"),
        "hasChecksum": Unknown("not an imported open model (`model_kind` is not `base`)"),
    }


@pytest.mark.parametrize(
    ("classification", "disallowed"),
    [("restricted", ["us-east-1"]), ("CONFIDENTIAL", ["us-east-1"]), ("internal", []),
     ("public", [])],
)  # fmt: skip
def test_where_an_adapter_may_be_served_follows_its_classification(classification, disallowed):
    adapter = regional_adapter("qwen2-eu", "qwen2", "eu-west-1", classification=classification)
    servers = [adapter_server("eu-west-1"), adapter_server("us-east-1", cluster="us")]
    facts = lineage_facts(adapter, servers, {}, POLICY, LICENSES)
    assert facts["servingRegions"] == ["eu-west-1", "us-east-1"]
    assert facts["disallowedRegions"] == disallowed
    assert facts["servedWhereAllowed"] is (not disallowed)


def test_an_adapter_trained_outside_its_data_region_or_without_one_is_not_resident():
    moved = regional_adapter("qwen2-eu", "qwen2", "eu-west-1", training_region="us-east-1")
    assert lineage_facts(moved, [], {}, POLICY, LICENSES)["trainedInDataRegion"] is False
    unrecorded = replace(moved, tags={**moved.tags, "data_region": ""}, versions=())
    facts = lineage_facts(unrecorded, [adapter_server("eu-west-1")], {}, POLICY, LICENSES)
    assert facts["trainedInDataRegion"] is False
    assert facts["disallowedRegions"] == ["eu-west-1"]  # restricted, and no region to stay in
    assert facts["hasLineage"] is False  # no version: no parent version, no fingerprint


def test_an_adapter_gate_and_a_server_in_an_unread_cluster():
    adapter = regional_adapter("qwen2-eu", "qwen2", "eu-west-1")
    failed = replace(adapter.versions[0], tags={**adapter.versions[0].tags, "gate": "failed"})
    facts = lineage_facts(
        replace(adapter, versions=(failed,)), [adapter_server("eu-west-1")], {"edge": "timed out"},
        POLICY, LICENSES,
    )  # fmt: skip
    assert facts["championGatePassed"] is False
    assert facts["servedWhereAllowed"] == Unknown("cluster 'edge' could not be read: timed out")
    no_champion = lineage_facts(replace(adapter, aliases={}), [], {}, POLICY, LICENSES)
    assert isinstance(no_champion["championGatePassed"], Unknown)


@pytest.mark.parametrize(
    ("license_id", "allowed"),
    [("apache-2.0", True), ("MIT", True), ("llama3.1", False), ("", False)],
)
def test_an_imported_models_licence_against_the_allow_list(license_id, allowed):
    base = open_model("qwen2", license_id=license_id)
    base = replace(base, tags={**base.tags, "license": license_id})
    facts = lineage_facts(base, [], {}, POLICY, LICENSES)
    assert facts["modelKind"] == "base"
    assert facts["licenseAllowed"] is allowed
    assert (facts["upstreamPinned"], facts["hasChecksum"]) == (True, True)
    assert isinstance(facts["servedWhereAllowed"], Unknown)


def test_an_unpinned_or_unchecksummed_import():
    base = open_model("qwen2")
    loose = replace(
        base,
        tags={**base.tags, "upstream_revision": "main"},
        versions=(replace(base.versions[0], tags={"sha256": "not-a-digest"}),),
    )
    facts = lineage_facts(loose, [], {}, POLICY, LICENSES)
    assert (facts["upstreamPinned"], facts["hasChecksum"]) == (False, False)


def test_a_model_trained_here_has_only_unknown_lineage_facts():
    facts = lineage_facts(model(), [server()], {}, POLICY, LICENSES)
    assert facts.pop("modelKind") == ""
    assert all(isinstance(value, Unknown) for value in facts.values())
