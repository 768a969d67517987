"""``trellis check-update`` and ``trellis update`` on real repositories, with real Copier.

A scratch blueprint source (this checkout's blueprints in a new git repository) is released
as 1.0.0, 1.1.0 and 1.2.0, each release changing code, a workflow, a deploy manifest and the
docs; a repository generated at 1.0.0 is then edited the way its owners would and updated.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from support.blueprints import VARIANTS
from support.gitrepos import (
    blueprint_source,
    commit_all,
    generated_repo,
    git,
    release,
    replace_in,
    serve_directory,
)
from trellis.cli.app import app

runner = CliRunner()

PACKAGE = "src/{{ project_slug | replace('-', '_') }}"
WORKFLOW = "{% if ci == 'github' %}.github{% endif %}/workflows/ci-cd.yml.jinja"
#: Each release's template changes: template path -> (old, new), and the rendered result.
RELEASES = {
    "1.1.0": {
        "notes": "- Logs carry timestamps.\n- Serving scales to three replicas.",
        "edits": {
            f"{PACKAGE}/train.py": (
                'format="%(levelname)s %(name)s: %(message)s"',
                'format="%(asctime)s %(levelname)s %(name)s: %(message)s"',
            ),
            WORKFLOW: ("    timeout-minutes: 15\n", "    timeout-minutes: 10\n"),
            "deploy/base/inferenceservice.yaml.jinja": ("maxReplicas: 2", "maxReplicas: 3"),
            "docs/runbook.md.jinja": (
                "A merge to the main branch runs the pipeline",
                "A merge to the main branch starts the pipeline",
            ),
        },
    },
    "1.2.0": {
        "notes": "- The test job is named for what it runs.\n\n### To do by hand\n\n- Nothing.",
        "edits": {
            f"{PACKAGE}/data.py": (
                "a real data set named in params or the environment.",
                "a real data set named in params.yaml or TRAINING_DATA.",
            ),
            WORKFLOW: (
                "name: Test (pytest, Python {{ python_version }})",
                "name: Unit tests (pytest, Python {{ python_version }})",
            ),
            "deploy/base/poddisruptionbudget.yaml.jinja": (
                "# Node drains and upgrades take model server pods down one at a time,",
                "# Node drains and cluster upgrades take model server pods down one at a time,",
            ),
            "docs/model-card.md.jinja": ("## Limitations\n", "## Limitations and known failures\n"),
        },
    },
}
#: What each release's changes look like in the generated repository.
LANDED = {
    "src/fraud_detector/train.py": 'format="%(asctime)s %(levelname)s',
    ".github/workflows/ci-cd.yml": "    timeout-minutes: 10\n",
    "deploy/base/inferenceservice.yaml": "maxReplicas: 3",
    "docs/runbook.md": "A merge to the main branch starts the pipeline",
    "src/fraud_detector/data.py": "a real data set named in params.yaml or TRAINING_DATA.",
    "deploy/base/poddisruptionbudget.yaml": "# Node drains and cluster upgrades take",
    "docs/model-card.md": "## Limitations and known failures\n",
}
LANDED_WORKFLOW_NAME = "name: Unit tests (pytest, Python 3.11)"
#: The owners' own edits, none within Copier's three context lines of a template change.
OWN_EDITS = {
    "src/fraud_detector/train.py": (
        'seed=int(params.data.get("seed", 42))',
        'seed=int(params.data.get("seed", 7))',
    ),
    ".github/workflows/ci-cd.yml": ("timeout-minutes: 180", "timeout-minutes: 240"),
    "deploy/base/inferenceservice.yaml": ("sizeLimit: 1Gi", "sizeLimit: 2Gi"),
    "docs/runbook.md": (
        "For the on-call engineer of `fraud-detector` (group:default/risk-ml).\n",
        "For the on-call engineer of `fraud-detector` (group:default/risk-ml).\n"
        "Escalate to #risk-ml-oncall after 30 minutes.\n",
    ),
}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = blueprint_source(tmp_path_factory.mktemp("source") / "trellis")
    for version, spec in RELEASES.items():
        release(src, version, spec["notes"], spec["edits"])
    return src


@pytest.fixture(scope="module")
def pristine(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository generated at 1.0.0 and committed, never touched by a test."""
    root = tmp_path_factory.mktemp("pristine") / "fraud-detector"
    return generated_repo(source, root, VARIANTS["sklearn-github-aws"])


