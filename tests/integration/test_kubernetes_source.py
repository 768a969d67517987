"""The Kubernetes source, with the real ``kubernetes`` client over real HTTP.

A Kubernetes API server cannot run here, so every test in this file talks to
``support.kube_replay.KubeReplay``: a local HTTP server answering the client's list calls with
recorded API objects (``tests/fixtures/kubernetes``), honouring label selectors, paging and
bearer tokens, and able to answer late or with an error status like a broken cluster.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from support.backstage import validate_entities
from support.kube_replay import FIXTURES, KubeReplay, load_cluster, with_type
from support.manifests import validate_builtin, validate_custom
from support.timing import scaled
from trellis.catalog import CatalogOptions, build_catalog, entity_problems
from trellis.model import Condition, ModelVersion, RegisteredModel, Snapshot
from trellis.sources import kubernetes as source_module
from trellis.sources.kubernetes import KubernetesSource

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "deployments.md"
REGIONS = {"hub": "eu-west-1", "edge": "us-east-1"}


@pytest.fixture
def replay():
    with KubeReplay.from_fixtures("hub", "edge") as server:
        yield server


CLUSTER_BUDGET = scaled(5.0)


def read(
    replay: KubeReplay, tmp_path: Path, contexts=("hub", "edge"), *, timeout=CLUSTER_BUDGET, **kw
):
    kubeconfig = replay.write_kubeconfig(tmp_path / "kubeconfig", kw.pop("mapping", None))
    source = KubernetesSource(
        list(contexts), kubeconfig=kubeconfig, timeout_seconds=timeout, region_of=REGIONS
    )
    try:
        return source.read()
    finally:
        source.close()


def servers(results, cluster):
    read_, deployments = results[cluster]
    assert read_.ok, read_.error
    return {d.name: d for d in deployments}


def test_the_recorded_objects_are_valid_api_objects():
    for cluster in ("hub", "edge"):
        objects = load_cluster(FIXTURES / cluster)
        typed = [
            o if resource == "inferenceservices" else with_type(resource, o)
            for resource, items in objects.items()
            for o in items
        ]
        assert validate_builtin(typed) == []
        assert validate_custom(typed) == []
        assert all(o["metadata"]["uid"] and o["metadata"]["resourceVersion"] for o in typed)


@pytest.mark.kube_replay
def test_two_clusters_are_read_and_every_field_is_mapped(replay, tmp_path):
    results = read(replay, tmp_path)
    assert set(results) == {"hub", "edge"}
    hub, edge = servers(results, "hub"), servers(results, "edge")
    assert sorted(hub) == ["churn-predictor", "code-assistant", "demand-forecast", "fraud-detector"]
    assert sorted(edge) == ["fraud-detector", "ghost-server", "support-assistant"]
    fields = (
        "cluster", "region", "namespace", "kind", "runtime", "model_name", "model_version",
        "ready_replicas", "desired_replicas", "gpu_requests", "gpu_limits", "gpu_product",
        "url", "network_policy", "runs_as_non_root",
    )  # fmt: skip
    # runs_as_non_root: the ml-model blueprint's InferenceServices set runAsNonRoot; the vLLM
    # server's fetch-model init container does not; the others say nothing.
    expected = {
        ("hub", "fraud-detector"): ("hub", "eu-west-1", "fraud-detector", "InferenceService",
            "kserve-mlserver", "fraud-detector", "champion", 1, 1, 1, 1, "NVIDIA-L4",
            "http://fraud-detector-fraud-detector.serving.eu-west-1.ml.acme.example", True, True),
        ("hub", "demand-forecast"): ("hub", "eu-west-1", "demand-forecast", "InferenceService",
            "triton", "demand-forecast", "champion", 1, 2, 2, 2, "NVIDIA-A10G",
            "http://demand-forecast-demand-forecast.serving.eu-west-1.ml.acme.example", True, True),
        ("hub", "churn-predictor"): ("hub", "eu-west-1", "churn", "InferenceService",
            "kserve-mlserver", "churn-predictor", "4", 2, 2, 0, 0, None,
            "https://churn-predictor-churn.serving.eu-west-1.ml.acme.example", False, None),
        ("hub", "code-assistant"): ("hub", "eu-west-1", "llm", "Deployment", "vllm",
            "Code Assistant", "champion", 2, 2, 2, 2, "NVIDIA-H100-80GB-HBM3", None, True, None),
        ("edge", "fraud-detector"): ("edge", "us-east-1", "fraud-detector", "InferenceService",
            "kserve-mlserver", "fraud-detector", "champion", 2, 2, 1, 1, "NVIDIA-L4",
            "http://fraud-detector-fraud-detector.serving.us-east-1.ml.acme.example", True, True),
        ("edge", "support-assistant"): ("edge", "us-east-1", "llm", "Deployment", "vllm",
            "support-assistant", "7", 3, 3, 1, 1, "NVIDIA-A100-SXM4-80GB", None, True, False),
        ("edge", "ghost-server"): ("edge", "us-east-1", "experiments", "Deployment", "custom",
            "ghost-model", None, 0, 1, 0, 0, None, None, False, None),
    }  # fmt: skip
    for (cluster, name), values in expected.items():
        deployment = (hub if cluster == "hub" else edge)[name]
        assert tuple(getattr(deployment, f) for f in fields) == values, (cluster, name)

    # Conditions, selectors and labels as the objects hold them.
    assert hub["demand-forecast"].conditions == (
        Condition("IngressReady", "True"),
        Condition(
            "PredictorReady",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        ),
        Condition(
            "Ready",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        ),
    )
    assert [c.type for c in hub["churn-predictor"].conditions] == [
        "IngressReady", "LatestDeploymentReady", "PredictorConfigurationReady", "PredictorReady",
        "PredictorRouteReady", "Ready", "RoutesReady",
    ]  # fmt: skip
    assert edge["ghost-server"].conditions[1] == Condition(
        "Progressing",
        "False",
        "ProgressDeadlineExceeded",
        'ReplicaSet "ghost-server-66b9d4f7c8" has timed out progressing.',
    )
    assert edge["fraud-detector"].selector == {
        "serving.kserve.io/inferenceservice": "fraud-detector",
        "trellis.dev/region": "us-east-1",
    }
    assert hub["code-assistant"].selector == {"app.kubernetes.io/name": "code-assistant"}
    recorded = load_cluster(FIXTURES / "edge")["inferenceservices"][0]["metadata"]["labels"]
    assert edge["fraud-detector"].labels == recorded
    assert all(r.ok and r.error is None for r, _ in results.values())


@pytest.mark.kube_replay
def test_the_client_lists_once_per_kind_with_selectors_and_the_token(replay, tmp_path):
    read(replay, tmp_path)
    for cluster in ("hub", "edge"):
        requests = replay.requests_to(cluster)
        calls = sorted(
            (r.path.split(f"/clusters/{cluster}")[1], r.query.get("labelSelector", [""])[0])
            for r in requests
        )
        assert calls == [
            ("/apis/apps/v1/deployments", "serving.kserve.io/inferenceservice"),
            ("/apis/apps/v1/deployments", "trellis.dev/registered-model"),
            ("/apis/networking.k8s.io/v1/networkpolicies", ""),
            ("/apis/serving.kserve.io/v1beta1/inferenceservices", ""),
        ]
        token = replay.clusters[cluster].token
        assert {r.authorization for r in requests} == {f"Bearer {token}"}
        assert {r.query["limit"][0] for r in requests} == {str(source_module.PAGE_SIZE)}


@pytest.mark.kube_replay
def test_big_lists_are_read_page_by_page(replay, tmp_path, monkeypatch):
    whole = read(replay, tmp_path)
    replay.requests.clear()
    monkeypatch.setattr(source_module, "PAGE_SIZE", 2)
    paged = read(replay, tmp_path)
    assert paged["hub"][1] == whole["hub"][1] and paged["edge"][1] == whole["edge"][1]
    continued = [r for r in replay.requests_to("hub") if "continue" in r.query]
    assert continued and all(r.query["limit"] == ["2"] for r in replay.requests_to("hub"))


@pytest.mark.kube_replay
def test_a_slow_cluster_and_a_failing_cluster_fail_alone_within_the_timeout(tmp_path):
    clusters = {name: load_cluster(FIXTURES / src) for name, src in
                (("hub", "hub"), ("edge", "edge"), ("broken", "edge"))}  # fmt: skip
    with KubeReplay(clusters) as replay:
        replay.set_fault("edge", delay=scaled(30))
        replay.set_fault("broken", status=500)
        # The slow cluster holds its answer far longer than the budget; the others answer.
        timeout = scaled(1.5)
        results = read(replay, tmp_path, ("hub", "edge", "broken"), timeout=timeout)
        assert len(servers(results, "hub")) == 4
        slow, slow_servers = results["edge"]
        assert (slow.ok, slow.error, slow_servers) == (False, f"no answer within {timeout:g} s", ())
        broken, broken_servers = results["broken"]
        assert not broken.ok and broken_servers == ()
        assert broken.error == (
            "HTTP 500 Internal Server Error: Internal error occurred: etcdserver: request timed out"
        )
        assert slow.read_at.tzinfo is not None

        # The cluster recovers: the next read has its servers again.
        replay.set_fault("edge")
        again = read(replay, tmp_path, ("hub", "edge"), timeout=timeout)
        assert len(servers(again, "edge")) == 3


@pytest.mark.kube_replay
def test_bad_credentials_unknown_contexts_and_closed_ports_are_reported(replay, tmp_path):
    config = replay.kubeconfig()
    config["users"][1]["user"]["token"] = "a-revoked-token"
    config["clusters"].append({"name": "gone", "cluster": {"server": "http://127.0.0.1:9"}})
    config["users"].append({"name": "gone", "user": {"token": "x"}})
    config["contexts"].append({"name": "gone", "context": {"cluster": "gone", "user": "gone"}})
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    source = KubernetesSource(
        ["hub", "edge", "gone", "missing"], kubeconfig=kubeconfig, timeout_seconds=scaled(3)
    )
    try:
        results = source.read()
    finally:
        source.close()
    assert results["hub"][0].ok
    assert results["edge"][0].error == "HTTP 401 Unauthorized: Unauthorized"
    assert results["gone"][0].error.startswith("cannot connect:")
    assert results["missing"][0].error.startswith("kubeconfig ")
    assert "missing" in results["missing"][0].error
    assert all(deployments == () for name, (r, deployments) in results.items() if not r.ok)
    for _, (outcome, _) in results.items():
        assert "a-revoked-token" not in (outcome.error or "")


@pytest.mark.kube_replay
def test_no_contexts_read_nothing():
    assert KubernetesSource([], kubeconfig=None, timeout_seconds=1).read() == {}


def hostile_cluster():
    """Recorded objects whose free-text fields (annotations, odd label values) are hostile."""
    edge = load_cluster(FIXTURES / "edge")
    isvc = copy.deepcopy(edge["inferenceservices"][0])
    metadata = isvc["metadata"]
    metadata["name"] = "fraud-x"
    metadata["annotations"]["trellis.dev/registered-model"] = 'Fraud "EU", model | 🔥\n{x}'
    metadata["annotations"]["trellis.dev/model-version"] = "champion,} or vector(1)"
    metadata["labels"]["trellis.dev/region"] = 'us-east-1"} or up{'  # not a valid label value
    metadata["labels"]["backstage.io/kubernetes-id"] = "___"
    isvc["spec"]["predictor"]["labels"]["trellis.dev/region"] = 'us-east-1"} or up{'
    vllm = copy.deepcopy(
        next(d for d in edge["deployments"] if d["metadata"]["name"] == "support-assistant")
    )
    vllm["metadata"]["name"] = "assistant-x"
    vllm["metadata"]["labels"]["trellis.dev/registered-model"] = "A.b_c-D"
    vllm["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] = "a" * 63
    vllm["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] = "a" * 63
    return {"inferenceservices": [isvc], "deployments": [vllm], "networkpolicies": []}  # fmt: skip


@pytest.mark.backstage
@pytest.mark.kube_replay
def test_hostile_values_pass_through_verbatim_and_become_valid_entities(tmp_path):
    with KubeReplay({"edge": hostile_cluster()}) as replay:
        results = read(replay, tmp_path, ("edge",))
    found = servers(results, "edge")
    fraud, assistant = found["fraud-x"], found["assistant-x"]
    assert fraud.model_name == 'Fraud "EU", model | 🔥\n{x}'
    assert fraud.model_version == "champion,} or vector(1)"
    assert fraud.region == 'us-east-1"} or up{'
    assert assistant.model_name == "A.b_c-D"
    assert assistant.selector["app.kubernetes.io/name"] == "a" * 63

    models = tuple(
        RegisteredModel(
            name, "", {}, {"champion": 1}, T0, T0,
            (ModelVersion(name, 1, "READY", "s3://b/1", None, "", {}, T0, T0),),
        )
        for name in ('Fraud "EU", model | 🔥\n{x}', "A.b_c-D")
    )  # fmt: skip
    snapshot = Snapshot(models, T0, "sqlite:///x", deployments=tuple(found.values()))
    catalog = build_catalog(snapshot, CatalogOptions())
    components = [e for e in catalog.entities if e["kind"] == "Component"]
    assert len(components) == 2 and all(entity_problems(e) == [] for e in catalog.entities)
    assert all(c["spec"]["dependsOn"] for c in components)
    for component in components:
        rule = component["metadata"]["annotations"].get("prometheus.io/rule", "")
        assert all(item.count("|") == 1 for item in rule.split(",") if rule)
    results = validate_entities(list(catalog.entities))
    assert [r for r in results if not r["ok"]] == []


@pytest.mark.kube_replay
def test_the_documented_cluster_role_allows_exactly_the_calls_the_source_makes(replay, tmp_path):
    block = re.search(r"```yaml\n(apiVersion: rbac.*?)```", DOCS.read_text(), re.S)
    assert block, "docs/deployments.md has no ClusterRole"
    role = yaml.safe_load(block.group(1))
    assert validate_builtin([role]) == []
    allowed = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    read(replay, tmp_path)
    made = set()
    for request in replay.requests:
        path = request.path.split("/clusters/", 1)[1].split("/", 1)[1]
        parts = path.split("/")
        group = "" if parts[0] == "api" else parts[1]
        made.add((group, parts[-1], "list"))
    assert made == allowed
