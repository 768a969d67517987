"""The Terraform of a generated ml-model repository, per variant.

It must parse, target only the chosen cloud, pass checkov (apart from the checks the generated
``.checkov.yaml`` lists and a few suppressions pinned to single resources), and be safe by
construction: regional buckets that are encrypted with a customer-managed key, versioned,
private and never replicated; a tainted, labelled GPU pool when the model uses GPUs; a CI
identity that only the repository's main line can use.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml

from support.terraform import Terraform, attr, blocks

PROVIDER = {"aws": "aws", "gcp": "google", "azure": "azurerm"}
GPU_POOL = {
    "aws": "aws_eks_node_group",
    "gcp": "google_container_node_pool",
    "azure": "azurerm_kubernetes_cluster_node_pool",
}

#: Checks suppressed inside the Terraform, each on the one resource it cannot apply to, with
#: its reason beside it. Any other suppression fails the checkov test.
PINNED_SUPPRESSIONS = {
    ("CKV_AWS_18", "aws_s3_bucket.access_logs"),  # AWS: a log bucket must not log itself
    ("CKV_AWS_145", "aws_s3_bucket.access_logs"),  # S3 access logs need SSE-S3, not SSE-KMS
    ("CKV_GCP_62", "google_storage_bucket.access_logs"),  # a log bucket does not log itself
    ("CKV2_AZURE_21", "azurerm_storage_container.models"),  # logged by diagnostic settings
    ("CKV2_AZURE_21", "azurerm_storage_container.data"),
}


def taints(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(key, value, effect) of the ``taint`` blocks of a node pool."""
    return [(attr(t, "key"), attr(t, "value"), attr(t, "effect")) for t in blocks(body, "taint")]


@cache
def terraform(repo: Path) -> Terraform:
    return Terraform(repo / "infra")


def answers(repo: Path) -> dict[str, Any]:
    """Every answer the repository was rendered with, defaults included."""
    return yaml.safe_load((repo / ".copier-answers.yml").read_text())


def listed_skips(repo: Path) -> set[str]:
    config = repo / ".checkov.yaml"
    if not config.exists():
        return set()
    listed = (yaml.safe_load(config.read_text()) or {}).get("skip-check") or []
    return {str(check).strip() for check in listed}


def test_every_terraform_file_parses(variant):
    _, _, repo = variant
    tf = terraform(repo)

    names = {path.name for path in tf.files}
    assert {
        "versions.tf",
        "providers.tf",
        "variables.tf",
        "storage.tf",
        "ci_identity.tf",
        "outputs.tf",
    } <= names, names
    assert all(tf.parsed[name] for name in names), "a .tf file parsed to nothing"
    for example in ("backend.hcl.example", "terraform.tfvars.example"):
        with (repo / "infra" / example).open() as handle:
            assert hcl2.load(handle), f"{example} is empty"
    assert not list((repo / "infra").glob("*.jinja")), "unrendered template left in infra/"


def test_only_the_chosen_cloud_is_configured(variant):
    _, _, repo = variant
    cloud = answers(repo)["cloud"]
    tf = terraform(repo)
    provider = PROVIDER[cloud]

    required = {}
    for block in tf.terraform:
        assert attr(block, "required_version").startswith(">="), "Terraform version not pinned"
        for providers in blocks(block, "required_providers"):
            required.update({name: attr(providers, name) for name in providers})
    assert set(required) == {provider}, f"required_providers: {sorted(required)}"
    assert required[provider]["source"] == f"hashicorp/{provider}"
    assert required[provider]["version"].startswith("~>"), "provider version not pinned"
    assert set(tf.providers) == {provider}, f"provider blocks: {sorted(tf.providers)}"

    backends = [backend for block in tf.terraform for backend in blocks(block, "backend")]
    assert [list(backend) for backend in backends] == [
        [{"aws": "s3", "gcp": "gcs", "azure": "azurerm"}[cloud]]
    ], "one backend block, for the chosen cloud, left for the user to configure"

    types = {address.split(".")[0] for address in [*tf.resources, *tf.data]}
    strangers = {type_ for type_ in types if not type_.startswith(f"{provider}_")}
    assert not strangers, f"resources of another provider: {sorted(strangers)}"


