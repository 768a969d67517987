"""The Terraform of a generated ml-model repository, per variant.

It must parse, target only the chosen cloud, pass checkov (apart from the checks the generated
``.checkov.yaml`` lists and a few suppressions pinned to single resources), and be safe by
construction: regional buckets that are encrypted with a customer-managed key, versioned,
private and never replicated; workload identities that give the model server and the training
Job exactly their bucket; tainted GPU pools in every region, labelled with a GPU product the
cloud offers, on spot capacity and shared between replicas when asked; a CI identity that only
the repository's main line can use, and that can push the model's image.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import jinja2
import pytest
import yaml
from typer.testing import CliRunner

from support.blueprints import REPO, VARIANTS, Renders, render
from support.terraform import Terraform, attr, blocks
from trellis.cli.app import app

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
    ("CKV_AWS_51", "aws_ecr_repository.train"),  # tags are pushed again; deploys pin digests
    ("CKV_AZURE_166", "azurerm_container_registry.images"),  # quarantine would block deploys
}

#: The node size family (AWS, Azure) or accelerator type (Google Cloud) of each GPU product:
#: what the cloud calls the hardware that NVIDIA's feature discovery labels with that product.
GPU_HARDWARE = {
    "aws": {
        "NVIDIA-A10G": "g5.",
        "NVIDIA-L4": "g6.",
        "NVIDIA-L40S": "g6e.",
        "Tesla-T4": "g4dn.",
        "NVIDIA-A100-SXM4-40GB": "p4d.",
        "NVIDIA-A100-SXM4-80GB": "p4de.",
        "NVIDIA-H100-80GB-HBM3": "p5.",
    },
    "gcp": {
        "NVIDIA-L4": "nvidia-l4",
        "Tesla-T4": "nvidia-tesla-t4",
        "NVIDIA-A100-SXM4-40GB": "nvidia-tesla-a100",
        "NVIDIA-A100-SXM4-80GB": "nvidia-a100-80gb",
        "NVIDIA-H100-80GB-HBM3": "nvidia-h100-80gb",
    },
    "azure": {
        "NVIDIA-A10": "_A10_v5",
        "Tesla-T4": "_T4_v3",
        "NVIDIA-A100-80GB-PCIe": "ads_A100_v4",
        "NVIDIA-A100-SXM4-80GB": "_ND96amsr_A100_v4",
        "NVIDIA-H100-NVL": "_H100_v5",
        "NVIDIA-H100-80GB-HBM3": "_ND96isr_H100_v5",
    },
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


def tfvars_example(repo: Path) -> dict[str, Any]:
    """terraform.tfvars.example as plain data (quotes of keys and strings removed)."""

    def plain(node: Any) -> Any:
        if isinstance(node, dict):
            return {plain(k): plain(v) for k, v in node.items() if not k.startswith("__")}
        if isinstance(node, list):
            return [plain(item) for item in node]
        return node.strip('"') if isinstance(node, str) else node

    with (repo / "infra" / "terraform.tfvars.example").open() as handle:
        return plain(hcl2.load(handle))


def manifest(path: Path) -> dict[str, Any]:
    """The one YAML document of a rendered manifest."""
    return yaml.safe_load(path.read_text())


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
        "workload_identity.tf",
        "registry.tf",
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


#: GPU answers no variant covers: AWS GPU pools, on spot capacity, time-sliced for serving.
AWS_GPU = {
    "project_name": "Route Ranker",
    "framework": "pytorch",
    "use_gpu": True,
    "gpu_product": "NVIDIA-L4",
    "gpu_capacity": "spot",
    "gpu_sharing": "time-slicing",
    "cloud": "aws",
    "hub_region": "eu-central-1",
    "edge_regions": ["us-east-1", "ap-south-1"],
    "ci": "gitlab",
}


@pytest.fixture(scope="module", params=["pytorch-gpu-gitlab-gcp", "three-edges-azure", "aws-gpu"])
def gpu_repo(
    request: pytest.FixtureRequest, renders: Renders, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A repository rendered with GPUs: the GPU variants, and AWS_GPU."""
    if request.param in VARIANTS:
        return renders.get("ml-model", request.param)[2]
    return render(AWS_GPU, tmp_path_factory.mktemp("aws-gpu") / "repo")