@pytest.fixture
def repo(pristine: Path, tmp_path: Path) -> Path:
    """A fresh copy of the generated repository (with its git history) for one test."""
    return Path(shutil.copytree(pristine, tmp_path / "fraud-detector", symlinks=True))


def recorded_version(repo: Path) -> str:
    return str(yaml.safe_load((repo / ".copier-answers.yml").read_text())["_commit"])


def flat(text: str) -> str:
    return " ".join(text.split())


# --- check-update -----------------------------------------------------------------------------


def test_check_update_exits_2_and_shows_the_notes_of_every_newer_release(repo):
    result = runner.invoke(app, ["check-update", str(repo)])
    assert result.exit_code == 2, result.output
    out = flat(result.stdout)
    assert "in use 1.0.0" in out and "newest 1.2.0" in out and "2 newer releases" in out
    assert "Logs carry timestamps." in out and "Serving scales to three replicas." in out
    assert "The test job is named for what it runs." in out
    assert out.index("1.2.0 - 2026-12-01") < out.index("1.1.0 - 2026-12-01")
    assert "Update with: trellis update" in out
    assert result.stderr == ""


def test_check_update_json_is_one_object(repo):
    result = runner.invoke(app, ["check-update", str(repo), "--json"])
    assert result.exit_code == 2, result.output
    status = json.loads(result.stdout)
    assert status["blueprint"] == "ml-model"
    assert status["currentVersion"] == "1.0.0" and status["latestVersion"] == "1.2.0"
    assert status["versionsBehind"] == 2 and status["upToDate"] is False
    assert [r["version"] for r in status["releases"]] == ["1.2.0", "1.1.0"]
    assert status["releases"][1]["notes"].startswith("- Logs carry timestamps.")
    assert status["releases"][0]["date"] == "2026-12-01"


def test_check_update_reads_a_repository_over_http(repo):
    with serve_directory(repo) as url:
        result = runner.invoke(app, ["check-update", url, "--json"])
    assert result.exit_code == 2, result.output
    assert json.loads(result.stdout)["versionsBehind"] == 2


