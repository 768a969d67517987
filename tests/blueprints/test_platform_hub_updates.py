"""`trellis update` moves a platform-hub repository across two releases and keeps its edits.

A scratch blueprint source (this checkout's blueprints in a new git repository) releases
platform-hub 1.0.0, 1.1.0 (a longer artifact-version retention) and 1.2.0 (an operations line
and more memory for Trellis); a repository generated at 1.0.0 gives Trellis a shorter
scoring interval and MLflow a third replica, then updates with real git and real Copier.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from support.blueprints import HUB_VARIANTS
from support.gitrepos import blueprint_source, commit_all, generated_repo, git, release, replace_in
from trellis.cli.app import app

#: The owners' edits, each well away from the lines the releases change.
OWN_EDITS = {
    "deploy/trellis/configmap.yaml": (
        'TRELLIS_SCORECARDS__INTERVAL_SECONDS: "300"',
        'TRELLIS_SCORECARDS__INTERVAL_SECONDS: "120"',
    ),
    "deploy/mlflow/deployment.yaml": ("  replicas: 2\n", "  replicas: 3\n"),
}
runner = CliRunner()


def test_an_update_across_two_releases_keeps_the_owners_edits(tmp_path: Path) -> None:
    src = blueprint_source(tmp_path / "source", blueprint="platform-hub")
    release(
        src, "1.1.0", "- Keep overwritten artifacts for 180 days.",
        {"infra/variables.tf.jinja": ("  default     = 90\n", "  default     = 180\n")},
        blueprint="platform-hub",
    )  # fmt: skip
    release(
        src, "1.2.0", "- The operations page says who to ask.",
        {
            "docs/operations.md.jinja": (
                "## Adding a region\n", "## Adding a region\n\nAsk the platform team first.\n"
            ),
            "deploy/trellis/deployment.yaml.jinja": ("memory: 768Mi", "memory: 1Gi"),
        },
        blueprint="platform-hub",
    )  # fmt: skip
    repo = generated_repo(
        src, tmp_path / "repo", HUB_VARIANTS["create-github-aws"], blueprint="platform-hub"
    )
    for path, (old, new) in OWN_EDITS.items():
        replace_in(repo / path, old, new)
    commit_all(repo, "Score every two minutes, and a third registry replica")

    result = runner.invoke(app, ["update", str(repo)])

    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert "platform-hub 1.0.0 → 1.2.0" in out
    assert "Keep overwritten artifacts for 180 days." in out
    assert "The operations page says who to ask." in out
    assert yaml.safe_load((repo / ".copier-answers.yml").read_text())["_commit"] == "1.2.0"
    assert git(repo, "diff", "--name-only", "--diff-filter=U") == ""
    for path, (_, new) in OWN_EDITS.items():
        text = (repo / path).read_text()
        assert new in text, f"the owners' edit to {path} was lost"
        assert "<<<<<<<" not in text, path
    assert "default     = 180" in (repo / "infra/variables.tf").read_text()
    assert "Ask the platform team first." in (repo / "docs/operations.md").read_text()
    assert "memory: 1Gi" in (repo / "deploy/trellis/deployment.yaml").read_text()