def gpu_pools(repo: Path) -> tuple[Terraform, dict[str, Any], str]:
    """The Terraform, the GPU pool resource and the text of the pools it is created for."""
    tf = terraform(repo)
    cloud = answers(repo)["cloud"]
    pools = tf.of_type(GPU_POOL[cloud])
    assert set(pools) == {f"{GPU_POOL[cloud]}.gpu"}, sorted(pools)
    pool = pools[f"{GPU_POOL[cloud]}.gpu"]
    assert attr(pool, "for_each") == "${local.gpu_pools}"
    return tf, pool, tf.locals["gpu_pools"]


def test_gpu_pools_exist_only_with_gpus(variant):
    _, _, repo = variant
    given = answers(repo)
    if given["use_gpu"]:
        assert (repo / "infra" / "gpu_pool.tf").exists()
        return
    assert not terraform(repo).of_type(GPU_POOL[given["cloud"]]), "a GPU pool without use_gpu"
    assert not (repo / "infra" / "gpu_pool.tf").exists()


def test_every_region_gets_a_tainted_gpu_pool_labelled_with_the_product(gpu_repo):
    repo = gpu_repo
    given = answers(repo)
    cloud, sharing = given["cloud"], given.get("gpu_sharing", "none")
    tf, pool, pools = gpu_pools(repo)

    # One pool per region, hub and edges, on that region's existing cluster; a separate
    # training pool at the hub only when serving shares GPUs.
    assert "for region, role in local.regions : region =>" in pools, pools
    assert ("training = {region = var.hub_region" in pools) == (sharing != "none"), pools
    clusters = tf.locals["clusters"]
    edges = {
        "aws": "var.edge_cluster_names",
        "gcp": "var.edge_clusters",
        "azure": "var.edge_cluster_ids",
    }
    assert clusters.startswith(f"${{merge({edges[cloud]}, {{(var.hub_region) = var.hub_"), clusters
    cluster = {"aws": "cluster_name", "gcp": "cluster", "azure": "kubernetes_cluster_id"}[cloud]
    assert attr(pool, cluster) == "${local.clusters[each.value.region]}"
    # 0.2.0's single hub pool becomes the hub's pool instead of being replaced.
    moved = tf.parsed["gpu_pool.tf"]["moved"]
    assert moved == [
        {
            "from": f"${{{GPU_POOL[cloud]}.gpu}}",
            "to": f'${{{GPU_POOL[cloud]}.gpu["{given["hub_region"]}"]}}',
        }
    ]
    # The edge clusters are required: the example names one per edge region.
    example = tfvars_example(repo)
    edge_clusters = example[edges[cloud].removeprefix("var.")]
    assert sorted(edge_clusters) == sorted(given["edge_regions"]), edge_clusters
    if cloud == "aws":
        assert attr(pool, "region") == "${each.value.region}", "the pool is not region-pinned"
        assert attr(pool, "subnet_ids") == "${var.gpu_subnet_ids[each.value.region]}"
        regions = [given["hub_region"], *given["edge_regions"]]
        assert sorted(example["gpu_subnet_ids"]) == sorted(regions)
    elif cloud == "gcp":
        assert attr(pool, "location") == "${each.value.region}"

    # Every node: the GPU taint and the product label (the pods select both).
    assert '{"nvidia.com/gpu.product" = var.gpu_product, ' in pools, pools
    assert '[{key = "nvidia.com/gpu", value = "present"}]' in pools, pools
    config = blocks(pool, "node_config")[0] if cloud == "gcp" else pool
    labels = attr(config, "node_labels" if cloud == "azure" else "labels")
    assert labels == "${each.value.labels}", labels
    if cloud == "azure":
        assert attr(pool, "node_taints") == (
            '${[for taint in each.value.taints : "${taint.key}=${taint.value}:NoSchedule"]}'
        )
    else:
        taint = blocks(config, "dynamic")[0]["taint"]
        assert attr(taint, "for_each") == "${each.value.taints}"
        content = blocks(taint, "content")[0]
        assert (attr(content, "key"), attr(content, "effect")) == (
            "${taint.value.key}",
            "NO_SCHEDULE",
        )