def test_variables_are_described_validated_and_default_to_the_answers(variant):
    _, _, repo = variant
    given = answers(repo)
    tf = terraform(repo)

    undescribed = [name for name, body in tf.variables.items() if not attr(body, "description")]
    assert not undescribed, f"variables without a description: {undescribed}"
    for name in (
        "project",
        "owner",
        "data_classification",
        "hub_region",
        "edge_regions",
        "repository",
        "ci_branch",
    ):
        assert blocks(tf.variables[name], "validation"), f"variable {name} has no validation"
    assert tf.default("hub_region") == given["hub_region"]
    assert tf.default("edge_regions") == given["edge_regions"]
    assert tf.default("repository") == given["repository"]
    assert tf.default("owner") == given["owner"]
    assert tf.default("data_classification") == given["data_classification"]
    assert tf.default("ci_branch") == "main"
    # Bucket names depend on the answers only, so other files of the repository can name them.
    assert tf.default("name_suffix") == hashlib.sha1(given["repository"].encode()).hexdigest()[:8]
    # Every region, hub and edges, gets its own set of resources.
    regions = tf.text(tf.locals["regions"])
    assert "var.hub_region" in regions and "var.edge_regions" in regions, regions


@pytest.mark.tools
def test_checkov_finds_nothing_beyond_the_listed_skips(variant, checkov_findings):
    _, _, repo = variant
    findings = checkov_findings["terraform"]
    assert findings.parsing_errors == 0, findings.parsing_errors
    assert len(findings.passed) >= 20, len(findings.passed)

    allowed = listed_skips(repo)
    failed = sorted(
        {
            (check["check_id"], check["resource"], check["check_name"])
            for check in findings.failed
            if check["check_id"] not in allowed
        }
    )
    assert not failed, "checkov failures:\n" + "\n".join(map(str, failed))

    suppressed = {
        (check["check_id"], check["resource"]): check["check_result"] for check in findings.skipped
    }
    unexpected = sorted(set(suppressed) - PINNED_SUPPRESSIONS)
    assert not unexpected, f"checks suppressed in the Terraform without being agreed: {unexpected}"
    unexplained = [key for key, result in suppressed.items() if not result.get("suppress_comment")]
    assert not unexplained, f"suppressions without a reason: {unexplained}"


