"""edge-finetune's Terraform and one checkov run over everything the repository deploys.

The regional bucket must be pinned to the data's region, encrypted with a key that lives in
that region, versioned, closed to the public, never replicated, and readable only by the
fine-tuning Job's workload identity; CI's identity must not reach the data at all. checkov
scans the rendered Kubernetes objects, the Terraform, the Dockerfile and the workflows of
every variant in one run, and finds nothing beyond the short list the repository gives reasons
for (the scan reads no configuration: the listed checks are set aside here).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.checkov_scan import Scans, assert_only_justified_skips
from support.terraform import Terraform, attr, blocks

Variant = tuple[str, dict[str, Any], Path]
#: Checks suppressed inside the Terraform, each on the one resource it cannot apply to.
PINNED_SUPPRESSIONS = {
    ("CKV_AWS_18", "aws_s3_bucket.access_logs"),  # a log bucket does not log itself
    ("CKV_GCP_62", "google_storage_bucket.access_logs"),  # a log bucket does not log itself
}


def answers_of(repo: Path) -> dict[str, Any]:
    return yaml.safe_load((repo / ".copier-answers.yml").read_text())


def test_every_terraform_file_parses_and_only_the_chosen_cloud_is_used(
    finetune_variant: Variant,
) -> None:
    _, answers, repo = finetune_variant
    tf = Terraform(repo / "infra")
    assert {p.name for p in tf.files} == {
        "ci_identity.tf", "identity.tf", "main.tf", "outputs.tf", "providers.tf",
        "storage.tf", "variables.tf", "versions.tf",
    }  # fmt: skip
    provider = {"aws": "aws", "gcp": "google"}[answers["target_cloud"]]
    assert set(tf.providers) == {provider}
    prefixes = {r.split("_", 1)[0] for r in tf.resources}
    assert prefixes == {provider}, prefixes
    assert tf.default("region") == answers["data_region"]
    assert tf.default("data_bucket") == answers_of(repo)["data_location"].split("/")[2]


def test_the_bucket_is_regional_encrypted_versioned_private_and_not_replicated(
    finetune_variant: Variant,
) -> None:
    _, answers, repo = finetune_variant
    tf = Terraform(repo / "infra")
    assert not [r for r in tf.resources if "replication" in r], "regional data never replicates"
    if answers["target_cloud"] == "aws":
        assert attr(tf.providers["aws"], "region") == "${var.region}"
        for address, body in tf.resources.items():
            if address.startswith(("aws_s3_", "aws_kms_")):
                assert attr(body, "region") == "${var.region}", f"{address} is not pinned"
        assert attr(tf.resources["aws_s3_bucket.data"], "bucket") == "${var.data_bucket}"
        rule = blocks(
            tf.resources["aws_s3_bucket_server_side_encryption_configuration.data"], "rule"
        )[0]
        default = blocks(rule, "apply_server_side_encryption_by_default")[0]
        assert attr(default, "sse_algorithm") == "aws:kms"
        assert attr(default, "kms_master_key_id") == "${aws_kms_key.data.arn}"
        assert attr(tf.resources["aws_kms_key.data"], "enable_key_rotation") is True
        versioning = tf.resources["aws_s3_bucket_versioning.data"]
        assert attr(blocks(versioning, "versioning_configuration")[0], "status") == "Enabled"
        block = tf.resources["aws_s3_bucket_public_access_block.data"]
        for setting in ("block_public_acls", "block_public_policy", "ignore_public_acls",
                        "restrict_public_buckets"):  # fmt: skip
            assert attr(block, setting) is True, setting
    else:
        assert attr(tf.resources["google_kms_key_ring.data"], "location") == "${var.region}"
        bucket = tf.resources["google_storage_bucket.data"]
        assert attr(bucket, "location") == "${upper(var.region)}"
        assert attr(bucket, "public_access_prevention") == "enforced"
        assert attr(bucket, "uniform_bucket_level_access") is True
        assert attr(blocks(bucket, "versioning")[0], "enabled") is True
        encryption = blocks(bucket, "encryption")[0]
        assert attr(encryption, "default_kms_key_name") == "${google_kms_crypto_key.data.id}"


def test_only_the_jobs_workload_identity_reads_the_data(finetune_variant: Variant) -> None:
    _, answers, repo = finetune_variant
    tf = Terraform(repo / "infra")
    namespace, account = answers_of(repo)["adapter_name"], "${local.job_service_account}"
    assert tf.locals["job_service_account"] == "${var.namespace}-finetune"
    if answers["target_cloud"] == "aws":
        trust = blocks(tf.data["aws_iam_policy_document.job_trust"], "statement")[0]
        conditions = {attr(c, "variable"): attr(c, "values") for c in blocks(trust, "condition")}
        subject = next(v for k, v in conditions.items() if k.endswith(":sub"))
        assert subject == [f"system:serviceaccount:${{var.namespace}}:{account}"]
        bucket_policy = blocks(tf.data["aws_iam_policy_document.data_bucket"], "statement")
        only = next(s for s in bucket_policy if attr(s, "sid") == "OnlyTheFineTuningJobReads")
        assert attr(only, "effect") == "Deny"
        assert "s3:GetObject" in attr(only, "actions")
        (condition,) = blocks(only, "condition")
        assert attr(condition, "test") == "StringNotEquals"
        assert attr(condition, "variable") == "aws:PrincipalArn"
        assert attr(condition, "values") == ["${aws_iam_role.job.arn}"]
        # CI's role reaches the cluster, never the bucket or its key.
        ci = json.dumps(tf.data["aws_iam_policy_document.ci"])
        assert "s3:" not in ci and "kms:" not in ci
    else:
        member = attr(tf.resources["google_service_account_iam_member.job_workload_identity"],
                      "member")  # fmt: skip
        pool = "${var.project_id}.svc.id.goog"
        assert member == f"serviceAccount:{pool}[${{var.namespace}}/{account}]"
        readers = [
            (address, attr(body, "role"), attr(body, "member"))
            for address, body in tf.resources.items()
            if address.startswith("google_storage_bucket_iam")
            and attr(body, "bucket") == "${google_storage_bucket.data.name}"
        ]
        assert readers and all(m == "${google_service_account.job.member}" for _, _, m in readers)
        assert {role for _, role, _ in readers} <= {
            "roles/storage.objectViewer",
            "roles/storage.legacyBucketReader",
        }
    assert namespace == tf.default("namespace")


@pytest.mark.tools
def test_checkov_finds_nothing_beyond_the_listed_skips(
    finetune_variant: Variant, checkov_scans: Scans
) -> None:
    name, _, repo = finetune_variant
    assert_only_justified_skips(
        checkov_scans.of("edge-finetune", name),
        repo,
        frameworks={"kubernetes", "terraform", "dockerfile"},
        pinned=PINNED_SUPPRESSIONS,
    )
