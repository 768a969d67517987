"""platform-hub's Terraform, per cloud, and one checkov run over everything the hub deploys.

Each cloud's files parse (python-hcl2) and use that cloud's provider only. The hub's cluster is
created, or an existing one is attached, with a system pool and a GPU training pool that is
tainted, autoscaled between the answered bounds and spot when asked; the artifact bucket is
encrypted with a customer-managed key, versioned and closed to the public; the managed
PostgreSQL holds the registry's and Trellis's databases and is private; the registry, Trellis
and CI each have a workload identity bound to exactly their own service account or
repository. checkov scans the rendered Kubernetes objects, the Terraform and the CI of every
variant in one run and finds nothing beyond the short list the repository gives reasons for.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.checkov_scan import Scans, assert_only_justified_skips
from support.manifests import render_overlay
from support.terraform import Terraform, attr, blocks

Variant = tuple[str, dict[str, Any], Path]
#: Checks suppressed inside the Terraform, each on the one resource it cannot apply to.
PINNED_SUPPRESSIONS = {
    ("CKV_AWS_18", "aws_s3_bucket.access_logs"),  # a log bucket does not log itself
    ("CKV_GCP_62", "google_storage_bucket.access_logs"),  # a log bucket does not log itself
    ("CKV2_AZURE_21", "azurerm_storage_container.artifacts"),  # logged by a diagnostic setting
}
PROVIDERS = {
    "aws": {"aws", "postgresql"},
    "gcp": {"google", "google-beta"},
    "azure": {"azurerm", "postgresql"},
}
GPU_TAINT = "nvidia.com/gpu=present:NoSchedule"
#: The training pool's machine type of each variant's cloud and GPU product.
MACHINES = {
    ("aws", "NVIDIA-L4"): "g6.12xlarge",
    ("gcp", "NVIDIA-A100-SXM4-80GB"): "a2-ultragpu-8g",
    ("azure", "NVIDIA-H100-80GB-HBM3"): "Standard_ND96isr_H100_v5",
}


def answers_of(repo: Path) -> dict[str, Any]:
    return dict(yaml.safe_load((repo / ".copier-answers.yml").read_text()))


@pytest.fixture(scope="module")
def tf(hub_variant: Variant) -> Terraform:
    return Terraform(hub_variant[2] / "infra")


def test_every_file_parses_and_only_the_chosen_cloud_is_used(
    hub_variant: Variant, tf: Terraform
) -> None:
    _, answers, repo = hub_variant
    cloud = answers["hub_cloud"]
    assert {p.name for p in tf.files} == {
        "cluster.tf", "database.tf", "identity.tf", "main.tf", "outputs.tf", "providers.tf",
        "secrets.tf", "storage.tf", "variables.tf", "versions.tf",
    }  # fmt: skip
    required = {
        key for block in tf.terraform for p in blocks(block, "required_providers") for key in p
    }
    assert required == PROVIDERS[cloud] | {"random"}
    assert set(tf.providers) == PROVIDERS[cloud]
    prefixes = {address.split("_", 1)[0] for address in tf.resources}
    main = {"aws": "aws", "gcp": "google", "azure": "azurerm"}[cloud]
    assert prefixes <= {main, "random", "postgresql"} and main in prefixes, prefixes
    assert tf.default("name") == answers["hub_name"]
    assert tf.default("region") == answers["hub_cloud_region"]
    assert not list(repo.glob("infra/*.jinja")), "every template was rendered"


def test_a_cluster_is_created_or_the_existing_one_attached(
    hub_variant: Variant, tf: Terraform
) -> None:
    answers = answers_of(hub_variant[2])
    cloud, existing = answers["hub_cloud"], answers["hub_existing_cluster"]
    cluster = {
        "aws": "aws_eks_cluster.hub",
        "gcp": "google_container_cluster.hub",
        "azure": "azurerm_kubernetes_cluster.hub",
    }[cloud]
    if existing:
        assert cluster not in tf.resources and cluster in tf.data
        assert tf.default("existing_cluster") == existing
        return
    assert cluster in tf.resources and cluster not in tf.data
    body = tf.resources[cluster]
    if cloud == "aws":
        (vpc,) = blocks(body, "vpc_config")
        assert attr(vpc, "endpoint_public_access") is False
        assert blocks(body, "encryption_config"), "secrets are envelope-encrypted"
    elif cloud == "gcp":
        (private,) = blocks(body, "private_cluster_config")
        assert attr(private, "enable_private_nodes") is True
        assert attr(body, "remove_default_node_pool") is True
        assert attr(blocks(body, "database_encryption")[0], "state") == "ENCRYPTED"
    else:
        assert attr(body, "private_cluster_enabled") is True
        assert attr(body, "workload_identity_enabled") is True
    assert tf.default("kubernetes_version") == answers["hub_kubernetes_version"]


def _pool(tf: Terraform, cloud: str, name: str) -> dict[str, Any]:
    kind = {
        "aws": "aws_eks_node_group",
        "gcp": "google_container_node_pool",
        "azure": "azurerm_kubernetes_cluster_node_pool",
    }[cloud]
    return tf.resources[f"{kind}.{name}"]


def _taints(cloud: str, pool: dict[str, Any]) -> list[str]:
    if cloud == "aws":
        effects = {"NO_SCHEDULE": "NoSchedule"}
        return [
            f"{attr(t, 'key')}={attr(t, 'value')}:{effects[attr(t, 'effect')]}"
            for t in blocks(pool, "taint")
        ]
    if cloud == "gcp":
        effects = {"NO_SCHEDULE": "NoSchedule"}
        node = blocks(pool, "node_config")[0]
        return [
            f"{attr(t, 'key')}={attr(t, 'value')}:{effects[attr(t, 'effect')]}"
            for t in blocks(node, "taint")
        ]
    return [GPU_TAINT] if GPU_TAINT in json.dumps(attr(pool, "node_taints")) else []


def _labels(cloud: str, pool: dict[str, Any]) -> dict[str, str]:
    if cloud == "aws":
        return dict(attr(pool, "labels"))
    if cloud == "gcp":
        return dict(attr(blocks(pool, "node_config")[0], "labels"))
    return dict(attr(pool, "node_labels"))


def _bounds(cloud: str, pool: dict[str, Any]) -> tuple[str, str]:
    if cloud == "aws":
        scaling = blocks(pool, "scaling_config")[0]
        return attr(scaling, "min_size"), attr(scaling, "max_size")
    if cloud == "gcp":
        scaling = blocks(pool, "autoscaling")[0]
        return attr(scaling, "total_min_node_count"), attr(scaling, "total_max_node_count")
    assert attr(pool, "auto_scaling_enabled") is True
    return attr(pool, "min_count"), attr(pool, "max_count")


def test_a_system_pool_and_a_tainted_autoscaled_gpu_training_pool(
    hub_variant: Variant, tf: Terraform
) -> None:
    answers = answers_of(hub_variant[2])
    cloud = answers["hub_cloud"]
    system = _pool(tf, cloud, "platform" if cloud == "azure" else "system")
    gpu = _pool(tf, cloud, "gpu_training")
    assert _taints(cloud, system) == []
    assert _taints(cloud, gpu) == [GPU_TAINT]
    assert _labels(cloud, gpu)["nvidia.com/gpu.product"] == "${var.gpu_product}"
    assert _labels(cloud, system)["trellis.dev/pool"] == "system"
    assert _bounds(cloud, system) == ("${var.system_min_nodes}", "${var.system_max_nodes}")
    assert _bounds(cloud, gpu) == ("${var.gpu_min_nodes}", "${var.gpu_max_nodes}")
    assert tf.default("gpu_product") == answers["hub_gpu_product"]
    assert (tf.default("gpu_min_nodes"), tf.default("gpu_max_nodes")) == (
        answers["hub_gpu_min_nodes"],
        answers["hub_gpu_max_nodes"],
    )
    assert (tf.default("system_min_nodes"), tf.default("system_max_nodes")) == (
        answers["hub_system_min_nodes"],
        answers["hub_system_max_nodes"],
    )
    assert tf.default("gpu_spot") is answers["hub_gpu_spot"]
    if cloud == "aws":
        assert attr(gpu, "capacity_type") == '${var.gpu_spot ? "SPOT" : "ON_DEMAND"}'
    elif cloud == "gcp":
        assert attr(blocks(gpu, "node_config")[0], "spot") == "${var.gpu_spot}"
    else:
        assert attr(gpu, "priority") == '${var.gpu_spot ? "Spot" : "Regular"}'
        assert "kubernetes.azure.com/scalesetpriority=spot:NoSchedule" in json.dumps(
            attr(gpu, "node_taints")
        )
    assert tf.default("gpu_machine_type") == MACHINES[cloud, answers["hub_gpu_product"]]


@pytest.mark.tools
def test_the_artifact_bucket_is_encrypted_versioned_private_and_named_as_mlflow_uses_it(
    hub_variant: Variant, tf: Terraform
) -> None:
    answers = answers_of(hub_variant[2])
    cloud = answers["hub_cloud"]
    objects = render_overlay(hub_variant[2] / "deploy")
    (mlflow,) = [
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "mlflow"
    ]
    args = mlflow["spec"]["template"]["spec"]["containers"][0]["args"]
    destination = args[args.index("--artifacts-destination") + 1]
    expected_bucket = f"{answers['hub_name']}-{answers['hub_cloud_region']}-artifacts"
    if cloud == "aws":
        assert tf.locals["artifact_bucket"] == "${var.name}-${var.region}-artifacts"
        assert destination == f"s3://{expected_bucket}/mlflow"
        rule = blocks(
            tf.resources["aws_s3_bucket_server_side_encryption_configuration.artifacts"], "rule"
        )[0]
        default = blocks(rule, "apply_server_side_encryption_by_default")[0]
        assert attr(default, "sse_algorithm") == "aws:kms"
        assert attr(default, "kms_master_key_id") == "${aws_kms_key.hub.arn}"
        versioning = tf.resources["aws_s3_bucket_versioning.artifacts"]
        assert attr(blocks(versioning, "versioning_configuration")[0], "status") == "Enabled"
        block = tf.resources["aws_s3_bucket_public_access_block.artifacts"]
        for setting in ("block_public_acls", "block_public_policy", "ignore_public_acls",
                        "restrict_public_buckets"):  # fmt: skip
            assert attr(block, setting) is True, setting
    elif cloud == "gcp":
        assert tf.locals["artifact_bucket"] == "${var.name}-${var.region}-artifacts"
        assert destination == f"gs://{expected_bucket}/mlflow"
        bucket = tf.resources["google_storage_bucket.artifacts"]
        assert attr(bucket, "public_access_prevention") == "enforced"
        assert attr(bucket, "uniform_bucket_level_access") is True
        assert attr(blocks(bucket, "versioning")[0], "enabled") is True
        encryption = blocks(bucket, "encryption")[0]
        assert (
            attr(encryption, "default_kms_key_name")
            == '${google_kms_crypto_key.hub["artifacts"].id}'
        )
    else:
        account = tf.default("storage_account")
        assert destination == f"wasbs://artifacts@{account}.blob.core.windows.net/mlflow"
        body = tf.resources["azurerm_storage_account.artifacts"]
        assert attr(body, "public_network_access_enabled") is False
        assert attr(body, "allow_nested_items_to_be_public") is False
        assert attr(body, "shared_access_key_enabled") is False
        assert attr(blocks(body, "blob_properties")[0], "versioning_enabled") is True
        assert blocks(body, "customer_managed_key"), "encrypted with the hub's key"


def test_one_private_postgresql_with_the_registrys_and_trellis_s_databases(
    hub_variant: Variant, tf: Terraform
) -> None:
    cloud = answers_of(hub_variant[2])["hub_cloud"]
    databases = {
        "aws": "postgresql_database.app",
        "gcp": "google_sql_database.app",
        "azure": "postgresql_database.app",
    }[cloud]
    assert attr(tf.resources[databases], "for_each") in (
        "${postgresql_role.app}",
        "${google_sql_user.app}",
    )
    assert (
        attr(tf.resources["random_password.database"], "for_each")
        == '${toset(["mlflow", "trellis"])}'
    )
    if cloud == "aws":
        server = tf.resources["aws_db_instance.hub"]
        assert attr(server, "publicly_accessible") is False
        assert attr(server, "storage_encrypted") is True
        assert attr(server, "multi_az") is True
    elif cloud == "gcp":
        server = tf.resources["google_sql_database_instance.hub"]
        settings = blocks(server, "settings")[0]
        assert attr(blocks(settings, "ip_configuration")[0], "ipv4_enabled") is False
        assert attr(settings, "availability_type") == "REGIONAL"
    else:
        server = tf.resources["azurerm_postgresql_flexible_server.hub"]
        assert attr(server, "public_network_access_enabled") is False
        assert "azurerm_private_endpoint.database" in tf.resources


def test_the_registry_trellis_and_ci_each_have_their_own_identity(
    hub_variant: Variant, tf: Terraform
) -> None:
    answers = answers_of(hub_variant[2])
    cloud = answers["hub_cloud"]
    if cloud == "aws":
        bound = {
            (attr(body, "namespace"), attr(body, "service_account")): attr(body, "role_arn")
            for address, body in tf.of_type("aws_eks_pod_identity_association").items()
        }
        assert bound == {
            ("mlflow", "mlflow"): "${aws_iam_role.registry.arn}",
            ("trellis", "trellis"): "${aws_iam_role.trellis.arn}",
        }
        trust = json.dumps(tf.data["aws_iam_policy_document.ci_trust"])
        assert "repo:${var.ci_repository}:ref:refs/heads/main" in trust
        # Trellis's role reads its own parameter, never the bucket.
        assert "s3:" not in json.dumps(tf.data["aws_iam_policy_document.trellis"])
    elif cloud == "gcp":
        pool = "${var.project_id}.svc.id.goog"
        members = {
            address: attr(body, "member")
            for address, body in tf.of_type("google_service_account_iam_member").items()
        }
        assert (
            members["google_service_account_iam_member.registry_workload_identity"]
            == f"serviceAccount:{pool}[mlflow/mlflow]"
        )
        assert (
            members["google_service_account_iam_member.trellis_workload_identity"]
            == f"serviceAccount:{pool}[trellis/trellis]"
        )
        assert (
            "attribute.repository/${var.ci_repository}"
            in members["google_service_account_iam_member.ci_workload_identity"]
        )
        assert tf.default("ci_repository") == answers["hub_repo_path"]
    else:
        credentials = tf.resources["azurerm_federated_identity_credential.pods"]
        assert attr(credentials, "for_each") == {
            "registry": "system:serviceaccount:mlflow:mlflow",
            "trellis": "system:serviceaccount:trellis:trellis",
        }
        assert (
            attr(tf.resources["azurerm_role_assignment.registry"], "scope")
            == "${azurerm_storage_container.artifacts.id}"
        )
        assert tf.default("ci_subject") == f"repo:{answers['hub_repo_path']}:ref:refs/heads/main"


@pytest.mark.tools
def test_checkov_finds_nothing_beyond_the_listed_skips(
    hub_variant: Variant, checkov_scans: Scans
) -> None:
    name, _, repo = hub_variant
    assert_only_justified_skips(
        checkov_scans.of("platform-hub", name),
        repo,
        frameworks={"kubernetes", "terraform"},
        pinned=PINNED_SUPPRESSIONS,
    )
