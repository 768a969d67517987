"""ml-model's life: `trellis new` with checked answers, then `copier update` across versions."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from support.backstage import validate_entities
from support.blueprints import REPO, VARIANTS, render
from trellis.cli import app

runner = CliRunner()
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Trellis Tests",
    "GIT_AUTHOR_EMAIL": "tests@trellis.invalid",
    "GIT_COMMITTER_NAME": "Trellis Tests",
    "GIT_COMMITTER_EMAIL": "tests@trellis.invalid",
}


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


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
        (["project_slug=Bad Slug"], "project_slug: Use 3-50 lower-case letters"),
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


def _template_release(src: Path) -> None:
    """A scratch copy of the blueprint source as a git repository, tagged 1.0.0."""
    src.mkdir()
    shutil.copy(REPO / "copier.yml", src / "copier.yml")
    shutil.copytree(REPO / "blueprints", src / "blueprints")
    git(src, "init", "-q", "-b", "main")
    git(src, "add", "-A")
    git(src, "commit", "-q", "-m", "blueprints 1.0.0")
    git(src, "tag", "1.0.0")


def _generated_repo(src: Path, dst: Path) -> Path:
    render(VARIANTS["sklearn-github-aws"], dst, src=src, vcs_ref="1.0.0")
    git(dst, "init", "-q", "-b", "main")
    git(dst, "add", "-A")
    git(dst, "commit", "-q", "-m", "generated")
    return dst


def _release_change(src: Path) -> None:
    """1.1.0 changes the first lines of catalog-info.yaml and adds a file."""
    template = src / "blueprints" / "ml-model" / "template" / "catalog-info.yaml.jinja"
    lines = template.read_text().splitlines(keepends=True)
    lines[0] = "# Catalog entry of this ML project (managed by the ml-model blueprint).\n"
    template.write_text("".join(lines))
    (src / "blueprints" / "ml-model" / "template" / "CHANGELOG.md").write_text("# Changes\n")
    git(src, "add", "-A")
    git(src, "commit", "-q", "-m", "blueprints 1.1.0")
    git(src, "tag", "1.1.0")


def _update(dst: Path) -> None:
    from copier import run_update

    run_update(dst, defaults=True, overwrite=True, unsafe=False, quiet=True)


def test_copier_update_brings_a_new_version_and_keeps_local_edits(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _template_release(src)
    _generated_repo(src, dst)
    info = dst / "catalog-info.yaml"
    info.write_text(info.read_text() + "    - component:default/feature-store\n")
    git(dst, "commit", "-q", "-am", "depend on the feature store")
    _release_change(src)

    _update(dst)

    assert git(dst, "diff", "--name-only", "--diff-filter=U") == ""
    text = info.read_text()
    assert "<<<<<<<" not in text
    assert text.startswith("# Catalog entry of this ML project")
    assert text.endswith("    - component:default/feature-store\n")
    assert (dst / "CHANGELOG.md").exists()
    assert yaml.safe_load((dst / ".copier-answers.yml").read_text())["_commit"] == "1.1.0"


def test_an_edit_next_to_a_template_change_ends_in_a_marked_conflict(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _template_release(src)
    _generated_repo(src, dst)
    info = dst / "catalog-info.yaml"
    lines = info.read_text().splitlines(keepends=True)
    lines[0] = "# Our own words about this entry.\n"
    info.write_text("".join(lines))
    git(dst, "commit", "-q", "-am", "reword the header")
    _release_change(src)

    _update(dst)  # Copier exits normally on conflicts: the markers are what tells

    text = info.read_text()
    assert "<<<<<<<" in text and ">>>>>>>" in text
    assert "# Our own words about this entry." in text
    assert "# Catalog entry of this ML project" in text
