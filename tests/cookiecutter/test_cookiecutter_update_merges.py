"""A cookiecutter-data-science repository moved from v2.2.0 to v2.3.0 by ``trellis update``.

The owners' edits are kept and every change of the template arrives; an edit next to a
change is a listed conflict with markers, never lost; the same repository made by plain
``ccds`` and recorded with ``trellis adopt`` ends exactly where the one from ``trellis new``
does; the ``blueprint`` fact and the currency scorecard see how far behind a repository is;
the documented weekly workflow proposes a new version once, as a pull request.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from support.cookiecutter import (
    CHURN_ANSWERS,
    CcdsTools,
    Tree,
    cookiecutter_settings,
    run_ccds,
    tree,
)
from support.gitrepos import GIT_ENV, commit_all
from support.timing import scaled
from support.tools import actionlint
from trellis.cli.app import app
from trellis.config import Settings
from trellis.scorecards.definitions import load_scorecards
from trellis.scorecards.facts import blueprint_facts
from trellis.scorecards.rules import evaluate
from trellis.wiring import build_scaffolder

pytestmark = pytest.mark.tools

runner = CliRunner()
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def settings(ccds_template: Path, ccds_tools: CcdsTools) -> dict[str, str]:
    """The environment registering the template, each version with its own ``ccds``."""
    for version in ("2.2.0", "2.3.0"):
        ccds_tools.command(version)
    return {
        "TRELLIS_BLUEPRINTS__COOKIECUTTER": cookiecutter_settings(
            "data-science", ccds_template, trusted=True, entry_point=ccds_tools.pattern
        )
    }


def _new(destination: Path, version: str, settings: dict[str, str]) -> Path:
    args = ["new", "data-science", str(destination), "--vcs-ref", version]
    for key, value in CHURN_ANSWERS.items():
        args += ["--data", f"{key}={value}"]
    result = runner.invoke(app, args, env=settings)
    assert result.exit_code == 0, result.output
    return destination


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory, settings: dict[str, str]) -> dict[str, Path]:
    """``trellis new`` at each version, untouched: the base and the expected changes."""
    root = tmp_path_factory.mktemp("renders")
    return {v: _new(root / v, v, settings) for v in ("v2.2.0", "v2.3.0")}


def _edit(repo: Path) -> None:
    """What owners do in their first weeks: a note, ignores, a dependency, code, a removal."""
    readme = repo / "README.md"
    readme.write_text(
        readme.read_text().replace(
            "# Churn Model\n", "# Churn Model\n\nOwned by the retention team.\n", 1
        )
    )
    gitignore = repo / ".gitignore"
    gitignore.write_text("# ours\n*.parquet\n\n" + gitignore.read_text())
    pyproject = repo / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('    "loguru",\n', '    "loguru",\n    "scikit-learn",\n')
    )
    (repo / "churn_model" / "features_extra.py").write_text("WINDOW_DAYS = 28\n")
    (repo / "references" / ".gitkeep").unlink()


def _update(repo: Path, settings: dict[str, str]):
    return runner.invoke(app, ["update", str(repo)], env=settings)


@dataclass(frozen=True)
class Updated:
    """A v2.2.0 repository with local edits, updated to v2.3.0 by ``trellis update``."""

    repo: Path
    edited: Tree
    """Its files before the update."""
    status: str
    """``trellis check-update --json`` before the update."""
    output: str
    exit_code: int


@pytest.fixture(scope="module")
def updated(
    tmp_path_factory: pytest.TempPathFactory, renders: dict[str, Path], settings: dict[str, str]
) -> Updated:
    """One update shared by the tests that read it (two renders each)."""
    repo = tmp_path_factory.mktemp("updated") / "churn"
    shutil.copytree(renders["v2.2.0"], repo)
    commit_all(repo, "Generated")
    _edit(repo)
    commit_all(repo, "Our edits")
    edited = tree(repo, without=(".cruft.json",))
    checked = runner.invoke(app, ["check-update", str(repo), "--json"], env=settings)
    assert checked.exit_code == 2, checked.output
    result = _update(repo, settings)
    return Updated(repo, edited, checked.output, result.output, result.exit_code)


def test_edits_are_kept_and_every_change_arrives(
    updated: Updated, renders: dict[str, Path], settings: dict[str, str]
) -> None:
    repo, edited = updated.repo, updated.edited
    status = json.loads(updated.status)
    assert (status["currentVersion"], status["latestVersion"], status["versionsBehind"]) == (
        "v2.2.0", "v2.3.0", 1,
    )  # fmt: skip

    assert updated.exit_code == 0, updated.output
    assert "v2.2.0 → v2.3.0" in updated.output
    after = tree(repo, without=(".cruft.json",))
    base, target = tree(renders["v2.2.0"]), tree(renders["v2.3.0"])
    changed = sorted(p for p in set(base) | set(target) if base.get(p) != target.get(p))
    assert changed == [".gitignore", "Makefile"]  # what v2.3.0 changes for these answers
    for path, content in target.items():
        if edited.get(path) == base.get(path):  # not edited here: exactly the new version
            assert after.get(path) == content, path
    gitignore = after[".gitignore"][0].decode()
    assert gitignore.startswith("# ours\n*.parquet\n") and "\n.pixi/\n" in gitignore  # both
    assert "Owned by the retention team." in after["README.md"][0].decode()
    assert '"scikit-learn",' in after["pyproject.toml"][0].decode()
    assert after["churn_model/features_extra.py"][0] == b"WINDOW_DAYS = 28\n"
    assert "references/.gitkeep" not in after  # deleted here, unchanged upstream: stays deleted

    record = json.loads((repo / ".cruft.json").read_text())
    assert record["checkout"] == "v2.3.0" and record["commit"].startswith("0f6b163c")
    assert record["context"]["cookiecutter"]["_commit"] == record["commit"]
    assert record["context"]["cookiecutter"]["environment_manager"] == "uv"

    commit_all(repo, "Update")
    again = runner.invoke(app, ["check-update", str(repo)], env=settings)
    assert again.exit_code == 0, again.output


def test_an_edit_next_to_a_change_is_a_listed_conflict(
    tmp_path: Path, renders: dict[str, Path], settings: dict[str, str]
) -> None:
    repo = tmp_path / "churn"
    shutil.copytree(renders["v2.2.0"], repo)
    commit_all(repo, "Generated")
    makefile = repo / "Makefile"
    ours = makefile.read_text().replace(
        '\t@echo ">>> Unix/macOS: source ./.venv/bin/activate"\n',
        '\t@echo ">>> Unix/macOS: source ./.venv/bin/activate && make requirements"\n',
    )
    makefile.write_text(ours)
    commit_all(repo, "Our Makefile")

    result = _update(repo, settings)
    assert result.exit_code == 1, result.output
    assert "Makefile" in result.output and "need you" in result.output
    merged = makefile.read_text()
    assert "<<<<<<< before updating" in merged and ">>>>>>> after updating" in merged
    assert "source ./.venv/bin/activate && make requirements" in merged  # ours, not lost
    assert "\n.pixi/\n" in (repo / ".gitignore").read_text()  # the rest arrived


def test_a_plain_ccds_repository_adopted_updates_the_same_way(
    tmp_path: Path,
    updated: Updated,
    settings: dict[str, str],
    ccds_tools: CcdsTools,
    template_at: Callable[[str], Path],
) -> None:
    made = run_ccds(ccds_tools.command("2.2.0"), template_at("v2.2.0"), "v2.2.0", CHURN_ANSWERS,
                    tmp_path / "ccds")  # fmt: skip
    commit_all(made, "Generated with ccds")
    _edit(made)
    commit_all(made, "Our edits")
    args = ["adopt", str(made), "--template", "data-science", "--version", "v2.2.0"]
    for key, value in CHURN_ANSWERS.items():
        args += ["--data", f"{key}={value}"]
    adopted = runner.invoke(app, args, env=settings)
    assert adopted.exit_code == 0, adopted.output
    assert "recorded data-science v2.2.0" in adopted.output
    assert "3 files differ" in adopted.output  # the three edited files; the new one is ours
    commit_all(made, "Adopt")

    result = _update(made, settings)
    assert result.exit_code == 0, result.output
    # Exactly where the repository from `trellis new` with the same edits ends.
    assert tree(made, without=()) == tree(updated.repo, without=())
    assert (made / ".cruft.json").read_bytes() == (updated.repo / ".cruft.json").read_bytes()


def test_the_blueprint_fact_and_currency_checks_see_the_repository(
    renders: dict[str, Path], settings: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    location = str(renders["v2.2.0"])
    monkeypatch.setenv("TRELLIS_BLUEPRINTS__REPOSITORIES", location)
    scaffolder = build_scaffolder(Settings())
    try:
        survey = scaffolder.survey()
    finally:
        scaffolder.close()
    assert survey.problems == ()
    fact = survey.facts[location]
    assert fact == {"blueprint": "data-science", "version": "v2.2.0", "latestVersion": "v2.3.0",
                    "versionsBehind": 1, "minorVersionsBehind": 1}  # fmt: skip
    assert scaffolder.usage() == {"data-science": {"v2.2.0": 1}}
    (card,) = [s for s in load_scorecards(REPO_ROOT / "scorecards") if s.name == "blueprint"]
    results = {
        c.id: evaluate(c.conditions, blueprint_facts(fact, None)).result for c in card.checks
    }
    assert results == {"blueprint-at-most-one-behind": True, "blueprint-up-to-date": False}


def test_the_documented_weekly_update_workflow_passes_actionlint(tmp_path: Path) -> None:
    workflow = tmp_path / ".github" / "workflows" / "template-update.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text(_workflow_text())
    script = _workflow_steps()[-1]["run"]
    # It updates a clean tree (the status goes outside it) and never pushes past conflicts.
    assert '>"$status"' in script and 'status="$RUNNER_TEMP/' in script
    assert script.index("trellis update") < script.index("git push")
    result = subprocess.run(
        [*actionlint(), ".github/workflows/template-update.yml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=scaled(120), check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_weekly_workflow_proposes_the_new_version_once(
    tmp_path: Path, renders: dict[str, Path], settings: dict[str, str]
) -> None:
    """Its script, run as GitHub runs it, against a local origin and a ``gh`` that records."""
    script = _workflow_steps()[-1]["run"]
    origin = tmp_path / "origin.git"
    repo = tmp_path / "churn"
    shutil.copytree(renders["v2.2.0"], repo)
    commit_all(repo, "Generated")
    subprocess.run(["git", "clone", "--quiet", "--bare", str(repo), str(origin)], check=True)
    subprocess.run(["git", "-C", str(repo), "remote", "add", "origin", str(origin)], check=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in {
        "trellis": f'exec {sys.executable} -m trellis "$@"',
        "gh": f'printf "%s\\n" "$*" >>{tmp_path / "gh.log"}',
    }.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    env = {
        **os.environ, **settings, **GIT_ENV, "GH_TOKEN": "unused", "RUNNER_TEMP": str(tmp_path),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
    }  # fmt: skip
    bash = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script]  # as GitHub runs it
    first = subprocess.run(bash, cwd=repo, env=env, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stdout + first.stderr
    proposed = subprocess.run(
        ["git", "-C", str(origin), "show", "template-update/v2.3.0:.cruft.json"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert json.loads(proposed)["checkout"] == "v2.3.0"
    assert (tmp_path / "gh.log").read_text().startswith("pr create --head template-update/v2.3.0")

    subprocess.run(["git", "-C", str(repo), "switch", "--quiet", "main"], check=True)
    again = subprocess.run(bash, cwd=repo, env=env, capture_output=True, text=True, check=False)
    assert again.returncode == 0 and "already proposed" in again.stdout
    assert len((tmp_path / "gh.log").read_text().splitlines()) == 1


def _workflow_text() -> str:
    """The update workflow as docs/blueprints/cookiecutter.md shows it."""
    page = (REPO_ROOT / "docs" / "blueprints" / "cookiecutter.md").read_text()
    match = re.search(r"<!-- snippet: update-workflow -->\n```yaml\n(.*?)```", page, re.S)
    assert match, "docs/blueprints/cookiecutter.md has no snippet 'update-workflow'"
    return match.group(1)


def _workflow_steps() -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = yaml.safe_load(_workflow_text())["jobs"]["update"]["steps"]
    return steps