def test_regional_buckets_are_encrypted_versioned_private_and_pinned(variant):
    _, _, repo = variant
    cloud = answers(repo)["cloud"]
    tf = terraform(repo)
    regional = "${local.regions}"

    if cloud == "aws":
        buckets = tf.of_type("aws_s3_bucket")
        assert set(buckets) == {"aws_s3_bucket.artifacts", "aws_s3_bucket.access_logs"}
        # Every bucket and bucket setting is created once per region, in that region.
        for address, body in tf.resources.items():
            if address.startswith(("aws_s3_bucket", "aws_kms_")):
                assert attr(body, "for_each") == regional, address
                assert attr(body, "region") == "${each.key}", f"{address} is not region-pinned"
        assert not tf.of_type("aws_s3_bucket_replication_configuration"), "data leaves its region"

        key = tf.resources["aws_kms_key.artifacts"]
        assert attr(key, "enable_key_rotation") is True
        sse = tf.resources["aws_s3_bucket_server_side_encryption_configuration.artifacts"]
        default = blocks(blocks(sse, "rule")[0], "apply_server_side_encryption_by_default")[0]
        assert attr(default, "sse_algorithm") == "aws:kms"
        assert "aws_kms_key.artifacts" in attr(default, "kms_master_key_id")
        for name in ("artifacts", "access_logs"):
            versioning = tf.resources[f"aws_s3_bucket_versioning.{name}"]
            assert attr(blocks(versioning, "versioning_configuration")[0], "status") == "Enabled"
            block = tf.resources[f"aws_s3_bucket_public_access_block.{name}"]
            for setting in (
                "block_public_acls",
                "block_public_policy",
                "ignore_public_acls",
                "restrict_public_buckets",
            ):
                assert attr(block, setting) is True, f"{name}: {setting}"
            assert tf.resources[f"aws_s3_bucket_lifecycle_configuration.{name}"]
        logging = tf.resources["aws_s3_bucket_logging.artifacts"]
        assert "aws_s3_bucket.access_logs" in attr(logging, "target_bucket")

    elif cloud == "gcp":
        buckets = tf.of_type("google_storage_bucket")
        assert set(buckets) == {
            "google_storage_bucket.artifacts",
            "google_storage_bucket.access_logs",
        }
        for address, body in buckets.items():
            assert attr(body, "for_each") == regional, address
            assert attr(body, "location") == "${upper(each.key)}", f"{address} is not one region"
            assert attr(body, "uniform_bucket_level_access") is True, address
            assert attr(body, "public_access_prevention") == "enforced", address
            assert attr(blocks(body, "versioning")[0], "enabled") is True, address
            kms = attr(blocks(body, "encryption")[0], "default_kms_key_name")
            assert "google_kms_crypto_key.artifacts[each.key]" in kms, address
            assert blocks(body, "lifecycle_rule"), address
        ring = tf.resources["google_kms_key_ring.artifacts"]
        assert attr(ring, "location") == "${each.key}", "the key must live in the bucket's region"
        artifacts = buckets["google_storage_bucket.artifacts"]
        assert "access_logs" in attr(blocks(artifacts, "logging")[0], "log_bucket")

    else:
        accounts = tf.of_type("azurerm_storage_account")
        assert set(accounts) == {"azurerm_storage_account.artifacts"}
        account = accounts["azurerm_storage_account.artifacts"]
        assert attr(account, "for_each") == regional
        assert attr(account, "location") == "${each.key}", "the account is not region-pinned"
        assert attr(account, "account_replication_type") == "${var.storage_replication}"
        assert tf.default("storage_replication") in {"ZRS", "LRS"}, "geo-replication: data leaves"
        assert not tf.of_type("azurerm_storage_object_replication"), "data leaves its region"
        assert "azurerm_key_vault_key.artifacts" in attr(
            blocks(account, "customer_managed_key")[0], "key_vault_key_id"
        )
        assert attr(account, "infrastructure_encryption_enabled") is True
        assert attr(blocks(account, "blob_properties")[0], "versioning_enabled") is True
        for setting in (
            "public_network_access_enabled",
            "allow_nested_items_to_be_public",
            "shared_access_key_enabled",
        ):
            assert attr(account, setting) is False, setting
        for address, container in tf.of_type("azurerm_storage_container").items():
            assert attr(container, "container_access_type") == "private", address
        vault = tf.resources["azurerm_key_vault.artifacts"]
        assert attr(vault, "location") == "${each.key}", "the key must live in the account's region"
        assert attr(vault, "purge_protection_enabled") is True
        assert tf.resources["azurerm_storage_management_policy.artifacts"]


def test_resources_record_owner_classification_and_region(variant):
    _, _, repo = variant
    cloud = answers(repo)["cloud"]
    tf = terraform(repo)

    common = tf.locals["labels" if cloud == "gcp" else "tags"]
    assert {"owner", "data-classification", "project"} <= set(common), common
    if cloud == "aws":
        default_tags = blocks(tf.providers["aws"], "default_tags")[0]
        assert attr(default_tags, "tags") == "${local.tags}"
        bucket_tags = attr(tf.resources["aws_s3_bucket.artifacts"], "tags")
    elif cloud == "gcp":
        assert attr(tf.providers["google"], "default_labels") == "${local.labels}"
        bucket_tags = attr(tf.resources["google_storage_bucket.artifacts"], "labels")
    else:
        bucket_tags = attr(tf.resources["azurerm_storage_account.artifacts"], "tags")
        assert "local.tags" in json.dumps(bucket_tags)
    assert "region" in json.dumps(bucket_tags), bucket_tags


