"""The rest of a generated spoke repository: its TechDocs, its catalog entry, its README.

The TechDocs site builds with ``mkdocs --strict`` (as Backstage's TechDocs builder would), the
catalog entry passes Backstage's own validators, and the README gives the order to apply the
parts and how the spoke reaches Trellis.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.backstage import validate_entities
from support.blueprints import Renders
from support.timing import scaled

Variant = tuple[str, dict[str, Any], Path]
BIN = Path(sys.executable).parent


def answers_of(repo: Path) -> dict[str, Any]:
    return yaml.safe_load((repo / ".copier-answers.yml").read_text())


def test_the_techdocs_site_builds_strictly(spoke_variant: Variant, tmp_path: Path) -> None:
    repo = spoke_variant[2]
    site = tmp_path / "site"
    result = subprocess.run(
        [str(BIN / "mkdocs"), "build", "--strict", "-d", str(site)],
        cwd=repo, capture_output=True, text=True, timeout=scaled(120), check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    index = (site / "index.html").read_text()
    assert answers_of(repo)["spoke_region"] in index and "Order to apply" in index


@pytest.mark.backstage
def test_the_catalog_entries_are_valid_and_name_the_region(renders: Renders) -> None:
    repos = renders.all("platform-spoke")
    entities = [yaml.safe_load((repo / "catalog-info.yaml").read_text()) for repo in repos.values()]
    assert [v for v in validate_entities(entities) if not v["ok"]] == []
    for entity, repo in zip(entities, repos.values(), strict=True):
        answers = answers_of(repo)
        assert entity["kind"] == "Resource" and entity["spec"]["type"] == "kubernetes-cluster"
        assert entity["metadata"]["annotations"]["trellis.dev/regions"] == answers["spoke_region"]
        assert entity["metadata"]["annotations"]["trellis.dev/blueprint"] == "platform-spoke"
        assert entity["spec"]["owner"] == answers["spoke_team"]


def test_the_readme_gives_the_order_and_the_trellis_settings(spoke_variant: Variant) -> None:
    repo = spoke_variant[2]
    answers = answers_of(repo)
    readme = (repo / "README.md").read_text()
    steps = [
        "terraform apply",
        "GPU Operator",
        "deploy/model-readers.yaml",
        "kubectl apply -k deploy",
    ]
    positions = [readme.index(step) for step in steps]
    assert positions == sorted(positions), "the README applies the parts in order"
    name = answers["spoke_name"]
    assert f"`,{name}`" in readme and f"`,{name}={answers['spoke_region']}`" in readme
    assert ("hub-remote-write" in readme) == bool(answers["spoke_remote_write_url"])