def test_the_gpu_hardware_is_the_product_the_nodes_are_labelled_with(gpu_repo):
    repo = gpu_repo
    given = answers(repo)
    cloud, product = given["cloud"], given["gpu_product"]
    tf = terraform(repo)
    assert tf.default("gpu_product") == product
    # The variable accepts exactly the products the cloud offers.
    condition = attr(blocks(tf.variables["gpu_product"], "validation")[0], "condition")
    offered = json.loads(condition.removeprefix("${contains(").split("], ")[0] + "]")
    assert sorted(offered) == sorted(GPU_HARDWARE[cloud]), offered

    hardware = GPU_HARDWARE[cloud][product]
    if cloud == "aws":
        sizes = tf.default("gpu_instance_types")
        assert all(size.startswith(hardware) for size in sizes), sizes
    elif cloud == "gcp":
        assert tf.default("gpu_accelerator_type") == hardware
        assert tf.default("gpu_accelerator_count") >= given["gpu_count"]
        family = {
            "nvidia-l4": "g2-standard-",
            "nvidia-tesla-t4": "n1-standard-",
            "nvidia-tesla-a100": "a2-highgpu-",
            "nvidia-a100-80gb": "a2-ultragpu-",
            "nvidia-h100-80gb": "a3-highgpu-",
        }[hardware]
        machine = tf.default("gpu_machine_type")
        assert machine.startswith(family), machine
        if family.startswith("a"):  # these machine types name their GPU count
            assert machine.endswith(f"-{tf.default('gpu_accelerator_count')}g"), machine
        config = blocks(tf.resources["google_container_node_pool.gpu"], "node_config")[0]
        accelerator = blocks(config, "guest_accelerator")[0]
        assert attr(accelerator, "type") == "${var.gpu_accelerator_type}"
        assert attr(accelerator, "count") == "${var.gpu_accelerator_count}"
    else:
        assert hardware in tf.default("gpu_vm_size"), tf.default("gpu_vm_size")


def test_spot_capacity_is_an_option_with_the_clouds_spot_taint_handled(gpu_repo):
    repo = gpu_repo
    given = answers(repo)
    cloud = given["cloud"]
    tf, pool, pools = gpu_pools(repo)
    assert tf.default("gpu_capacity") == given.get("gpu_capacity", "on-demand")
    spot = 'var.gpu_capacity == "spot"'

    if cloud == "aws":
        assert attr(pool, "capacity_type") == f'${{{spot} ? "SPOT" : "ON_DEMAND"}}'
    elif cloud == "gcp":
        assert attr(blocks(pool, "node_config")[0], "spot") == f"${{{spot}}}"
    else:
        assert attr(pool, "priority") == f'${{{spot} ? "Spot" : "Regular"}}'
        assert attr(pool, "eviction_policy") == f'${{{spot} ? "Delete" : null}}'
        assert attr(pool, "spot_max_price") == f"${{{spot} ? -1 : null}}"
        # AKS taints spot nodes; the pool declares the taint so the pods' toleration is visible.
        assert (
            f'{spot} ? [{{key = "kubernetes.azure.com/scalesetpriority", value = "spot"}}] : []'
            in pools
        ), pools
        # AKS refuses surge settings on spot pools.
        upgrade = blocks(pool, "dynamic")[0]["upgrade_settings"]
        assert attr(upgrade, "for_each") == f"${{{spot} ? [] : [1]}}"


