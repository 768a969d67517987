"""`trellis update` moves an edge-finetune repository across two releases and keeps its edits.

A scratch blueprint source (this checkout's blueprints in a new git repository) releases
edge-finetune 1.0.0, 1.1.0 (more tuning steps) and 1.2.0 (a runbook line and a bigger scratch
volume); a repository generated at 1.0.0 changes its hold-out share and its Job's deadline,
then updates with real git and real Copier.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from support.blueprints import FINETUNE_VARIANTS
from support.gitrepos import blueprint_source, commit_all, generated_repo, git, release, replace_in
from trellis.cli.app import app

JOB = 'deploy/{{ "job.yaml" if schedule == "on-demand" else "cronjob.yaml" }}.jinja'
#: The owners' edits, each well away from the lines the releases change.
OWN_EDITS = {
    "params.yaml": ("holdout_fraction: 0.2\n", "holdout_fraction: 0.25\n"),
    "deploy/job.yaml": ("activeDeadlineSeconds: 43200", "activeDeadlineSeconds: 21600"),
}
runner = CliRunner()


def test_an_update_across_two_releases_keeps_the_owners_edits(tmp_path: Path) -> None:
    src = blueprint_source(tmp_path / "source", blueprint="edge-finetune")
    release(
        src, "1.1.0", "- Tune for 300 steps.",
        {"params.yaml.jinja": ("  max_steps: 200\n", "  max_steps: 300\n")},
        blueprint="edge-finetune",
    )  # fmt: skip
    release(
        src, "1.2.0", "- The runbook says who to ask.",
        {
            "docs/runbook.md.jinja": ("## Roll back\n", "## Roll back\n\nAsk the owners first.\n"),
            JOB: ("sizeLimit: 100Gi", "sizeLimit: 200Gi"),
        },
        blueprint="edge-finetune",
    )  # fmt: skip
    repo = generated_repo(
        src, tmp_path / "repo", FINETUNE_VARIANTS["lora-github-aws"], blueprint="edge-finetune"
    )
    for path, (old, new) in OWN_EDITS.items():
        replace_in(repo / path, old, new)
    commit_all(repo, "A larger hold-out and a shorter deadline")

    result = runner.invoke(app, ["update", str(repo)])

    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert "edge-finetune 1.0.0 → 1.2.0" in out
    assert "Tune for 300 steps." in out and "The runbook says who to ask." in out
    assert yaml.safe_load((repo / ".copier-answers.yml").read_text())["_commit"] == "1.2.0"
    assert git(repo, "diff", "--name-only", "--diff-filter=U") == ""
    for path, (_, new) in OWN_EDITS.items():
        text = (repo / path).read_text()
        assert new in text, f"the owners' edit to {path} was lost"
        assert "<<<<<<<" not in text, path
    assert "max_steps: 300" in (repo / "params.yaml").read_text()
    assert "Ask the owners first." in (repo / "docs/runbook.md").read_text()
    assert "sizeLimit: 200Gi" in (repo / "deploy/job.yaml").read_text()
