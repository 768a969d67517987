"""The rest of a generated spoke repository: TechDocs, catalog entry, README and CI.

The TechDocs site builds with ``mkdocs --strict`` (as Backstage's TechDocs builder would), the
catalog entry passes Backstage's own validators, and the README gives the order to apply the
parts and how the spoke reaches Trellis; CI renders and scans the spoke on every change
(actionlint passes its GitHub workflows) and proposes blueprint updates on a schedule.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.backstage import validate_entities
from support.blueprints import Renders, render
from support.manifests import render_overlay, validate_builtin, validate_custom
from support.terraform import Terraform
from support.timing import scaled
from support.tools import actionlint

Variant = tuple[str, dict[str, Any], Path]
BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]


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
    assert "fonts.googleapis.com" not in index, "a reader without internet access would wait"


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


@pytest.mark.tools
def test_ci_renders_scans_and_proposes_blueprint_updates(spoke_variant: Variant) -> None:
    repo = spoke_variant[2]
    if answers_of(repo)["spoke_ci_provider"] == "github":
        assert not (repo / ".gitlab-ci.yml").exists()
        result = subprocess.run(
            [*actionlint(), ".github/workflows/*.{yml,yaml}"],
            cwd=repo, capture_output=True, text=True, timeout=scaled(120), check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Checking 2 workflow file(s)" in result.stdout, result.stdout
        checks = yaml.safe_load((repo / ".github/workflows/checks.yml").read_text())
        assert checks["permissions"] == {"contents": "read"}
        steps = str(checks["jobs"]["checks"]["steps"])
        uses = [s.get("uses", "") for s in checks["jobs"]["checks"]["steps"]]
        assert all(re.match(r"^[^@]+@[0-9a-f]{40}$", u) for u in uses if u)
    else:
        assert not (repo / ".github").exists()
        pipeline = yaml.safe_load((repo / ".gitlab-ci.yml").read_text())
        assert set(pipeline["stages"]) == {"check", "maintain"}
        steps = str(pipeline["checks"]["script"])
        update = pipeline["blueprint-update"]
        assert update["script"][-1] == "scripts/blueprint-update.sh gitlab"
        assert "schedule" in update["rules"][0]["if"]
    assert "kustomize deploy" in steps and "--config-file .checkov.yaml" in steps


@pytest.mark.tools
def test_only_the_required_answers_make_a_working_spoke(tmp_path: Path) -> None:
    required = {"spoke_region": "ap-south-1", "spoke_name": "ap-south"}
    repo = render(required, tmp_path / "spoke", blueprint="platform-spoke")
    answers = answers_of(repo)
    assert (answers["spoke_cloud"], answers["spoke_gpu_product"]) == ("aws", "NVIDIA-A10G")
    assert Terraform(repo / "infra").default("region") == "ap-south-1"
    objects = render_overlay(repo / "deploy")
    assert validate_builtin(objects) == [] and validate_custom(objects) == []


@pytest.mark.parametrize(
    ("answers", "refused"),
    [
        ({"spoke_cloud": "gcp", "spoke_region": "eu-west-1"}, "Unknown gcp region eu-west-1"),
        ({"spoke_cloud": "azure", "spoke_gpu_product": "NVIDIA-L4"}, "azure offers no NVIDIA-L4"),
        ({"spoke_cloud": "gcp", "spoke_hub_model_store": "s3://hub-models"}, "Use gs://BUCKET"),
        ({"spoke_allowed_cidrs": ["0.0.0.0/0"]}, "0.0.0.0/0 is not an IPv4 CIDR of /8 to /32"),
    ],
)
def test_answers_for_another_cloud_or_the_whole_internet_are_refused(
    answers: dict[str, Any], refused: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=re.escape(refused)):
        render(answers, tmp_path / "spoke", blueprint="platform-spoke")
