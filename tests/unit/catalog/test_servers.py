"""Model servers as Components and APIs: names, collisions, annotations, relations, targets."""

from dataclasses import replace

import pytest
import yaml
from openapi_spec_validator import validate

from support.domain import T0, registered_model
from trellis.catalog import CatalogDocument, CatalogOptions, Target, build_catalog, entity_problems
from trellis.catalog.names import is_valid_name
from trellis.model import Condition, Deployment, Runtime, Snapshot

OPTIONS = CatalogOptions()


def model(name, tags=None, aliases=None, versions=3):
    return registered_model(name, tags, aliases, versions)


def server(name="fraud-detector", **changes):
    base = Deployment(
        cluster="hub",
        region="eu-west-1",
        namespace=name if "namespace" not in changes else changes.pop("namespace"),
        name=name,
        kind="InferenceService",
        runtime=Runtime.MLSERVER,
        model_name=name,
        model_version="champion",
        ready_replicas=2,
        desired_replicas=2,
        gpu_requests=1,
        gpu_limits=1,
        gpu_product="NVIDIA-L4",
        url=f"http://{name}.serving.example",
        conditions=(Condition("Ready", "True"),),
        network_policy=True,
        selector={"serving.kserve.io/inferenceservice": name, "trellis.dev/region": "eu-west-1"},
        labels={"backstage.io/kubernetes-id": name, "trellis.dev/registered-model": name},
    )
    return replace(base, **changes)


FRAUD = model("fraud-detector", {"owner": "risk-ml", "system": "payments"}, aliases={"champion": 2})


def catalog(*deployments, models=(FRAUD,)):
    snapshot = Snapshot(
        models=tuple(models), taken_at=T0, registry="sqlite:///x", deployments=tuple(deployments)
    )
    return build_catalog(snapshot, OPTIONS)


def entities(result, kind):
    return {e["metadata"]["name"]: e for e in result.entities if e["kind"] == kind}


def test_a_server_is_a_component_providing_an_api_and_depending_on_its_model():
    result = catalog(server())
    component = entities(result, "Component")["fraud-detector-eu-west-1"]
    api = entities(result, "API")["fraud-detector-eu-west-1"]
    assert component["spec"] == {
        "type": "model-server",
        "lifecycle": "production",
        "owner": "group:default/risk-ml",
        "system": "system:default/payments",
        "dependsOn": ["resource:default/fraud-detector"],
        "providesApis": ["api:default/fraud-detector-eu-west-1"],
    }
    assert {k: api["spec"][k] for k in ("type", "lifecycle", "owner", "system")} == {
        "type": "openapi",
        "lifecycle": "production",
        "owner": "group:default/risk-ml",
        "system": "system:default/payments",
    }
    assert component["metadata"]["title"] == "fraud-detector in eu-west-1"
    assert component["metadata"]["links"] == [
        {"url": "http://fraud-detector.serving.example", "title": "Inference endpoint"}
    ]
    assert component["metadata"]["tags"] == ["gpu", "kserve-mlserver", "model-server"]
    assert result.problems == ()
    assert all(entity_problems(e) == [] for e in result.entities)


def test_component_annotations_are_the_ones_plugins_read_plus_trellis_facts():
    annotations = entities(catalog(server()), "Component")["fraud-detector-eu-west-1"]["metadata"][
        "annotations"
    ]
    rule = annotations.pop("prometheus.io/rule")
    assert annotations == {
        "backstage.io/kubernetes-id": "fraud-detector",
        "backstage.io/kubernetes-label-selector": (
            "serving.kserve.io/inferenceservice=fraud-detector,trellis.dev/region=eu-west-1"
        ),
        "backstage.io/kubernetes-namespace": "fraud-detector",
        "trellis.dev/cluster": "hub",
        "trellis.dev/desired-replicas": "2",
        "trellis.dev/gpu-limits": "1",
        "trellis.dev/gpu-product": "NVIDIA-L4",
        "trellis.dev/gpu-requests": "1",
        "trellis.dev/model-alias": "champion",
        "trellis.dev/model-version": "2",  # the champion alias, resolved in the registry
        "trellis.dev/network-policy": "true",
        "trellis.dev/ready-replicas": "2",
        "trellis.dev/region": "eu-west-1",
        "trellis.dev/registered-model": "fraud-detector",
        "trellis.dev/runtime": "kserve-mlserver",
        "trellis.dev/workload": "InferenceService/fraud-detector",
    }
    pairs = [item.split("|") for item in rule.split(",")]
    assert len(pairs) >= 4 and all(len(pair) == 2 and all(pair) for pair in pairs)
    queries = " ".join(query for query, _ in pairs)
    assert "model_infer_request_success" in queries and "DCGM_FI_DEV_GPU_UTIL" in queries


