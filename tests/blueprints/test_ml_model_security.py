"""checkov over everything a generated repository deploys, with its own short skip list.

The rendered Kubernetes objects (every overlay through ``kubectl kustomize``), the Terraform,
the workflows and the Dockerfile are scanned together; the only failures allowed are the
checks the generated ``.checkov.yaml`` lists, each with a one-line reason, at most five.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from support.manifests import render_overlays
from support.tools import checkov

pytestmark = pytest.mark.tools

MAX_SKIPS = 5


def skips(repo: Path) -> dict[str, str]:
    """Check id → reason, from the ``.checkov.yaml`` comments (``- CKV_X  # reason``)."""
    config = repo / ".checkov.yaml"
    listed = yaml.safe_load(config.read_text()).get("skip-check", []) if config.exists() else []
    reasons = {}
    for line in config.read_text().splitlines() if config.exists() else []:
        item, _, reason = line.strip().removeprefix("- ").partition("#")
        if item.strip() in listed:
            reasons[item.strip()] = reason.strip()
    return {check: reasons.get(check, "") for check in listed}


def scan(target: Path, frameworks: list[str], repo: Path) -> tuple[list[dict], set[str]]:
    """Failed checks, and the ids of checks suppressed inline in the scanned files."""
    args = [
        checkov(),
        "-d",
        str(target),
        "--framework",
        *frameworks,
        "--skip-download",  # and no --quiet: it drops passed checks, which the guard counts
        "-o",
        "json",
    ]
    if (repo / ".checkov.yaml").exists():
        args += ["--config-file", str(repo / ".checkov.yaml")]
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    assert result.stdout.strip(), result.stderr[-2000:]
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed, suppressed, scanned, parse_errors = [], set(), set(), 0
    for report in reports:
        if isinstance(report, dict):
            results = report.get("results", {})
            failed += results.get("failed_checks", [])
            suppressed |= {c["check_id"] for c in results.get("skipped_checks", [])}
            for outcome in ("passed_checks", "failed_checks", "skipped_checks"):
                scanned |= {Path(c["file_path"]).name for c in results.get(outcome, [])}
            parse_errors += report.get("summary", {}).get("parsing_errors", 0)
    # checkov passes a file it could not parse without a word: make sure it read everything.
    assert parse_errors == 0, f"checkov could not parse {parse_errors} files in {target}"
    assert scanned, f"checkov checked nothing in {target}"
    if frameworks == ["github_actions"]:  # a workflow off GitHub's schema is silently skipped
        workflows = {p.name for p in (target / "workflows").glob("*.y*ml")}
        assert workflows <= scanned, f"checkov skipped {sorted(workflows - scanned)}"
    return failed, suppressed


def test_checkov_finds_nothing_beyond_the_listed_skips(variant, tmp_path):
    _, _, repo = variant
    listed = skips(repo)
    assert len(listed) <= MAX_SKIPS, listed
    assert all(reason for reason in listed.values()), f"every skip needs a reason: {listed}"

    manifests = tmp_path / "rendered"
    manifests.mkdir()
    for overlay, objects in render_overlays(repo).items():
        (manifests / f"{overlay}.yaml").write_text(yaml.safe_dump_all(objects))
    targets = [(manifests, ["kubernetes"]), (repo / "infra", ["terraform"]), (repo, ["dockerfile"])]
    if (repo / ".github").exists():
        targets.append((repo / ".github", ["github_actions"]))
    failed, inline = [], set()
    for target, frameworks in targets:
        found, suppressed = scan(target, frameworks, repo)
        failed += found
        inline |= suppressed
    # Inline suppressions (one resource each, reason beside them) count against the limit too.
    assert len(set(listed) | inline) <= MAX_SKIPS, sorted(set(listed) | inline)
    summary = sorted(
        {f"{f['check_id']} {f.get('check_name', '')} ({f.get('file_path')})" for f in failed}
    )
    assert summary == []
