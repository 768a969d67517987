"""platform-hub's Kubernetes layer: valid, rendered by Kustomize, and what Trellis really reads.

Every object validates (built-in kinds strictly, custom resources against their CRD schemas)
after ``kubectl kustomize``. MLflow runs as the registry with a PostgreSQL store from a
Secret, proxied artifacts on the bucket, its basic-auth app and workers sized for the fleet;
Trellis runs with the answered replicas, probes on /healthz and /readyz, a ServiceMonitor, a
PodDisruptionBudget, settings that are real ``TRELLIS_*`` names, and a ClusterRole with
exactly the calls ``backend/trellis/sources/kubernetes.py`` makes. ``promtool`` checks the
recording rules and evaluates them over synthetic series of each runtime's metric names.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from support.manifests import Manifest, render_overlay, validate_builtin, validate_custom
from support.prometheus import binaries
from support.timing import scaled
from trellis.config import Settings
from trellis.observability import queries

pytestmark = pytest.mark.tools

Variant = tuple[str, dict[str, Any], Path]
REPO = Path(__file__).resolve().parents[2]
KINDS = [
    "ClusterRole", "ClusterRoleBinding", "ConfigMap", "ConfigMap", "ConfigMap", "ConfigMap",
    "ConfigMap", "Deployment", "Deployment", "ExternalSecret", "ExternalSecret", "ExternalSecret",
    "Namespace", "Namespace", "Namespace", "Namespace", "NetworkPolicy", "NetworkPolicy",
    "PodDisruptionBudget", "PodDisruptionBudget", "PrometheusRule", "Service", "Service",
    "ServiceAccount", "ServiceAccount", "ServiceMonitor", "ServiceMonitor",
]  # fmt: skip


@pytest.fixture(scope="module")
def objects(hub_variant: Variant) -> list[Manifest]:
    return render_overlay(hub_variant[2] / "deploy")


def answers_of(repo: Path) -> dict[str, Any]:
    return dict(yaml.safe_load((repo / ".copier-answers.yml").read_text()))


def one(objects: list[Manifest], kind: str, name: str) -> Manifest:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def settings_names(model: type[BaseModel] = Settings, prefix: str = "TRELLIS_") -> set[str]:
    """Every environment variable Trellis's settings read."""
    names = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= settings_names(annotation, f"{prefix}{name.upper()}__")
        else:
            names.add(f"{prefix}{name.upper()}")
    return names


def test_every_object_validates_strictly(objects: list[Manifest]) -> None:
    assert sorted(o["kind"] for o in objects) == KINDS
    assert validate_builtin(objects) == []
    assert validate_custom(objects) == []