@pytest.mark.parametrize(
    ("runtime", "metric"),
    [
        (Runtime.TRITON, "nv_inference_request_success"),
        (Runtime.VLLM, "vllm:"),
        (Runtime.MLSERVER, "model_infer_request_failure"),
    ],
)
def test_each_runtime_gets_rules_on_its_own_metrics(runtime, metric):
    annotations = entities(catalog(server(runtime=runtime)), "Component")[
        "fraud-detector-eu-west-1"
    ]["metadata"]["annotations"]
    assert metric in annotations["prometheus.io/rule"]


def test_hostile_label_values_never_reach_a_selector_or_a_rule_separator():
    hostile = server(
        name="fraud",
        namespace="Not A Namespace",
        model_name='Fraud "EU", | 🔥',
        selector={"app": "a,b=c", "trellis.dev/region": "eu-west-1"},
        labels={"backstage.io/kubernetes-id": "not valid!"},
        region='eu-west-1"} or vector(1) #',
    )
    result = catalog(hostile, models=(model('Fraud "EU", | 🔥'),))
    component = entities(result, "Component")
    (entity,) = component.values()
    annotations = entity["metadata"]["annotations"]
    assert "backstage.io/kubernetes-label-selector" not in annotations
    assert "backstage.io/kubernetes-namespace" not in annotations
    assert annotations["backstage.io/kubernetes-id"] == entity["spec"]["dependsOn"][0].split("/")[1]
    for item in annotations.get("prometheus.io/rule", "").split(","):
        assert item.count("|") == 1
    assert annotations["trellis.dev/registered-model"] == 'Fraud "EU", | 🔥'
    assert is_valid_name(entity["metadata"]["name"])
    assert any("not valid Kubernetes labels" in p.message for p in result.problems)
    assert all(entity_problems(e) == [] for e in result.entities)


def test_names_add_the_cluster_only_when_two_servers_would_share_one():
    one = server()
    same_region = server(cluster="hub-b")
    other_region = server(cluster="edge", region="us-east-1")
    names = set(entities(catalog(one, same_region, other_region), "Component"))
    assert names == {
        "fraud-detector-eu-west-1-hub",
        "fraud-detector-eu-west-1-hub-b",
        "fraud-detector-us-east-1",
    }
    titles = {
        e["metadata"]["title"] for e in entities(catalog(one, same_region), "Component").values()
    }
    assert titles == {"fraud-detector in eu-west-1 (hub)", "fraud-detector in eu-west-1 (hub-b)"}


def test_two_servers_of_a_model_in_one_cluster_are_told_apart_by_namespace_and_name():
    first = server()
    canary = {"namespace": "fraud-canary", "name": "fraud-detector-canary"}
    second = server(kind="Deployment", model_name="fraud-detector", **canary)
    third = server(kind="InferenceService", model_name="fraud-detector", **canary)
    names = sorted(entities(catalog(first, second, third), "Component"))
    assert len(names) == 3 and len({n.lower() for n in names}) == 3
    assert all(is_valid_name(n) for n in names)
    assert "fraud-detector-eu-west-1-hub-fraud-detector-fraud-detector" in names


def test_long_and_colliding_names_stay_valid_and_unique():
    long_name = "a-very-long-model-name-that-goes-on-" + "x" * 40
    servers = [
        server(name=long_name, namespace="ns", model_name=long_name),
        server(name="m", namespace="ns", model_name="M", region="EU West 1"),
        server(name="m2", namespace="ns", model_name="m", region="eu-west-1"),
    ]
    models = (model(long_name), model("M"), model("m"))
    names = list(entities(catalog(*servers, models=models), "Component"))
    assert len(names) == 3 and len({n.lower() for n in names}) == 3
    assert all(is_valid_name(n) for n in names)


def test_adding_a_server_elsewhere_renames_nothing():
    before = set(entities(catalog(server()), "Component"))
    after = set(
        entities(catalog(server(), server(cluster="edge", region="us-east-1")), "Component")
    )
    assert before < after


def test_a_server_of_no_known_model_gets_entities_without_a_dependency_and_a_warning():
    ghost = server(
        name="ghost-server", model_name="ghost-model", runtime=Runtime.CUSTOM, kind="Deployment"
    )
    result = catalog(ghost)
    component = entities(result, "Component")["ghost-model-eu-west-1"]
    api = entities(result, "API")["ghost-model-eu-west-1"]
    assert "dependsOn" not in component["spec"]
    assert component["spec"]["owner"] == OPTIONS.fallback_owner
    assert component["spec"]["lifecycle"] == "experimental"
    assert api["spec"]["type"] == "openapi"
    assert yaml.safe_load(api["spec"]["definition"])["paths"] == {}  # protocol unknown
    (problem,) = result.problems
    assert problem.severity == "warning" and "'ghost-model'" in problem.message
    assert problem.entity == "component:default/ghost-model-eu-west-1"
    nameless = catalog(server(name="anon", model_name=None, model_version=None))
    assert "names no registered model" in nameless.problems[0].message


