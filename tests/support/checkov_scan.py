"""One checkov run over everything a generated repository deploys, read per framework.

checkov takes about ten seconds to start, and the security, Terraform and CI tests of a
repository all read its findings, so one run per repository serves them all. The run reads no
configuration: each test applies the skips the repository lists itself.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from support.manifests import render_overlays
from support.timing import scaled
from support.tools import checkov

__all__ = ["FRAMEWORKS", "Findings", "scan_repository"]

FRAMEWORKS = ("kubernetes", "terraform", "dockerfile", "github_actions", "gitlab_ci")

Check = dict[str, Any]


@dataclass(frozen=True)
class Findings:
    """One framework's report: its checks by outcome, and the files it could not parse."""

    passed: list[Check]
    failed: list[Check]
    skipped: list[Check]
    parsing_errors: int

    @property
    def scanned(self) -> set[str]:
        """Names of the files at least one check read."""
        return {Path(c["file_path"]).name for c in self.passed + self.failed + self.skipped}


def _stage(repo: Path, scan: Path) -> None:
    """Copy what ``repo`` deploys under ``scan``: rendered overlays, Terraform, image, CI."""
    (scan / "manifests").mkdir(parents=True)
    for overlay, objects in render_overlays(repo).items():
        (scan / "manifests" / f"{overlay}.yaml").write_text(yaml.safe_dump_all(objects))
    shutil.copytree(repo / "infra", scan / "infra")
    shutil.copy(repo / "Dockerfile", scan / "Dockerfile")
    if (repo / ".github").exists():
        shutil.copytree(repo / ".github", scan / ".github")
    if (repo / ".gitlab-ci.yml").exists():
        shutil.copy(repo / ".gitlab-ci.yml", scan / ".gitlab-ci.yml")


def scan_repository(repo: Path, scratch: Path) -> dict[str, Findings]:
    """Framework (checkov's check type) → its findings over ``repo``, staged under ``scratch``."""
    scan = scratch / "scan"
    _stage(repo, scan)
    result = subprocess.run(
        [checkov(), "-d", str(scan), "--framework", *FRAMEWORKS, "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=scratch,  # outside the repository: no .checkov.yaml is read
        timeout=scaled(300),
    )
    assert result.stdout.strip(), result.stderr[-2000:]
    reports = json.loads(result.stdout)
    return {
        report["check_type"]: Findings(
            passed=report["results"]["passed_checks"],
            failed=report["results"]["failed_checks"],
            skipped=report["results"]["skipped_checks"],
            parsing_errors=report["summary"]["parsing_errors"],
        )
        for report in (reports if isinstance(reports, list) else [reports])
        if "check_type" in report  # a framework with nothing to scan has a bare summary
    }
