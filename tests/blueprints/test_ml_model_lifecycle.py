"""ml-model from `trellis new`: answers checked, catalog entry, answers file for updates."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from support.backstage import validate_entities
from support.blueprints import REPO
from trellis.cli.app import app

runner = CliRunner()


@pytest.mark.backstage
def test_catalog_info_is_valid_and_points_at_the_model(variant):
    _, answers, repo = variant
    entity = yaml.safe_load((repo / "catalog-info.yaml").read_text())
    assert validate_entities([entity])[0]["ok"], validate_entities([entity])
    slug = yaml.safe_load((repo / ".copier-answers.yml").read_text())["project_slug"]
    assert entity["metadata"]["name"] == slug
    assert entity["spec"]["dependsOn"] == [f"resource:default/{slug}"]
    annotations = entity["metadata"]["annotations"]
    assert annotations["backstage.io/techdocs-ref"] == "dir:."
    assert annotations["backstage.io/kubernetes-id"] == slug
    assert annotations["trellis.dev/blueprint"] == "ml-model"
    host_key = "github.com/project-slug" if answers["ci"] == "github" else "gitlab.com/project-slug"
    assert host_key in annotations
    regions = annotations["trellis.dev/regions"].split(",")
    assert regions == [answers["hub_region"], *answers["edge_regions"]]


def test_the_answers_file_records_source_and_commit(variant):
    _, _, repo = variant
    answers = yaml.safe_load((repo / ".copier-answers.yml").read_text())
    assert answers["_src_path"] == str(REPO)
    assert answers["_commit"]
    assert answers["blueprint"] == "ml-model"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (["project_slug=Bad Slug"], "project_slug: 'Bad Slug' does not match ^[a-z]"),
        (["project_slug=fraud--detector"], "project_slug: Use 3-50 lower-case letters"),
        (["hub_region=mars-1"], "hub_region: Unknown aws region mars-1"),
        (["cloud=gcp", "edge_regions=[us-east-1]"], "edge_regions: Unknown gcp region us-east-1"),
        (["use_gpu=true", "gpu_count=0"], "gpu_count: Use 1 to 8 GPUs"),
        (["gpu_count=two"], "gpu_count: expects a whole number"),
        (["framework=sklearn", "serving_runtime=triton"], "serving_runtime: Triton serves"),
        (["owner=Risk Team"], "owner: Use a Backstage reference"),
        (["colour=blue"], "colour: not a question of ml-model"),
        (["known_regions=[mars-1]"], "known_regions: not a question of ml-model"),
    ],
)
def test_bad_answers_are_refused_naming_the_question(tmp_path, data, message):
    args = ["new", "ml-model", str(tmp_path / "out"), "--defaults", "--vcs-ref", "HEAD"]
    for pair in data:
        args += ["--data", pair]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split())
    assert not (tmp_path / "out" / "catalog-info.yaml").exists()


def test_trellis_new_renders_answers_from_a_file_and_flags(tmp_path):
    answers = tmp_path / "answers.yml"
    answers.write_text(
        yaml.safe_dump(
            {
                "project_name": "Credit Scorer",
                "cloud": "gcp",
                "edge_regions": ["us-central1", "asia-southeast1"],
            }
        )
    )
    out = tmp_path / "credit"
    result = runner.invoke(
        app,
        [
            "new",
            "ml-model",
            str(out),
            "--data-file",
            str(answers),
            "--data",
            "hub_region=europe-west1",
            "--defaults",
            "--vcs-ref",
            "HEAD",
        ],
    )
    assert result.exit_code == 0, result.output
    recorded = yaml.safe_load((out / ".copier-answers.yml").read_text())
    assert recorded["project_slug"] == "credit-scorer"
    assert recorded["hub_region"] == "europe-west1"
    assert recorded["edge_regions"] == ["us-central1", "asia-southeast1"]
    again = runner.invoke(app, ["new", "ml-model", str(out), "--defaults"])
    assert again.exit_code == 2 and "not empty" in again.stderr
    unknown = runner.invoke(app, ["new", "llm-magic", str(tmp_path / "x"), "--defaults"])
    assert unknown.exit_code == 2 and "unknown blueprint 'llm-magic'" in unknown.stderr