def test_servers_link_to_models_by_exact_name_case_or_entity_name():
    models = (model("Code Assistant"), model("Churn Predictor"), model("fraud-detector"))
    deployments = [
        server(name="code", model_name="Code Assistant"),
        server(name="churn", model_name="churn-predictor"),  # the entity name, as in a label
        server(name="fraud", model_name="FRAUD-DETECTOR"),
    ]
    result = catalog(*deployments, models=models)
    depends = {
        e["metadata"]["name"]: e["spec"].get("dependsOn")
        for e in entities(result, "Component").values()
    }
    assert depends == {
        "code-assistant-eu-west-1": ["resource:default/code-assistant"],
        "churn-predictor-eu-west-1": ["resource:default/churn-predictor"],
        "fraud-detector-eu-west-1": ["resource:default/fraud-detector"],
    }


def test_the_model_resource_lists_where_and_which_versions_it_is_served():
    result = catalog(
        server(),  # champion -> 2
        server(cluster="edge", region="us-east-1", model_version="3"),
        server(cluster="lab", region="ap-south-1", model_version="challenger"),
    )
    annotations = entities(result, "Resource")["fraud-detector"]["metadata"]["annotations"]
    assert annotations["trellis.dev/served-regions"] == "ap-south-1,eu-west-1,us-east-1"
    assert annotations["trellis.dev/served-versions"] == "2,3,challenger"
    unserved = catalog()
    assert (
        "trellis.dev/served-regions"
        not in (entities(unserved, "Resource")["fraud-detector"]["metadata"]["annotations"])
    )


def test_targets_resolve_component_and_resource_refs_to_model_and_servers():
    hub, edge = server(), server(cluster="edge", region="us-east-1")
    ghost = server(name="ghost", model_name="ghost")
    result = catalog(hub, edge, ghost, models=(FRAUD, model("unserved")))
    assert result.targets["resource:default/fraud-detector"] == Target(FRAUD, (hub, edge))
    assert result.targets["resource:default/unserved"].deployments == ()
    assert result.targets["component:default/fraud-detector-eu-west-1"] == Target(FRAUD, (hub,))
    assert result.targets["component:default/fraud-detector-us-east-1"] == Target(FRAUD, (edge,))
    assert result.targets["component:default/ghost-eu-west-1"] == Target(None, (ghost,))
    emitted = {
        f"{e['kind'].lower()}:default/{e['metadata']['name']}"
        for e in result.entities
        if e["kind"] in {"Component", "Resource"}
    }
    assert set(result.targets) == emitted


@pytest.mark.parametrize(
    ("runtime", "kind", "api_type", "paths"),
    [
        (Runtime.MLSERVER, "InferenceService", "openapi", "/v2/models/{model_name}/infer"),
        (Runtime.TRITON, "InferenceService", "openapi", "/v2/health/ready"),
        (Runtime.CUSTOM, "InferenceService", "openapi", "/v2/models/{model_name}/ready"),
        (Runtime.VLLM, "Deployment", "openai", "/v1/chat/completions"),
    ],
)
def test_api_definitions_are_valid_openapi_3_with_the_protocols_paths(
    runtime, kind, api_type, paths
):
    api = entities(catalog(server(runtime=runtime, kind=kind)), "API")["fraud-detector-eu-west-1"]
    assert api["spec"]["type"] == api_type
    spec = yaml.safe_load(api["spec"]["definition"])
    validate(spec)  # raises on anything that is not a valid OpenAPI 3 document
    assert spec["openapi"].startswith("3.")
    assert paths in spec["paths"]
    assert spec["servers"] == [{"url": "http://fraud-detector.serving.example"}]


def test_the_open_inference_and_openai_definitions_cover_their_endpoints():
    oip = yaml.safe_load(
        entities(catalog(server()), "API")["fraud-detector-eu-west-1"]["spec"]["definition"]
    )
    assert set(oip["paths"]) >= {
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/{model_name}",
        "/v2/models/{model_name}/ready",
        "/v2/models/{model_name}/infer",
    }
    infer = oip["components"]["schemas"]["InferenceRequest"]
    assert infer["required"] == ["inputs"]
    tensor = oip["components"]["schemas"]["RequestInput"]
    assert set(tensor["required"]) == {"name", "shape", "datatype", "data"}
    openai = yaml.safe_load(
        entities(catalog(server(runtime=Runtime.VLLM, kind="Deployment", url=None)), "API")[
            "fraud-detector-eu-west-1"
        ]["spec"]["definition"]
    )
    assert set(openai["paths"]) >= {"/v1/models", "/v1/completions", "/v1/chat/completions"}
    assert "servers" not in openai
    chat = openai["components"]["schemas"]["ChatCompletionRequest"]
    assert chat["required"] == ["model", "messages"]


def test_the_same_snapshot_renders_the_same_bytes():
    servers = (server(), server(cluster="edge", region="us-east-1"), server(name="x"))
    first = CatalogDocument.build(catalog(*servers), taken_at=T0, model_count=1)
    second = CatalogDocument.build(catalog(*reversed(servers)), taken_at=T0, model_count=1)
    assert first.yaml == second.yaml
