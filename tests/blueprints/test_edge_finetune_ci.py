"""edge-finetune's CI/CD and the promise that regional data never leaves its region.

GitHub workflows pass actionlint, run checks on every push and pull request, start the Job
only from main behind the region's environment, and sign in with OIDC only; the GitLab
pipeline does the same with a manual job and ID tokens. No workflow, pipeline, manifest or
script copies or syncs data anywhere, and no file names a bucket of another region.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.gitlab import gitlab_jobs
from support.timing import scaled
from support.tools import actionlint

Variant = tuple[str, dict[str, Any], Path]
#: Commands that move objects between stores or hosts. None may appear in CI or manifests.
COPY_COMMANDS = re.compile(
    r"\b(aws\s+s3\s+(cp|sync|mv)|aws\s+s3api\s+(copy-object|put-object)|gsutil\s+(-m\s+)?(cp|rsync|mv)"
    r"|gcloud\s+storage\s+(cp|rsync|mv)|azcopy|rclone|rsync|scp|s3cmd|mc\s+(cp|mirror))\b"
)
BUCKET_URI = re.compile(r"\b(s3|gs)://([a-z0-9][a-z0-9.-]+[a-z0-9])")
#: Everything a pipeline or the cluster runs: CI files, manifests, scripts, the Dockerfile.
SHIPPED = (".github", ".gitlab-ci.yml", "deploy", "scripts", "Dockerfile", "Makefile", "infra")


def shipped_files(repo: Path) -> list[Path]:
    found = []
    for name in SHIPPED:
        path = repo / name
        found += [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    return [p for p in found if p.exists()]


def answers_of(repo: Path) -> dict[str, Any]:
    return yaml.safe_load((repo / ".copier-answers.yml").read_text())


def test_nothing_copies_regional_data_or_names_another_regions_bucket(
    finetune_variant: Variant,
) -> None:
    _, answers, repo = finetune_variant
    region = answers["data_region"]
    files = shipped_files(repo)
    assert any(p.name in {"ci-cd.yml", ".gitlab-ci.yml"} for p in files)
    for path in files:
        text = path.read_text()
        copy = COPY_COMMANDS.search(text)
        assert not copy, f"{path.relative_to(repo)} copies data: {copy.group(0)!r}"
        for _, bucket in BUCKET_URI.findall(text):
            where = path.relative_to(repo)
            assert region in bucket, f"{where} names {bucket}, not a {region} bucket"
    # The data location itself is the region's bucket, and the Job's config points there.
    location = answers_of(repo)["data_location"]
    assert region in location.split("/")[2]
    assert location in (repo / "deploy" / "kustomization.yaml").read_text()


@pytest.mark.tools
def test_github_workflows_pass_actionlint_and_gate_the_job_on_main(
    finetune_variant: Variant,
) -> None:
    _, answers, repo = finetune_variant
    if answers["ci_provider"] != "github":
        assert not (repo / ".github").exists()
        return
    result = subprocess.run(
        [*actionlint(), ".github/workflows/*.{yml,yaml}"],
        cwd=repo, capture_output=True, text=True, timeout=scaled(120), check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Checking 2 workflow file(s)" in result.stdout, result.stdout
    workflow = yaml.safe_load((repo / ".github/workflows/ci-cd.yml").read_text())
    on = workflow.get("on", workflow.get(True))
    assert {"push", "pull_request"} <= set(on)
    assert workflow["permissions"] == {"contents": "read"}
    jobs = workflow["jobs"]
    assert "ruff check" in str(jobs["lint"]) and "pytest" in str(jobs["test"])
    finetune = jobs["finetune"]
    assert finetune["environment"] == answers["data_region"]
    assert finetune["needs"] == "build-image"
    assert "refs/heads/main" in jobs["build-image"]["if"]
    assert finetune["permissions"] == {"contents": "read", "id-token": "write"}
    uses = [s.get("uses", "") for s in finetune["steps"]]
    assert any(u.startswith("aws-actions/configure-aws-credentials@") for u in uses)
    assert all(re.match(r"^[^@]+@[0-9a-f]{40}$", u) for u in uses if u)
    assert "kubectl apply -k deploy/.ci" in str(finetune["steps"])


def test_the_gitlab_pipeline_starts_the_job_by_hand_on_the_default_branch_with_id_tokens(
    finetune_variant: Variant,
) -> None:
    _, answers, repo = finetune_variant
    if answers["ci_provider"] != "gitlab":
        assert not (repo / ".gitlab-ci.yml").exists()
        return
    config = yaml.safe_load((repo / ".gitlab-ci.yml").read_text())
    jobs = gitlab_jobs(config)
    assert {"lint", "test", "build-image", "finetune", "blueprint-update"} <= set(jobs)
    finetune = jobs["finetune"]
    assert finetune["environment"]["name"] == answers["data_region"]
    assert finetune["allow_failure"] is False
    (rule,) = finetune["rules"]
    assert rule["when"] == "manual" and "$CI_DEFAULT_BRANCH" in rule["if"]
    (token,) = finetune["id_tokens"]
    assert f"${token}" in " ".join(finetune["before_script"])
    text = (repo / ".gitlab-ci.yml").read_text()
    assert '"type": "service_account"' not in text and "private_key" not in text
    script = "\n".join(finetune["script"])
    assert "kubectl apply -k deploy/.ci" in script
    # On demand, CI follows the Job to its decision; on a schedule, it only applies the CronJob.
    on_demand = answers.get("schedule", "on-demand") == "on-demand"
    assert ("kubectl logs" in script) == on_demand
