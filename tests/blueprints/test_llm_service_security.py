"""checkov over everything an llm-service repository deploys, in one run per variant.

The rendered Kubernetes objects (every overlay through ``kubectl kustomize``), the Terraform,
the workflows (or the GitLab pipeline) and the Dockerfile are scanned together; the only
failures allowed are the checks the generated ``.checkov.yaml`` lists, each with a one-line
reason, at most five (inline suppressions in the Terraform count too).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import hcl2
import pytest
import yaml

from support.manifests import render_overlays
from support.timing import scaled
from support.tools import checkov

MAX_SKIPS = 5
FRAMEWORKS = ["kubernetes", "terraform", "dockerfile", "github_actions", "gitlab_ci"]


def skips(repo: Path) -> dict[str, str]:
    """Check id → reason, from the ``.checkov.yaml`` comments (``- CKV_X  # reason``)."""
    reasons = {}
    for line in (repo / ".checkov.yaml").read_text().splitlines():
        item, sep, reason = line.strip().removeprefix("- ").partition("#")
        if sep and item.strip().startswith("CKV"):
            reasons[item.strip()] = reason.strip()
    listed = yaml.safe_load((repo / ".checkov.yaml").read_text())["skip-check"]
    return {check: reasons.get(check, "") for check in listed}


def test_every_terraform_file_parses(llm_variant):
    _, _, repo = llm_variant
    files = sorted((repo / "infra").glob("*.tf"))
    assert {"main.tf", "storage.tf", "gpu_pool.tf", "ci_identity.tf"} <= {f.name for f in files}
    for path in files:
        hcl2.loads(path.read_text())


@pytest.mark.tools
def test_checkov_finds_nothing_beyond_the_listed_skips(llm_variant, tmp_path):
    _, _, repo = llm_variant
    listed = skips(repo)
    assert len(listed) <= MAX_SKIPS, listed
    assert all(listed.values()), f"every skip needs a reason: {listed}"

    scanned = tmp_path / "scan"
    (scanned / "manifests").mkdir(parents=True)
    for overlay, objects in render_overlays(repo).items():
        (scanned / "manifests" / f"{overlay}.yaml").write_text(yaml.safe_dump_all(objects))
    shutil.copytree(repo / "infra", scanned / "infra")
    shutil.copy(repo / "Dockerfile", scanned / "Dockerfile")
    if (repo / ".github").exists():
        shutil.copytree(repo / ".github", scanned / ".github")
    else:
        shutil.copy(repo / ".gitlab-ci.yml", scanned / ".gitlab-ci.yml")
    result = subprocess.run(
        [checkov(), "-d", str(scanned), "--framework", *FRAMEWORKS, "--skip-download", "-o", "json",
         "--config-file", str(repo / ".checkov.yaml")],
        capture_output=True, text=True, timeout=scaled(300), check=False,
    )  # fmt: skip
    assert result.stdout.strip(), result.stderr[-2000:]
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    by_type = {r["check_type"]: r for r in reports}
    expected = {"kubernetes", "terraform", "dockerfile"} | (
        {"github_actions"} if (repo / ".github").exists() else {"gitlab_ci"}
    )
    assert expected <= set(by_type), sorted(by_type)
    failed, inline = [], set()
    for report in reports:
        assert report["summary"]["parsing_errors"] == 0, report["check_type"]
        assert report["summary"]["passed"] > 0, report["check_type"]
        failed += report["results"]["failed_checks"]
        inline |= {c["check_id"] for c in report["results"]["skipped_checks"]} - set(listed)
    assert len(set(listed) | inline) <= MAX_SKIPS, sorted(set(listed) | inline)
    summary = sorted({f"{f['check_id']} {f['check_name']} ({f['file_path']})" for f in failed})
    assert summary == []