def test_a_sharing_serving_pool_is_configured_and_marked_for_its_sharing(gpu_repo):
    repo = gpu_repo
    given = answers(repo)
    sharing = given.get("gpu_sharing", "none")
    if sharing == "none":
        pytest.skip("GPUs are not shared")
    cloud = given["cloud"]
    tf, pool, pools = gpu_pools(repo)
    profile = given.get("mig_profile", "1g.10gb")
    label = f"mig-{profile}" if sharing == "mig" else "time-slicing"

    # Shared pools (the regions' serving pools, not training) carry the contract label and
    # taint that only the model server selects and tolerates.
    assert f'pool.shared ? {{"trellis.dev/gpu-sharing" = "{label}"' in pools, pools
    assert f'pool.shared ? [{{key = "trellis.dev/gpu-sharing", value = "{label}"}}] : []' in pools
    assert "shared = true" in pools and "training = {region = var.hub_region" in pools
    assert 'role = "hub", shared = false}' in pools, "the training pool must keep whole GPUs"

    if cloud == "gcp":
        accelerator = blocks(blocks(pool, "node_config")[0], "guest_accelerator")[0]
        if sharing == "time-slicing":
            config = blocks(accelerator, "dynamic")[0]["gpu_sharing_config"]
            assert attr(config, "for_each") == "${each.value.shared ? [var.gpu_time_slices] : []}"
            content = blocks(config, "content")[0]
            assert attr(content, "gpu_sharing_strategy") == "TIME_SHARING"
            assert tf.default("gpu_time_slices") >= 2
        else:
            assert attr(accelerator, "gpu_partition_size") == (
                f'${{each.value.shared ? "{profile}" : null}}'
            )
    elif sharing == "time-slicing":
        assert '"nvidia.com/device-plugin.config" = "time-slicing"' in pools, pools
    else:
        assert f'"nvidia.com/mig.config" = "all-{profile}"' in pools, pools
        if cloud == "azure":
            slices = profile.split(".")[0]
            assert attr(pool, "gpu_instance") == f'${{each.value.shared ? "MIG{slices}" : null}}'


def _render_question(question: dict[str, Any], key: str, **context: Any) -> str:
    """A question's default or validator, rendered as Copier renders it."""
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    return environment.from_string(question[key]).render(**context).strip()


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_gpu_product_defaults_to_a_product_of_the_cloud_and_refuses_others(cloud):
    questions = yaml.safe_load((REPO / "blueprints" / "ml-model" / "copier.yml").read_text())
    catalogue = json.loads(_render_question(questions["gpu_catalogue"], "default", cloud=cloud))
    assert sorted(catalogue) == sorted(GPU_HARDWARE[cloud])
    product = _render_question(questions["gpu_product"], "default", cloud=cloud)
    assert product in catalogue, product

    def refusal(product: str, gpus: int) -> str:
        context = {"cloud": cloud, "gpu_catalogue": catalogue, "gpu_count": gpus}
        return _render_question(
            questions["gpu_product"], "validator", gpu_product=product, **context
        )

    for name, entry in catalogue.items():
        assert not refusal(name, 1), name
        most = max(map(int, entry["sizes"]))
        assert not refusal(name, most), name
        if most < 8:
            assert f"at most {most} {name} GPUs" in refusal(name, most + 1)
        hardware = GPU_HARDWARE[cloud][name]
        if cloud == "gcp":
            assert entry["accelerator"] == hardware, name
        for size in entry["sizes"].values():
            assert (
                size.startswith(hardware) if cloud == "aws" else cloud == "gcp" or hardware in size
            )
    others = {name for hardware in GPU_HARDWARE.values() for name in hardware} - set(catalogue)
    for name in others:
        assert f"{cloud} offers no {name} GPU nodes" in refusal(name, 1)


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
        # The deploy jobs run in staging, then in one deployment environment per region.
        regions = [given["hub_region"], *given["edge_regions"]]
        assert tf.default("ci_environments") == ["staging", *regions]


