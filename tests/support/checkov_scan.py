"""One checkov run over everything several generated repositories deploy, read per repository.

checkov takes about ten seconds to start, and the security, Terraform and CI tests of every
variant of a blueprint read its findings, so one run over all of them serves them all: each
repository is staged in a folder of its own and the findings are split back by file path. The
run reads no configuration: each test applies the skips the repository lists itself.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from support.blueprints import Folders, Renders
from support.manifests import OVERLAYS, render_overlay, render_overlays
from support.timing import scaled
from support.tools import checkov

__all__ = [
    "FRAMEWORKS",
    "MAX_SKIPS",
    "Findings",
    "Scans",
    "assert_only_justified_skips",
    "justified_skips",
    "scan_repositories",
]

FRAMEWORKS = ("kubernetes", "terraform", "dockerfile", "github_actions", "gitlab_ci")
OUTCOMES = ("passed", "failed", "skipped")
#: Most checks a generated repository may skip (each with its reason).
MAX_SKIPS = 5

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


def _manifests(repo: Path) -> dict[str, list[dict[str, Any]]]:
    """File stem → the objects to scan: one per regional overlay, or the one ``deploy`` folder."""
    if (repo / OVERLAYS).is_dir():
        return render_overlays(repo)
    return {"deploy": render_overlay(repo / "deploy")}


def _stage(repo: Path, scan: Path) -> None:
    """Copy what ``repo`` deploys under ``scan``: rendered manifests, Terraform, image, CI."""
    (scan / "manifests").mkdir(parents=True)
    for name, objects in _manifests(repo).items():
        (scan / "manifests" / f"{name}.yaml").write_text(yaml.safe_dump_all(objects))
    shutil.copytree(repo / "infra", scan / "infra")  # checkov follows no symlinks
    if (repo / "Dockerfile").exists():  # platform repositories build no image
        shutil.copy(repo / "Dockerfile", scan / "Dockerfile")
    if (repo / ".github").exists():
        shutil.copytree(repo / ".github", scan / ".github")
    if (repo / ".gitlab-ci.yml").exists():
        shutil.copy(repo / ".gitlab-ci.yml", scan / ".gitlab-ci.yml")


def _owner(path: str) -> tuple[str, str]:
    """(repository name, path inside its staged folder) of a path checkov reports."""
    name, _, rest = path.strip("/").partition("/")
    return name, f"/{rest}"


def scan_repositories(repos: Mapping[str, Path], scratch: Path) -> dict[str, dict[str, Findings]]:
    """Name → framework (checkov's check type) → its findings over that repository.

    Each repository is staged under ``scratch/scan/<name>``; a framework appears for a
    repository when checkov checked or failed to parse at least one of its files. File paths
    are those inside the repository's staged folder, as a scan of it alone reports them.
    """
    scan = scratch / "scan"
    for name, repo in repos.items():
        _stage(repo, scan / name)
    result = subprocess.run(
        [checkov(), "-d", str(scan), "--framework", *FRAMEWORKS, "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=scratch,  # outside any repository: no .checkov.yaml is read
        timeout=scaled(300),
    )
    assert result.stdout.strip(), result.stderr[-2000:]
    reports = json.loads(result.stdout)
    split: dict[str, dict[str, Findings]] = {name: {} for name in repos}
    for report in reports if isinstance(reports, list) else [reports]:
        if "check_type" not in report:  # a framework with nothing to scan has a bare summary
            continue
        checks: dict[str, dict[str, list[Check]]] = {}
        for outcome in OUTCOMES:
            for check in report["results"][f"{outcome}_checks"]:
                name, inside = _owner(check["file_path"])
                checks.setdefault(name, {o: [] for o in OUTCOMES})[outcome].append(
                    {**check, "file_path": inside}
                )
        unparsed: dict[str, int] = {}
        for path in report["results"]["parsing_errors"]:
            name, _ = _owner(str(Path(path).resolve().relative_to(scan.resolve())))
            unparsed[name] = unparsed.get(name, 0) + 1
        assert sum(unparsed.values()) == report["summary"]["parsing_errors"], report["summary"]
        for name in checks.keys() | unparsed.keys():
            found = checks.get(name, {o: [] for o in OUTCOMES})
            split[name][report["check_type"]] = Findings(
                passed=found["passed"],
                failed=found["failed"],
                skipped=found["skipped"],
                parsing_errors=unparsed.get(name, 0),
            )
    return split


class Scans:
    """Findings per variant: one run over all the variants of a blueprint, when first read."""

    def __init__(self, renders: Renders, folders: Folders) -> None:
        self._renders = renders
        self._folders = folders
        self._scans: dict[str, dict[str, dict[str, Findings]]] = {}

    def of(self, blueprint: str, name: str) -> dict[str, Findings]:
        """Framework → findings over the variant ``name`` of ``blueprint``."""
        if blueprint not in self._scans:
            repos = self._renders.all(blueprint)
            self._scans[blueprint] = scan_repositories(repos, self._folders.mktemp("checkov"))
        return self._scans[blueprint][name]


def justified_skips(repo: Path) -> dict[str, str]:
    """Check id → reason, from the ``.checkov.yaml`` comments (``- CKV_X  # reason``)."""
    config = repo / ".checkov.yaml"
    text = config.read_text() if config.exists() else ""
    listed = (yaml.safe_load(text) or {}).get("skip-check", [])
    reasons = {}
    for line in text.splitlines():
        item, _, reason = line.strip().removeprefix("- ").partition("#")
        if item.strip() in listed:
            reasons[item.strip()] = reason.strip()
    return {check: reasons.get(check, "") for check in listed}


def assert_only_justified_skips(
    findings: Mapping[str, Findings],
    repo: Path,
    *,
    frameworks: set[str],
    pinned: set[tuple[str, str]],
) -> None:
    """checkov found nothing in ``repo`` but what it skips with a reason, at most ``MAX_SKIPS``.

    ``frameworks`` must all have been scanned (the repository's CI is added); an inline
    suppression must be one of ``pinned`` (check id, resource); every framework must have
    passed something, so an empty scan cannot pass for a clean one.
    """
    listed = justified_skips(repo)
    assert all(listed.values()), f"every skip needs a reason: {listed}"
    ci = "github_actions" if (repo / ".github").exists() else "gitlab_ci"
    assert set(findings) >= {*frameworks, ci}, sorted(findings)
    failed: list[Check] = []
    inline: set[tuple[str, str]] = set()
    for framework, found in findings.items():
        assert found.parsing_errors == 0, framework
        failed += [c for c in found.failed if c["check_id"] not in listed]
        inline |= {
            (c["check_id"], c["resource"]) for c in found.skipped if c["check_id"] not in listed
        }
        assert [c for c in found.passed if c["check_id"] not in listed], (
            f"checkov checked nothing: {framework}"
        )
    assert inline <= pinned, inline
    assert len(set(listed) | {check for check, _ in inline}) <= MAX_SKIPS
    assert sorted({f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in failed}) == []