def test_mlflow_is_the_registry_on_postgresql_and_the_bucket_behind_its_auth_app(
    hub_variant: Variant, objects: list[Manifest]
) -> None:
    answers = answers_of(hub_variant[2])
    deployment = one(objects, "Deployment", "mlflow")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = container["args"]
    assert container["command"] == ["mlflow"] and args[0] == "server"
    assert args[args.index("--app-name") + 1] == "basic-auth"
    assert "--serve-artifacts" in args
    workers = int(args[args.index("--workers") + 1])
    assert workers == max(2, min(8, answers["hub_models"] // 250 + 2))
    assert workers >= (4 if answers["hub_models"] >= 500 else 2)
    env = {e["name"]: e for e in container["env"]}
    store = env["MLFLOW_BACKEND_STORE_URI"]["valueFrom"]["secretKeyRef"]
    assert store == {"name": "mlflow", "key": "backend-store-uri"}
    assert env["MLFLOW_AUTH_CONFIG_PATH"]["value"].startswith("/etc/mlflow-auth/")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["path"] == "/health"
    limits = container["resources"]["limits"]
    assert int(limits["memory"].removesuffix("Mi")) >= workers * 300
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["automountServiceAccountToken"] is False
    # The Secret the ExternalSecret writes holds every key the pod reads.
    secret = one(objects, "ExternalSecret", "mlflow")["spec"]["target"]
    keys = {e["valueFrom"]["secretKeyRef"]["key"] for e in container["env"] if "valueFrom" in e}
    assert secret["name"] == "mlflow" and keys <= set(secret["template"]["data"])
    assert "database_uri = postgresql://" in secret["template"]["data"]["basic_auth.ini"]
    service = one(objects, "Service", "mlflow")
    assert service["metadata"]["namespace"] == "mlflow"
    assert service["spec"]["ports"] == [{"name": "http", "port": 5000, "targetPort": "http"}]
    assert one(objects, "PodDisruptionBudget", "mlflow")["spec"]["minAvailable"] == 1


def test_trellis_runs_several_replicas_with_probes_metrics_and_real_settings(
    hub_variant: Variant, objects: list[Manifest]
) -> None:
    answers = answers_of(hub_variant[2])
    deployment = one(objects, "Deployment", "trellis")
    assert deployment["spec"]["replicas"] == answers["hub_trellis_replicas"] >= 2
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["trellis"] and container["args"] == ["serve"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {"configMapRef": {"name": "trellis"}} in container["envFrom"]
    assert {"secretRef": {"name": "trellis"}} in container["envFrom"]
    config = one(objects, "ConfigMap", "trellis")["data"]
    secret = one(objects, "ExternalSecret", "trellis")["spec"]["target"]["template"]["data"]
    known = settings_names() | {"KUBECONFIG"}
    assert set(config) <= known and set(secret) <= known, (set(config) | set(secret)) - known
    assert secret["TRELLIS_SCORECARDS__DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "TRELLIS_API_TOKENS" in secret and "TRELLIS_MLFLOW__TRACKING_URI" in secret
    contexts = ["hub", *answers["hub_spoke_contexts"]]
    assert config["TRELLIS_KUBERNETES__CONTEXTS"] == ",".join(contexts)
    assert config["TRELLIS_CATALOG__REQUIRES_TOKEN"] == "true"
    # KUBECONFIG lists the hub's file, then one file per spoke, from the mounted volumes.
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    files = config["KUBECONFIG"].split(":")
    assert files == [
        f"{mounts['hub-kubeconfig']}/kubeconfig.yaml",
        *(f"{mounts['clusters']}/{context}.yaml" for context in answers["hub_spoke_contexts"]),
    ]
    hub_file = one(objects, "ConfigMap", volumes["hub-kubeconfig"]["configMap"]["name"])
    hub = yaml.safe_load(hub_file["data"]["kubeconfig.yaml"])
    assert [c["name"] for c in hub["contexts"]] == ["hub"]
    token = hub["users"][0]["user"]["tokenFile"]
    assert token == f"{mounts['kube-api-access']}/token"
    projected = volumes["kube-api-access"]["projected"]["sources"]
    assert {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}} in projected
    clusters = one(objects, "ExternalSecret", "trellis-clusters")["spec"]["target"]["name"]
    assert volumes["clusters"]["secret"]["secretName"] == clusters
    assert config["TRELLIS_STATE_DIR"] == mounts["state"]
    # Prometheus scrapes /metrics through the Service's named port.
    monitor = one(objects, "ServiceMonitor", "trellis")["spec"]
    service = one(objects, "Service", "trellis")
    assert monitor["endpoints"][0]["path"] == "/metrics"
    assert monitor["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    budget = one(objects, "PodDisruptionBudget", "trellis")["spec"]
    assert budget["maxUnavailable"] == 1
    assert budget["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


def test_the_service_accounts_carry_the_clouds_workload_identity(
    hub_variant: Variant, objects: list[Manifest]
) -> None:
    answers = answers_of(hub_variant[2])
    for name in ("mlflow", "trellis"):
        account = one(objects, "ServiceAccount", name)
        annotations = account["metadata"].get("annotations", {})
        labels = one(objects, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
        if answers["hub_cloud"] == "gcp":
            suffix = "registry" if name == "mlflow" else "trellis"
            email = f"{answers['hub_name']}-{suffix}@{answers['hub_gcp_project']}"
            assert annotations == {
                "iam.gke.io/gcp-service-account": f"{email}.iam.gserviceaccount.com"
            }
        elif answers["hub_cloud"] == "azure":
            assert "azure.workload.identity/client-id" in annotations
            assert labels["azure.workload.identity/use"] == "true"
        else:  # EKS Pod Identity: the association in Terraform names the account
            assert annotations == {}
        assert account["automountServiceAccountToken"] is False


def test_the_cluster_role_holds_exactly_the_reads_trellis_makes(objects: list[Manifest]) -> None:
    source = (REPO / "backend" / "trellis" / "sources" / "kubernetes.py").read_text()
    # Every Kubernetes API call (a file's `read_text` is not one).
    verbs = r"(?:list|read|create|patch|delete|replace|watch)_(?!text\b)\w+"
    calls = set(re.findall(rf"\.({verbs})\(?", source))
    assert calls == {
        "list_cluster_custom_object",
        "list_deployment_for_all_namespaces",
        "list_network_policy_for_all_namespaces",
    }
    assert '_KSERVE = ("serving.kserve.io", "v1beta1", "inferenceservices")' in source
    role = one(objects, "ClusterRole", "trellis-reader")
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert granted == {
        ("serving.kserve.io", "inferenceservices", "list"),
        ("apps", "deployments", "list"),
        ("networking.k8s.io", "networkpolicies", "list"),
    }
    binding = one(objects, "ClusterRoleBinding", "trellis-reader")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "trellis", "namespace": "trellis"}
    ]
    assert not [o for o in objects if o["kind"] in ("Role", "RoleBinding", "Lease")]


def test_gpu_operator_settings_dcgm_scrape_and_kserve_mode(
    hub_variant: Variant, objects: list[Manifest]
) -> None:
    values = yaml.safe_load((hub_variant[2] / "deploy" / "gpu-operator-values.yaml").read_text())
    plugin = one(objects, "ConfigMap", values["devicePlugin"]["config"]["name"])
    config = yaml.safe_load(plugin["data"][values["devicePlugin"]["config"]["default"]])
    assert config["flags"]["migStrategy"] == "none"
    metrics = one(objects, "ConfigMap", values["dcgmExporter"]["config"]["name"])
    (csv,) = metrics["data"].values()
    counters = {line.split(",")[0] for line in csv.splitlines() if not line.startswith("#")}
    assert {queries.DCGM_GPU_UTIL, queries.DCGM_FB_USED_MIB} <= counters
    assert values["driver"]["enabled"] is (answers_of(hub_variant[2])["hub_cloud"] != "gcp")
    monitor = one(objects, "ServiceMonitor", "nvidia-dcgm-exporter")
    assert monitor["metadata"]["namespace"] == "gpu-operator"
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True
    kserve = one(objects, "ConfigMap", "inferenceservice-config")
    assert kserve["metadata"]["namespace"] == "kserve"
    assert json.loads(kserve["data"]["deploy"]) == {"defaultDeploymentMode": "RawDeployment"}


def _rules(objects: list[Manifest]) -> dict[str, Any]:
    return {"groups": one(objects, "PrometheusRule", "trellis-golden-signals")["spec"]["groups"]}


def test_the_recording_rules_read_trellis_s_metric_names(objects: list[Manifest]) -> None:
    rules = _rules(objects)
    text = json.dumps(rules)
    for metric in (
        queries.MLSERVER_SUCCESS, queries.MLSERVER_FAILURE, queries.MLSERVER_REST_SECONDS,
        queries.TRITON_SUCCESS, queries.TRITON_FAILURE, queries.VLLM_SUCCESS,
        queries.VLLM_E2E_SECONDS, queries.VLLM_HTTP_REQUESTS, queries.DCGM_GPU_UTIL,
    ):  # fmt: skip
        assert metric in text, metric
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule["record"].startswith("server:") and "rate(" in rule["expr"]:
                assert f"by ({queries.BY_SERVER}" in rule["expr"], rule["record"]
    records = [rule["record"] for group in rules["groups"] for rule in group["rules"]]
    assert len(records) == len(set(records))
    # Every recorded name Trellis looks for is recorded here.
    assert set(queries.hub_recorded_names()) <= set(records)


def test_no_other_blueprint_records_a_name_the_hub_records(objects: list[Manifest]) -> None:
    """Rule files loaded into one Prometheus must not write the same series twice."""
    hub = {rule["record"] for group in _rules(objects)["groups"] for rule in group["rules"]}
    elsewhere: dict[str, set[str]] = {}
    for path in (REPO / "blueprints").glob("*/template/**/*"):
        if path.is_file() and "platform-hub" not in path.parts:
            found = re.findall(r"^\s*-\s*record:\s*(\S+)", path.read_text(), re.M)
            if found:
                elsewhere[str(path.relative_to(REPO))] = set(found)
    assert elsewhere, "llm-service records its vLLM rules"
    for path, names in elsewhere.items():
        assert not names & hub, path
    assert not hub & {queries.VLLM_RECORDED_TTFT_BUCKETS, queries.VLLM_RECORDED_GENERATION_TOKENS}


#: Two servers: MLServer's answers 10 successes and 2 failures a second; vLLM's 4 successes,
#: and its API 3 answers and 1 server error a second; 2 of vLLM's requests within one second,
#: and 2 of its 4 first tokens within a quarter of a second (raw counters). A third, vLLM
#: in a spoke, reaches the hub only through its llm-service's recorded buckets.
MLSERVER = 'namespace="fraud", inferenceservice="fraud-detector", region="eu-west-1"'
VLLM = 'namespace="chat", inferenceservice="assistant", region="us-east-1"'
EDGE = 'namespace="chat", inferenceservice="edge-assistant", region="ap-south-1"'
SERIES = {
    f"model_infer_request_success_total{{{MLSERVER}}}": 10,
    f"model_infer_request_failure_total{{{MLSERVER}}}": 2,
    f"vllm:request_success_total{{{VLLM}}}": 4,
    f'http_requests_total{{{VLLM}, handler="/v1/chat/completions", status="5xx"}}': 1,
    f'http_requests_total{{{VLLM}, handler="/v1/chat/completions", status="2xx"}}': 3,
    f'vllm:e2e_request_latency_seconds_bucket{{{VLLM}, le="1"}}': 2,
    f'vllm:e2e_request_latency_seconds_bucket{{{VLLM}, le="+Inf"}}': 5,
    f'vllm:time_to_first_token_seconds_bucket{{{VLLM}, le="0.25"}}': 2,
    f'vllm:time_to_first_token_seconds_bucket{{{VLLM}, le="+Inf"}}': 4,
}
#: llm-service's recorded time-to-first-token buckets (rates already), with the label the
#: spoke's Prometheus adds on the way. Where a server has them, the hub reads them first, as
#: Trellis does without the hub's rules: vLLM's say all 4 first tokens came within 0.25 s.
RECORDED_TTFT = "server:vllm_time_to_first_token_seconds_bucket:rate5m"
GAUGES = {
    f'{RECORDED_TTFT}{{{VLLM}, cluster="edge-1", le="0.25"}}': 4,
    f'{RECORDED_TTFT}{{{VLLM}, cluster="edge-1", le="+Inf"}}': 4,
    f'{RECORDED_TTFT}{{{EDGE}, cluster="edge-1", le="0.25"}}': 1,
    f'{RECORDED_TTFT}{{{EDGE}, cluster="edge-1", le="+Inf"}}': 4,
}
EXPECTED = {
    "server:requests:rate5m": {MLSERVER: 12, VLLM: 4},
    "server:requests:rate1h": {MLSERVER: 12, VLLM: 4},
    "server:api_requests:rate5m": {MLSERVER: 12, VLLM: 4},
    "server:request_errors:ratio_rate5m": {MLSERVER: 2 / 12, VLLM: 0.25},
    # Of vLLM's 4 requests a second, 2 within one second: the median is the top of that bucket.
    "server:request_duration_seconds:p50_5m": {VLLM: 1},
    "server:request_duration_seconds:p50_1h": {VLLM: 1},
    "server:request_duration_seconds_bucket:rate5m": {
        f'{VLLM}, le="1"': 2,
        f'{VLLM}, le="+Inf"': 5,
    },
    # vLLM's recorded buckets, not its raw ones (which would give 0.25): the median is half
    # way into the first bucket. The spoke's median falls past 0.25 s: the top finite bound.
    "server:time_to_first_token_seconds:p50_5m": {VLLM: 0.125, EDGE: 0.25},
    "server:time_to_first_token_seconds_bucket:rate5m": {
        f'{VLLM}, le="0.25"': 4,
        f'{VLLM}, le="+Inf"': 4,
        f'{EDGE}, le="0.25"': 1,
        f'{EDGE}, le="+Inf"': 4,
    },
}


@pytest.mark.prometheus
def test_promtool_checks_and_evaluates_the_recording_rules(
    objects: list[Manifest], tmp_path: Path
) -> None:
    _, promtool = binaries()
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(_rules(objects)))
    cases = {
        "rule_files": [str(rules)],
        "evaluation_interval": "30s",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    *(
                        {"series": series, "values": f"0+{per_second * 60}x70"}
                        for series, per_second in SERIES.items()
                    ),
                    *(
                        {"series": series, "values": f"{value}x70"}
                        for series, value in GAUGES.items()
                    ),
                ],
                "promql_expr_test": [
                    {
                        "expr": record,
                        "eval_time": "70m",
                        "exp_samples": [
                            {"labels": f"{record}{{{labels}}}", "value": value}
                            for labels, value in samples.items()
                        ],
                    }
                    for record, samples in EXPECTED.items()
                ],
            }
        ],
    }
    (tmp_path / "cases.yaml").write_text(yaml.safe_dump(cases))
    checked = ""
    for command in (
        ["check", "rules", str(rules)],
        ["test", "rules", str(tmp_path / "cases.yaml")],
    ):
        result = subprocess.run(
            [promtool, *command], capture_output=True, text=True, check=False, timeout=scaled(60)
        )
        assert result.returncode == 0, result.stdout + result.stderr
        checked += result.stdout
    assert "SUCCESS: 25 rules found" in checked