def test_serving_and_training_identities_get_exactly_their_bucket(variant):
    _, _, repo = variant
    given = answers(repo)
    cloud, slug = given["cloud"], answers(repo)["project_slug"]
    tf = terraform(repo)
    assert tf.default("project") == slug and tf.default("namespace") == slug
    assert tf.locals["serving_service_account"] == "${var.project}-serving"
    assert tf.locals["training_service_account"] == "${var.project}-training"
    # Production in every region; staging only on the hub cluster.
    assert tf.locals["staging_namespace"] == "${var.namespace}-staging"
    assert tf.locals["namespaces"] == (
        '${{for region, role in local.regions : region => role == "hub" ? '
        "[var.namespace, local.staging_namespace] : [var.namespace]}}"
    )
    per_namespace = (
        "${merge([for region, namespaces in local.namespaces : {for namespace in namespaces : "
        '"${region}/${namespace}" => {region = region, namespace = namespace}}] ...)}'
    )

    if cloud == "aws":
        # EKS Pod Identity: each role trusts its service account, namespaces and cluster only.
        for name, namespaces, cluster in (
            ("serving", "${local.namespaces[each.key]}", "${local.cluster_arns[each.key]}"),
            ("training", ["${var.namespace}"], "${local.cluster_arns[var.hub_region]}"),
        ):
            statement = blocks(tf.data[f"aws_iam_policy_document.{name}_trust"], "statement")[0]
            assert attr(statement, "actions") == ["sts:AssumeRole", "sts:TagSession"]
            principal = blocks(statement, "principals")[0]
            assert attr(principal, "identifiers") == ["pods.eks.amazonaws.com"]
            conditions = {
                attr(c, "variable"): (attr(c, "test"), attr(c, "values"))
                for c in blocks(statement, "condition")
            }
            assert conditions == {
                "aws:SourceAccount": ("StringEquals", ["${local.account_id}"]),
                "aws:RequestTag/eks-cluster-arn": ("StringEquals", [cluster]),
                "aws:RequestTag/kubernetes-namespace": ("StringEquals", namespaces),
                "aws:RequestTag/kubernetes-service-account": (
                    "StringEquals",
                    [f"${{local.{name}_service_account}}"],
                ),
            }, conditions
        assert attr(tf.resources["aws_iam_role.serving"], "for_each") == "${local.regions}"
        association = tf.resources["aws_eks_pod_identity_association.serving"]
        assert attr(association, "for_each") == "${local.serving_associations}"
        assert tf.locals["serving_associations"] == per_namespace
        assert attr(association, "cluster_name") == "${local.clusters[each.value.region]}"
        assert attr(association, "role_arn") == "${aws_iam_role.serving[each.value.region].arn}"
        training = tf.resources["aws_eks_pod_identity_association.training"]
        assert attr(training, "namespace") == "${var.namespace}"
        assert attr(training, "cluster_name") == "${var.hub_cluster_name}"

        def statements(name: str) -> dict[str, tuple[set[str], list[str]]]:
            document = tf.data[f"aws_iam_policy_document.{name}"]
            return {
                attr(s, "sid"): (set(attr(s, "actions")), attr(s, "resources"))
                for s in blocks(document, "statement")
            }

        bucket = "${aws_s3_bucket.artifacts[%s].arn}"
        serving = statements("serving")
        assert serving == {
            "ListModels": ({"s3:ListBucket"}, [bucket % "each.key"]),
            "ReadModels": (
                {"s3:GetObject", "s3:GetObjectVersion"},
                ["${aws_s3_bucket.artifacts[each.key].arn}/models/*"],
            ),
            "DecryptWithTheRegionalKeyThroughS3": (
                {"kms:Decrypt"},
                ["${aws_kms_key.artifacts[each.key].arn}"],
            ),
        }, serving
        training_grants = statements("training")
        hub_bucket = bucket % "var.hub_region"
        assert {
            resource for _, resources in training_grants.values() for resource in resources
        } == {
            hub_bucket,
            "${aws_s3_bucket.artifacts[var.hub_region].arn}/*",
            "${aws_kms_key.artifacts[var.hub_region].arn}",
        }
        actions = set().union(*(actions for actions, _ in training_grants.values()))
        assert {"s3:PutObject", "s3:GetObject", "kms:GenerateDataKey"} <= actions, actions
    elif cloud == "gcp":
        # Workload Identity Federation for GKE: the Kubernetes service account is the principal.
        assert tf.locals["kubernetes_principal"] == (
            "principal://iam.googleapis.com/projects/${data.google_project.current.number}"
            "/locations/global/workloadIdentityPools/${var.project_id}.svc.id.goog/subject"
        )
        serving = tf.resources["google_storage_managed_folder_iam_member.serving"]
        assert tf.locals["serving_grants"] == per_namespace
        assert attr(serving, "for_each") == "${local.serving_grants}"
        assert attr(serving, "role") == "roles/storage.objectViewer", "the server only reads"
        assert attr(serving, "managed_folder") == (
            "${google_storage_managed_folder.models[each.value.region].name}"
        )
        assert attr(serving, "member") == (
            "${local.kubernetes_principal}/ns/${each.value.namespace}/sa/"
            "${local.serving_service_account}"
        )
        training = tf.resources["google_storage_bucket_iam_member.training"]
        assert attr(training, "bucket") == "${google_storage_bucket.artifacts[var.hub_region].name}"
        assert attr(training, "role") == "roles/storage.objectUser"
        assert attr(training, "member") == (
            "${local.kubernetes_principal}/ns/${var.namespace}/sa/${local.training_service_account}"
        )
        # Nobody else is granted bucket-wide access.
        assert set(tf.of_type("google_storage_bucket_iam_member")) == {
            "google_storage_bucket_iam_member.training",
            "google_storage_bucket_iam_member.access_log_writer",
        }
    else:
        # Entra Workload ID: an identity per region, federated with that region's cluster.
        assert tf.locals["serving_subjects"] == per_namespace
        credential = tf.resources["azurerm_federated_identity_credential.serving"]
        assert attr(credential, "for_each") == "${local.serving_subjects}"
        assert attr(credential, "parent_id") == (
            "${azurerm_user_assigned_identity.serving[each.value.region].id}"
        )
        assert attr(credential, "issuer") == (
            "${data.azurerm_kubernetes_cluster.regional[each.value.region].oidc_issuer_url}"
        )
        assert attr(credential, "subject") == (
            "system:serviceaccount:${each.value.namespace}:${local.serving_service_account}"
        )
        training = tf.resources["azurerm_federated_identity_credential.training"]
        assert attr(training, "issuer") == (
            "${data.azurerm_kubernetes_cluster.regional[var.hub_region].oidc_issuer_url}"
        )
        assert attr(training, "subject") == (
            "system:serviceaccount:${var.namespace}:${local.training_service_account}"
        )
        grants = {
            address: (attr(body, "scope"), attr(body, "role_definition_name"))
            for address, body in tf.of_type("azurerm_role_assignment").items()
            if "serving" in json.dumps(body) or "training" in json.dumps(body)
        }
        assert grants == {
            "azurerm_role_assignment.serving_models": (
                "${azurerm_storage_container.models[each.key].id}",
                "Storage Blob Data Reader",
            ),
            "azurerm_role_assignment.training": (
                "${azurerm_storage_account.artifacts[var.hub_region].id}",
                "Storage Blob Data Contributor",
            ),
        }, grants