def test_check_update_exits_1_with_one_line_on_any_error(repo, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for args in (["check-update", str(empty)], ["check-update", str(empty), "--json"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, result.output
        assert result.stdout == ""
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
        assert "no .copier-answers.yml" in result.stderr
    # The source the repository records has moved away: an error, not "up to date".
    replace_in(repo / ".copier-answers.yml", "_src_path: ", f"_src_path: {tmp_path}/moved")
    result = runner.invoke(app, ["check-update", str(repo)])
    assert result.exit_code == 1 and "moved" in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_repository_rendered_between_releases_counts_from_the_release_before(tmp_path):
    src = blueprint_source(tmp_path / "source")
    readme = src / "blueprints/ml-model/template/README.md.jinja"
    readme.write_text(readme.read_text() + "\nUnreleased words.\n")
    commit_all(src, "work after 1.0.0")
    between = generated_repo(src, tmp_path / "between", VARIANTS["sklearn-github-aws"], "HEAD")
    described = recorded_version(between)
    assert described.startswith("1.0.0-1-g"), described  # what Copier records: git describe
    release(src, "1.1.0", "- A release after the commit.")

    result = runner.invoke(app, ["check-update", str(between), "--json"])

    assert result.exit_code == 2, result.output
    status = json.loads(result.stdout)
    assert status["versionsBehind"] == 1 and status["latestVersion"] == "1.1.0"
    assert "counted from 1.0.0" in status["note"]
    assert [r["version"] for r in status["releases"]] == ["1.1.0"]
    moved = runner.invoke(app, ["update", str(between)])
    assert moved.exit_code == 0, moved.output
    assert recorded_version(between) == "1.1.0"
    assert "Unreleased words." in (between / "README.md").read_text()


# --- update -----------------------------------------------------------------------------------


def test_update_refuses_a_dirty_tree_and_changes_nothing(repo):
    readme = repo / "README.md"
    readme.write_text(readme.read_text() + "\nWork in progress.\n")
    (repo / "notes.txt").write_text("scratch\n")
    before = (git(repo, "status", "--porcelain"), git(repo, "rev-parse", "HEAD"))
    result = runner.invoke(app, ["update", str(repo)])
    assert result.exit_code == 1, result.output
    assert "uncommitted changes" in result.stderr and "commit or stash" in result.stderr
    assert (git(repo, "status", "--porcelain"), git(repo, "rev-parse", "HEAD")) == before
    assert recorded_version(repo) == "1.0.0"
    assert readme.read_text().endswith("\nWork in progress.\n")


def test_edits_in_every_part_survive_an_update_across_two_releases(repo):
    for path, (old, new) in OWN_EDITS.items():
        replace_in(repo / path, old, new)
    commit_all(repo, "Our own tuning, timeouts, volume size and escalation")

    result = runner.invoke(app, ["update", str(repo)])

    assert result.exit_code == 0, result.output
    out = flat(result.stdout)
    assert "ml-model 1.0.0 → 1.2.0" in out
    assert "Logs carry timestamps." in out and "The test job is named" in out
    assert "merged cleanly" in out
    assert recorded_version(repo) == "1.2.0"
    assert git(repo, "diff", "--name-only", "--diff-filter=U") == ""
    for path, (_, new) in OWN_EDITS.items():
        text = (repo / path).read_text()
        assert new in text, f"the owners' edit to {path} was lost"
        assert "<<<<<<<" not in text and ">>>>>>>" not in text, path
    for path, landed in LANDED.items():
        assert landed in (repo / path).read_text(), f"{path} misses the blueprint's change"
    assert LANDED_WORKFLOW_NAME in (repo / ".github/workflows/ci-cd.yml").read_text()
    catalog = yaml.safe_load((repo / "catalog-info.yaml").read_text())
    assert catalog["metadata"]["annotations"]["trellis.dev/blueprint-version"] == "1.2.0"
    # The update is left for the owners to review and commit.
    assert git(repo, "status", "--porcelain").strip()
    # At the newest release: check-update says it is up to date.
    current = runner.invoke(app, ["check-update", str(repo)])
    assert current.exit_code == 0, current.output
    assert "up to date" in current.stdout
    status = json.loads(runner.invoke(app, ["check-update", str(repo), "--json"]).stdout)
    assert status["upToDate"] is True and status["versionsBehind"] == 0
    assert status["releases"] == []


def test_an_edit_next_to_a_template_change_is_a_reported_conflict_never_a_loss(repo):
    """Updated one release (the one that changes the line beside the edit), not to the newest."""
    manifest = repo / "deploy/base/inferenceservice.yaml"
    replace_in(manifest, "minReplicas: 1", "minReplicas: 2")
    commit_all(repo, "Two replicas at least")

    result = runner.invoke(app, ["update", str(repo), "--to", "1.1.0"])

    assert result.exit_code == 1, result.output
    out = flat(result.stdout)
    assert "1.0.0 → 1.1.0" in out and "Logs carry timestamps." in out
    assert "The test job is named" not in out
    assert recorded_version(repo) == "1.1.0"
    assert "1 file(s) need you" in out
    assert "deploy/base/inferenceservice.yaml" in result.stdout
    assert "git add" in out
    text = manifest.read_text()
    assert "<<<<<<< before updating" in text and ">>>>>>> after updating" in text
    assert "minReplicas: 2" in text, "the owners' edit must stay visible"
    assert "maxReplicas: 3" in text, "the blueprint's change must stay visible"
    again = runner.invoke(app, ["update", str(repo)])
    assert again.exit_code == 1 and "still has conflicts" in again.stderr


def test_update_refuses_unknown_or_older_versions_and_stays_at_the_current_one(repo):
    """Decided from the recorded version before Copier runs: the repository records 1.1.0 as an
    update to it would (the move itself is in the conflict case above)."""
    replace_in(repo / ".copier-answers.yml", "_commit: 1.0.0", "_commit: 1.1.0")
    commit_all(repo, "Blueprint 1.1.0")

    unknown = runner.invoke(app, ["update", str(repo), "--to", "9.9.9"])
    assert unknown.exit_code == 1 and "9.9.9 is not a release" in unknown.stderr
    older = runner.invoke(app, ["update", str(repo), "--to", "1.0.0"])
    assert older.exit_code == 1 and "downgrade" in older.stderr
    same = runner.invoke(app, ["update", str(repo), "--to", "1.1.0"])
    assert same.exit_code == 0 and "already at 1.1.0" in same.stdout
    assert recorded_version(repo) == "1.1.0"


def test_update_needs_a_git_repository(pristine, tmp_path):
    plain = Path(
        shutil.copytree(pristine, tmp_path / "plain", ignore=shutil.ignore_patterns(".git"))
    )
    result = runner.invoke(app, ["update", str(plain)])
    assert result.exit_code == 1
    assert "not a git repository" in result.stderr
