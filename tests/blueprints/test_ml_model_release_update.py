"""A repository generated from ml-model 0.2.0 moves to the newest release with `trellis update`.

This is the path every team on 0.2.0 takes: the real blueprint history of this repository
(releases are the commits that set `blueprint.yaml`'s version, tags or not), real Copier, and
a repository edited the way its owners would edit it: a tuned hyper-parameter, a module and a
test of their own, a section of the README, a line of the runbook. The update must keep each
edit and bring every change of the release: apart from the owners' edits, the updated tree is
the tree a fresh render of the newest release gives for the same answers.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from support.blueprints import REPO, VARIANTS
from support.gitrepos import commit_all, git, replace_in
from trellis.cli.app import app
from trellis.sources.releases import find_releases

runner = CliRunner()
OLD_RELEASE = "0.2.0"
#: The PyTorch/GPU/GitLab/GCP variant, minus the questions 0.2.0 did not ask yet.
ANSWERS = {
    key: value
    for key, value in VARIANTS["pytorch-gpu-gitlab-gcp"].items()
    if key not in {"gpu_capacity", "gpu_sharing"}
}
PACKAGE = "src/demand_forecast"
OWN_FEATURES = '''"""Calendar features of the demand forecast (our own module)."""


def is_weekend(day_of_week: int) -> bool:
    """Saturday and Sunday, with Monday as 0."""
    return day_of_week >= 5
'''
OWN_TEST = """from demand_forecast.features import is_weekend


def test_the_weekend_is_saturday_and_sunday():
    assert [is_weekend(day) for day in range(7)] == [False] * 5 + [True] * 2
"""
#: Each owners' edit: (path, text in the 0.2.0 render, its replacement).
EDITS = (
    ("params.yaml", "  hidden_units: 32\n", "  hidden_units: 64\n"),
    (
        "README.md",
        "Generated from the Trellis `ml-model` blueprint;",
        "## Team notes\n\nForecasts feed the replenishment planner every night.\n\n"
        "Generated from the Trellis `ml-model` blueprint;",
    ),
    (
        "docs/runbook.md",
        "# Runbook\n",
        "# Runbook\n\nEscalate to #demand-forecast-oncall after 15 minutes.\n",
    ),
)
ADDED = {f"{PACKAGE}/features.py": OWN_FEATURES, "tests/test_features.py": OWN_TEST}


def newest_release() -> str:
    return str(find_releases(REPO, "ml-model", what=str(REPO))[-1].version)


def render(out: Path, vcs_ref: str) -> Path:
    answers = out.with_name(f"{out.name}-answers.yml")
    answers.write_text(yaml.safe_dump(ANSWERS), encoding="utf-8")
    args = ["new", "ml-model", str(out), "--data-file", str(answers), "--defaults"]
    result = runner.invoke(app, [*args, "--vcs-ref", vcs_ref])
    assert result.exit_code == 0, result.output
    return out


def tree(root: Path) -> dict[str, str]:
    """Every file under root but git's own, by relative path."""
    return {
        str(p.relative_to(root)): p.read_text(encoding="utf-8")
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


@pytest.fixture(scope="module")
def updated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A 0.2.0 repository with its owners' edits, after `trellis update`; and update's output."""
    root = tmp_path_factory.mktemp("release-update")
    repo = render(root / "demand-forecast", OLD_RELEASE)
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo, "Generated from ml-model 0.2.0")
    for path, old, new in EDITS:
        replace_in(repo / path, old, new)
    for path, text in ADDED.items():
        (repo / path).write_text(text, encoding="utf-8")
    commit_all(repo, "Our features, a wider network, team notes and escalation")

    result = runner.invoke(app, ["update", str(repo)])
    assert result.exit_code == 0, result.output
    return repo, " ".join(result.stdout.split())


def test_the_update_moves_from_0_2_0_to_the_newest_release(updated):
    repo, out = updated
    newest = newest_release()
    assert newest != OLD_RELEASE
    assert f"ml-model {OLD_RELEASE} → {newest}" in out, out
    answers = yaml.safe_load((repo / ".copier-answers.yml").read_text())
    assert answers["_commit"] == newest
    catalog = yaml.safe_load((repo / "catalog-info.yaml").read_text())
    assert catalog["metadata"]["annotations"]["trellis.dev/blueprint-version"] == newest
    assert git(repo, "diff", "--name-only", "--diff-filter=U") == ""


def test_the_update_keeps_every_edit_and_brings_every_change(updated, tmp_path):
    repo, _ = updated
    fresh = tree(render(tmp_path / "fresh", newest_release()))
    for path, old, new in EDITS:
        assert old in fresh[path], f"the newest {path} moved the edited text: pick another edit"
        fresh[path] = fresh[path].replace(old, new, 1)
    fresh.update(ADDED)
    got = tree(repo)
    assert sorted(got) == sorted(fresh), "files differ from a fresh render plus the owners' files"
    differing = [path for path in fresh if got[path] != fresh[path]]
    assert differing == [], f"not the newest release plus the owners' edits: {differing}"