def test_service_account_manifests_match_the_identities(variant):
    _, _, repo = variant
    given = answers(repo)
    cloud, slug = given["cloud"], given["project_slug"]
    serving = manifest(repo / "deploy" / "base" / "serviceaccount.yaml")
    training = manifest(repo / "deploy" / "components" / "training" / "serviceaccount.yaml")
    assert serving["metadata"]["name"] == f"{slug}-serving"
    assert training["metadata"]["name"] == f"{slug}-training"
    job = manifest(repo / "deploy" / "components" / "training" / "job.yaml")
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == f"{slug}-training"
    for account, output in ((serving, "serving_client_ids"), (training, "training_client_id")):
        annotations = account["metadata"].get("annotations") or {}
        if cloud == "azure":
            # The client ID exists only after apply; the placeholder names the output.
            assert set(annotations) == {"azure.workload.identity/client-id"}
            assert annotations["azure.workload.identity/client-id"].endswith(output)
            assert f'output "{output}"' in (repo / "infra" / "outputs.tf").read_text()
        else:
            # Pod Identity and GKE's federation name the service account: nothing to annotate.
            assert not annotations, annotations


def test_ci_can_push_the_image_to_the_model_registry_only(variant):
    _, _, repo = variant
    given = answers(repo)
    cloud = given["cloud"]
    tf = terraform(repo)
    assert "container_registry" in (repo / "infra" / "outputs.tf").read_text()

    if cloud == "aws":
        repository = tf.resources["aws_ecr_repository.train"]
        assert attr(repository, "name") == "${var.project}-train"
        assert attr(repository, "region") == "${var.hub_region}"
        statements = {
            attr(s, "sid"): s for s in blocks(tf.data["aws_iam_policy_document.ci"], "statement")
        }
        push = statements["PushTheTrainingImage"]
        assert "ecr:PutImage" in attr(push, "actions")
        assert attr(push, "resources") == ["${aws_ecr_repository.train.arn}"]
        wildcard = [sid for sid, s in statements.items() if attr(s, "resources") == ["*"]]
        assert wildcard == ["SignInToTheRegistry"], wildcard
        assert attr(statements["SignInToTheRegistry"], "actions") == ["ecr:GetAuthorizationToken"]
    elif cloud == "gcp":
        registry = tf.resources["google_artifact_registry_repository.images"]
        assert attr(registry, "format") == "DOCKER"
        assert attr(registry, "location") == "${var.hub_region}"
        push = tf.resources["google_artifact_registry_repository_iam_member.ci_push"]
        assert attr(push, "repository") == "${google_artifact_registry_repository.images.name}"
        assert attr(push, "role") == "roles/artifactregistry.writer"
        assert attr(push, "member") == "${google_service_account.ci.member}"
    else:
        registry = tf.resources["azurerm_container_registry.images"]
        assert attr(registry, "admin_enabled") is False
        assert attr(registry, "public_network_access_enabled") is False
        push = tf.resources["azurerm_role_assignment.ci_push"]
        assert attr(push, "scope") == "${azurerm_container_registry.images.id}"
        assert attr(push, "role_definition_name") == "AcrPush"
        assert attr(push, "principal_id") == "${azurerm_user_assigned_identity.ci.principal_id}"
        pull = tf.resources["azurerm_role_assignment.cluster_pull"]
        assert attr(pull, "role_definition_name") == "AcrPull"
        assert attr(pull, "for_each") == "${local.clusters}"


def test_trellis_new_refuses_a_gpu_the_cloud_does_not_offer(tmp_path):
    args = ["new", "ml-model", str(tmp_path / "out"), "--defaults", "--vcs-ref", "HEAD"]
    for pair in ("cloud=gcp", "use_gpu=true", "gpu_product=NVIDIA-A10G"):
        args += ["--data", pair]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "gpu_product: gcp offers no NVIDIA-A10G GPU nodes; use one of" in " ".join(
        result.stderr.split()
    )
