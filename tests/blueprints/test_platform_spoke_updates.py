"""`trellis update` moves a platform-spoke repository across two releases and keeps its edits.

A scratch blueprint source (this checkout's blueprints in a new git repository) releases
platform-spoke 1.0.0, 1.1.0 (a slower scrape interval) and 1.2.0 (a newer DCGM exporter and a
line in the docs); a spoke generated at 1.0.0 gives its exporter more memory and keeps its
access logs longer, then updates with real git and real Copier.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from support.blueprints import SPOKE_VARIANTS
from support.gitrepos import blueprint_source, commit_all, generated_repo, git, release, replace_in
from trellis.cli.app import app

PROMETHEUS = "deploy/prometheus/prometheus.yml.jinja"
OLD_IMAGE = "dcgm-exporter:4.2.3-4.1.3-ubuntu22.04"
NEW_IMAGE = "dcgm-exporter:4.4.1-4.5.2-ubuntu22.04"
#: The owners' edits, each well away from the lines the releases change.
OWN_EDITS = {
    "deploy/dcgm-exporter.yaml": ("memory: 512Mi", "memory: 1Gi"),
    "infra/variables.tf": ("default     = 730", "default     = 1095"),
}
runner = CliRunner()


def test_an_update_across_two_releases_keeps_the_owners_edits(tmp_path: Path) -> None:
    src = blueprint_source(tmp_path / "source", blueprint="platform-spoke")
    release(
        src, "1.1.0", "- Scrape every 30 seconds.",
        {PROMETHEUS: ("scrape_interval: 15s", "scrape_interval: 30s")},
        blueprint="platform-spoke",
    )  # fmt: skip
    release(
        src, "1.2.0", "- A newer DCGM exporter.",
        {
            "deploy/dcgm-exporter.yaml.jinja": (OLD_IMAGE, NEW_IMAGE),
            "docs/index.md.jinja": ("## Owner\n", "## Owner\n\nAsk in #ml-platform first.\n"),
        },
        blueprint="platform-spoke",
    )  # fmt: skip
    repo = generated_repo(
        src, tmp_path / "repo", SPOKE_VARIANTS["aws-eu-west"], blueprint="platform-spoke"
    )
    for path, (old, new) in OWN_EDITS.items():
        replace_in(repo / path, old, new)
    commit_all(repo, "More memory for the exporter, longer access logs")

    result = runner.invoke(app, ["update", str(repo)])

    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert "platform-spoke 1.0.0 → 1.2.0" in out
    assert "Scrape every 30 seconds." in out and "A newer DCGM exporter." in out
    assert yaml.safe_load((repo / ".copier-answers.yml").read_text())["_commit"] == "1.2.0"
    assert git(repo, "diff", "--name-only", "--diff-filter=U") == ""
    for path, (_, new) in OWN_EDITS.items():
        text = (repo / path).read_text()
        assert new in text, f"the owners' edit to {path} was lost"
        assert "<<<<<<<" not in text, path
    assert "scrape_interval: 30s" in (repo / "deploy/prometheus/prometheus.yml").read_text()
    assert NEW_IMAGE in (repo / "deploy/dcgm-exporter.yaml").read_text()
    assert "Ask in #ml-platform first." in (repo / "docs/index.md").read_text()