def test_gpu_pool_is_tainted_and_labelled_only_with_gpus(variant):
    _, _, repo = variant
    given = answers(repo)
    cloud = given["cloud"]
    tf = terraform(repo)
    pools = tf.of_type(GPU_POOL[cloud])

    if not given["use_gpu"]:
        assert not pools, "a GPU pool without use_gpu"
        assert not (repo / "infra" / "gpu_pool.tf").exists()
        return
    assert set(pools) == {f"{GPU_POOL[cloud]}.gpu"}, sorted(pools)
    pool = pools[f"{GPU_POOL[cloud]}.gpu"]
    assert tf.default("gpu_product") == given["gpu_product"]

    if cloud == "aws":
        assert attr(pool, "cluster_name") == "${var.hub_cluster_name}", "not the existing cluster"
        assert taints(pool) == [("nvidia.com/gpu", "present", "NO_SCHEDULE")], taints(pool)
        labels = attr(pool, "labels")
        assert "NVIDIA" in attr(pool, "ami_type")
    elif cloud == "gcp":
        assert attr(pool, "cluster") == "${var.hub_cluster}", "not the existing cluster"
        assert attr(pool, "location") == "${var.hub_region}"
        config = blocks(pool, "node_config")[0]
        assert taints(config) == [("nvidia.com/gpu", "present", "NO_SCHEDULE")], taints(config)
        labels = attr(config, "labels")
        accelerator = blocks(config, "guest_accelerator")[0]
        assert attr(accelerator, "count") == "${var.gpu_accelerator_count}"
        assert tf.default("gpu_accelerator_count") >= given["gpu_count"]
    else:
        assert attr(pool, "kubernetes_cluster_id") == "${var.hub_cluster_id}", "not the cluster"
        assert attr(pool, "node_taints") == ["nvidia.com/gpu=present:NoSchedule"]
        labels = attr(pool, "node_labels")
    assert labels.get("nvidia.com/gpu.product") == "${var.gpu_product}", labels


def test_ci_identity_trusts_only_the_repository_main_line(variant):
    _, _, repo = variant
    given = answers(repo)
    cloud, ci, repository = given["cloud"], given["ci"], given["repository"]
    tf = terraform(repo)

    if cloud == "aws":
        statement = blocks(tf.data["aws_iam_policy_document.ci_trust"], "statement")[0]
        assert attr(statement, "actions") == ["sts:AssumeRoleWithWebIdentity"]
        conditions = {attr(c, "variable"): c for c in blocks(statement, "condition")}
        sub = next(c for variable, c in conditions.items() if variable.endswith(":sub"))
        assert any(variable.endswith(":aud") for variable in conditions), "audience not checked"
        assert attr(sub, "test") == "StringEquals", "subjects must match exactly, no wildcards"
        trust = tf.text(attr(sub, "values"))
    elif cloud == "gcp":
        provider = tf.resources["google_iam_workload_identity_pool_provider.ci"]
        trust = tf.text(attr(provider, "attribute_condition"))
        binding = tf.resources["google_service_account_iam_member.ci_workload_identity"]
        assert tf.text(attr(binding, "member")).endswith(f'/attribute.repository/{repository}"')
    else:
        credential = tf.resources["azurerm_federated_identity_credential.ci"]
        assert attr(credential, "subject") == "${each.value}"
        trust = tf.text(attr(credential, "for_each"))

    prefix = "repo" if ci == "github" else "project_path"
    subjects = re.findall(rf"{prefix}:[^\"'\\\s]+", trust)
    assert subjects, f"no subject condition in {trust}"
    assert all(subject.startswith(f"{prefix}:{repository}:") for subject in subjects), subjects
    main = "ref:refs/heads/main" if ci == "github" else "ref_type:branch:ref:main"
    assert f"{prefix}:{repository}:{main}" in subjects, subjects
    assert not any("*" in subject for subject in subjects), subjects
    if ci == "github":
        others = [s for s in subjects if not s.endswith(main)]
        assert all(":environment:" in subject for subject in others), others
        # The deploy jobs run in one deployment environment per region.
        regions = [given["hub_region"], *given["edge_regions"]]
        assert tf.default("ci_environments") == regions
