"""platform-spoke's Terraform, per cloud, and one checkov run over every spoke variant.

A spoke attaches GPU pools to its region's cluster, keeps a regional data store whose key
lives in the same region and which answers no request from outside the region's network, and
pulls models from the hub with an identity that can only read. checkov scans the rendered
Kubernetes objects and the Terraform of every variant in one run and finds nothing beyond the
few checks the repository sets aside with a reason (the scan reads no configuration: the
listed checks are set aside here).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.checkov_scan import Scans, assert_only_justified_skips
from support.terraform import Terraform, attr, blocks

Variant = tuple[str, dict[str, Any], Path]
PROVIDER = {"aws": "aws", "gcp": "google", "azure": "azurerm"}
#: Checks suppressed inside the generated files, each on the one object it cannot apply to.
PINNED_SUPPRESSIONS = {
    ("CKV_AWS_18", "aws_s3_bucket.access_logs"),  # a log bucket does not log itself
    ("CKV_GCP_62", "google_storage_bucket.access_logs"),  # a log bucket does not log itself
    ("CKV_K8S_23", "DaemonSet.monitoring.dcgm-exporter"),  # pod-resources socket: root only
    ("CKV_K8S_40", "DaemonSet.monitoring.dcgm-exporter"),  # pod-resources socket: root only
}
#: What reading a store may take: listing, getting objects, decrypting them.
READ_ONLY_AWS = {"s3:ListBucket", "s3:GetBucketLocation", "s3:GetObject", "s3:GetObjectVersion",
                 "kms:Decrypt"}  # fmt: skip


def answers_of(repo: Path) -> dict[str, Any]:
    return yaml.safe_load((repo / ".copier-answers.yml").read_text())


def test_the_terraform_parses_and_uses_only_the_chosen_cloud(spoke_variant: Variant) -> None:
    _, answers, repo = spoke_variant
    tf = Terraform(repo / "infra")
    assert {p.name for p in tf.files} == {
        "main.tf", "node_pools.tf", "outputs.tf", "providers.tf", "pull_identity.tf",
        "storage.tf", "variables.tf", "versions.tf",
    }  # fmt: skip
    provider = PROVIDER[answers["spoke_cloud"]]
    assert set(tf.providers) == {provider}
    assert {r.split("_", 1)[0] for r in tf.resources} == {provider}
    assert tf.default("region") == answers["spoke_region"]
    assert tf.default("name") == answers["spoke_name"]
    assert tf.default("allowed_cidrs") == answers_of(repo)["spoke_allowed_cidrs"]
    backend = "".join(tf.parsed["versions.tf"]["terraform"][0]["backend"][0])
    assert backend == {"aws": "s3", "gcp": "gcs", "azure": "azurerm"}[answers["spoke_cloud"]]


def test_gpu_pools_are_tainted_labelled_and_bounded(spoke_variant: Variant) -> None:
    _, answers, repo = spoke_variant
    tf = Terraform(repo / "infra")
    cloud = answers["spoke_cloud"]
    pools = json.dumps(tf.locals["gpu_pools"])
    assert "{inference = {min_nodes = var.inference_min_nodes" in pools
    assert "var.finetune_pool ? {fine-tuning = {min_nodes = 0" in pools
    assert tf.default("finetune_pool") is answers_of(repo)["spoke_finetune_pool"]
    assert tf.default("inference_max_nodes") == answers_of(repo)["spoke_inference_max_nodes"]
    assert tf.default("gpu_product") == answers_of(repo)["spoke_gpu_product"]
    labels = str(tf.locals["gpu_labels"])
    assert '"nvidia.com/gpu.product" = var.gpu_product' in labels
    assert '"trellis.dev/pool" = pool' in labels
    (address,) = tf.of_type(
        {
            "aws": "aws_eks_node_group",
            "gcp": "google_container_node_pool",
            "azure": "azurerm_kubernetes_cluster_node_pool",
        }[cloud]
    )
    pool = tf.resources[address]
    assert attr(pool, "for_each") == "${local.gpu_pools}"
    if cloud == "aws":
        (taint,) = blocks(pool, "taint")
        assert (attr(taint, "key"), attr(taint, "effect")) == ("nvidia.com/gpu", "NO_SCHEDULE")
        assert attr(blocks(pool, "scaling_config")[0], "max_size") == "${each.value.max_nodes}"
    elif cloud == "gcp":
        (taint,) = blocks(blocks(pool, "node_config")[0], "taint")
        assert (attr(taint, "key"), attr(taint, "effect")) == ("nvidia.com/gpu", "NO_SCHEDULE")
        assert attr(blocks(pool, "autoscaling")[0], "total_max_node_count") == (
            "${each.value.max_nodes}"
        )
    else:
        assert attr(pool, "node_taints") == ["nvidia.com/gpu=present:NoSchedule"]
        assert attr(pool, "max_count") == "${each.value.max_nodes}"


def test_the_regional_bucket_and_its_key_live_in_the_spokes_region(spoke_variant: Variant) -> None:
    _, answers, repo = spoke_variant
    tf = Terraform(repo / "infra")
    cloud, region = answers["spoke_cloud"], answers["spoke_region"]
    assert not [r for r in tf.resources if "replication" in r], "regional data never replicates"
    if cloud == "aws":
        assert attr(tf.providers["aws"], "region") == "${var.region}"
        for address, body in tf.resources.items():
            if address.startswith(("aws_s3_", "aws_kms_", "aws_vpc_", "aws_eks_")):
                assert attr(body, "region") == "${var.region}", f"{address} is not pinned"
        assert region in tf.default("data_bucket")
        rule = blocks(
            tf.resources["aws_s3_bucket_server_side_encryption_configuration.data"], "rule"
        )[0]
        default = blocks(rule, "apply_server_side_encryption_by_default")[0]
        assert attr(default, "kms_master_key_id") == "${aws_kms_key.data.arn}"
        assert attr(tf.resources["aws_kms_key.data"], "enable_key_rotation") is True
    elif cloud == "gcp":
        assert attr(tf.resources["google_kms_key_ring.data"], "location") == "${var.region}"
        bucket = tf.resources["google_storage_bucket.data"]
        assert attr(bucket, "location") == "${upper(var.region)}"
        assert attr(blocks(bucket, "encryption")[0], "default_kms_key_name") == (
            "${google_kms_crypto_key.data.id}"
        )
        assert attr(bucket, "public_access_prevention") == "enforced"
        assert region in tf.default("data_bucket")
    else:
        located = [
            address
            for address, body in tf.resources.items()
            if "location" in body and attr(body, "location") != "${var.region}"
        ]
        assert located == [], "every Azure resource is in the spoke's region"
        account = tf.resources["azurerm_storage_account.data"]
        assert attr(account, "account_replication_type") in {"ZRS", "LRS"}
        key = blocks(account, "customer_managed_key")[0]
        assert attr(key, "key_vault_key_id") == "${azurerm_key_vault_key.data.versionless_id}"
        vault = tf.resources["azurerm_key_vault.data"]
        assert attr(vault, "location") == "${var.region}"
        assert attr(tf.resources["azurerm_resource_group.spoke"], "location") == "${var.region}"
        assert re.fullmatch(r"[a-z0-9]{3,24}", tf.default("storage_account_name"))


def test_regional_data_cannot_be_read_from_outside_the_region(spoke_variant: Variant) -> None:
    _, answers, repo = spoke_variant
    tf = Terraform(repo / "infra")
    cloud = answers["spoke_cloud"]
    if cloud == "aws":
        statements = {
            attr(s, "sid"): s
            for s in blocks(tf.data["aws_iam_policy_document.data_bucket"], "statement")
        }
        for sid, variable, values in (
            ("OnlyThroughTheRegionsEndpoint", "aws:SourceVpce", ["${aws_vpc_endpoint.s3.id}"]),
            ("OnlyFromTheRegionsAddresses", "aws:VpcSourceIp", "${var.allowed_cidrs}"),
        ):
            statement = statements[sid]
            assert attr(statement, "effect") == "Deny"
            assert attr(statement, "actions") == "${local.data_actions}"
            (condition,) = blocks(statement, "condition")
            assert attr(condition, "variable") == variable
            assert attr(condition, "values") == values
        assert "s3:GetObject" in tf.locals["data_actions"]
        endpoint = tf.resources["aws_vpc_endpoint.s3"]
        assert attr(endpoint, "service_name") == "com.amazonaws.${var.region}.s3"
    elif cloud == "gcp":
        perimeter = tf.resources["google_access_context_manager_service_perimeter.region"]
        status = blocks(perimeter, "status")[0]
        assert "storage.googleapis.com" in attr(status, "restricted_services")
        assert attr(status, "resources") == ["projects/${data.google_project.current.number}"]
        level = tf.resources["google_access_context_manager_access_level.region"]
        sources = json.dumps(level)
        assert '"vpc_ip_subnetworks": "${var.allowed_cidrs}"' in sources
        egress = json.dumps(blocks(status, "egress_policies"))
        assert "${google_service_account.model_puller.member}" in egress
        methods = re.findall(r'"method": "([^"]+)"', egress)
        assert methods and all(m.split(".")[-1] in {"get", "list"} for m in methods)
    else:
        for address in ("azurerm_storage_account.data", "azurerm_key_vault.data"):
            body = tf.resources[address]
            assert attr(body, "public_network_access_enabled") is False, address
        account = tf.resources["azurerm_storage_account.data"]
        assert attr(blocks(account, "network_rules")[0], "default_action") == "Deny"
        assert attr(account, "shared_access_key_enabled") is False
        endpoints = tf.of_type("azurerm_private_endpoint")
        assert {attr(body, "subnet_id") for body in endpoints.values()} == {
            "${var.private_endpoint_subnet_id}"
        }
        targets = {
            attr(blocks(b, "private_service_connection")[0], "private_connection_resource_id")
            for b in endpoints.values()
        }
        assert targets == {"${azurerm_storage_account.data.id}", "${azurerm_key_vault.data.id}"}


def test_the_hub_model_reader_can_only_read(spoke_variant: Variant) -> None:
    _, answers, repo = spoke_variant
    tf = Terraform(repo / "infra")
    cloud, store = answers["spoke_cloud"], answers_of(repo)["spoke_hub_model_store"]
    namespaces = answers_of(repo)["spoke_workload_namespaces"]
    assert tf.default("workload_namespaces") == namespaces
    assert tf.locals["model_reader_service_account"] == "hub-model-reader"
    if cloud == "aws":
        statements = blocks(tf.data["aws_iam_policy_document.model_puller"], "statement")
        actions = {a for s in statements for a in attr(s, "actions")}
        assert actions == READ_ONLY_AWS
        assert all(attr(s, "effect") == "Allow" for s in statements)
        assert tf.default("hub_model_bucket") == store.removeprefix("s3://")
        trust = blocks(tf.data["aws_iam_policy_document.model_puller_trust"], "statement")[0]
        subject = next(
            attr(c, "values") for c in blocks(trust, "condition") if "sub" in attr(c, "variable")
        )
        assert "system:serviceaccount:${namespace}:${local.model_reader_service_account}" in (
            json.dumps(subject)
        )
        policies = tf.of_type("aws_iam_role_policy")
        assert {attr(b, "role") for b in policies.values()} == {"${aws_iam_role.model_puller.id}"}
    elif cloud == "gcp":
        grants = [
            (attr(body, "role"), attr(body, "bucket"))
            for address, body in tf.resources.items()
            if attr(body, "member") == "${google_service_account.model_puller.member}"
        ]
        assert grants == [("roles/storage.objectViewer", "${var.hub_model_bucket}")]
        assert tf.default("hub_model_bucket") == store.removeprefix("gs://")
    else:
        grants = [
            body
            for body in tf.of_type("azurerm_role_assignment").values()
            if attr(body, "principal_id")
            == "${azurerm_user_assigned_identity.model_puller.principal_id}"
        ]
        assert [attr(g, "role_definition_name") for g in grants] == ["Storage Blob Data Reader"]
        assert attr(grants[0], "scope").endswith("/containers/${var.hub_model_container}")
        assert tf.default("hub_model_container") == store.rsplit("/", 1)[1]
        credentials = tf.resources["azurerm_federated_identity_credential.model_puller"]
        assert attr(credentials, "for_each") == "${toset(var.workload_namespaces)}"


@pytest.mark.tools
def test_checkov_finds_nothing_beyond_the_justified_skips(
    spoke_variant: Variant, checkov_scans: Scans
) -> None:
    name, _, repo = spoke_variant
    assert_only_justified_skips(
        checkov_scans.of("platform-spoke", name),
        repo,
        frameworks={"kubernetes", "terraform"},
        pinned=PINNED_SUPPRESSIONS,
    )
