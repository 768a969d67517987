"""llm-service from `trellis new`: answers checked, catalog entry, answers file for updates."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from support.backstage import validate_entities
from support.blueprints import LLM_VARIANTS, REPO
from trellis.cli.app import app

runner = CliRunner()
REVISION = LLM_VARIANTS["kserve-github-aws"]["hf_revision"]


@pytest.mark.backstage
def test_catalog_info_is_valid_and_points_at_the_model_and_its_adapters(llm_variant):
    _, _, repo = llm_variant
    answers = yaml.safe_load((repo / ".copier-answers.yml").read_text())
    entities = list(yaml.safe_load_all((repo / "catalog-info.yaml").read_text()))
    results = validate_entities(entities)
    assert all(r["ok"] for r in results), results
    component, api = entities
    assert component["metadata"]["name"] == answers["service_slug"]
    assert component["spec"]["dependsOn"] == [
        f"resource:default/{name}"
        for name in [answers["registered_model"], *answers["lora_adapters"]]
    ]
    assert component["spec"]["providesApis"] == [api["metadata"]["name"]]
    assert api["spec"]["type"] == "openai"
    annotations = component["metadata"]["annotations"]
    assert annotations["trellis.dev/blueprint"] == "llm-service"
    assert annotations["trellis.dev/registered-model"] == answers["registered_model"]
    assert annotations["trellis.dev/lora-adapters"] == ",".join(answers["lora_adapters"])
    assert annotations["trellis.dev/regions"].split(",") == answers["regions"]
    assert annotations["backstage.io/techdocs-ref"] == "dir:."
    assert answers["_src_path"] == str(REPO) and answers["blueprint"] == "llm-service"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (["hf_revision=main"], "hf_revision: 'main' does not match ^[0-9a-f]{40}$"),
        (
            ["hf_revision=" + REVISION, "model_license=llama3.1"],
            "model_license: Licence llama3.1 is not on the allow-list",
        ),
        (
            ["hf_revision=" + REVISION, "hf_model_id=not-an-id"],
            "hf_model_id: Use a Hugging Face model id",
        ),
        (
            ["hf_revision=" + REVISION, "gpus=4", "tensor_parallel_size=3"],
            "tensor_parallel_size: Tensor-parallel size 3 must be at least 1 and divide the 4 GPUs",
        ),
        (
            ["hf_revision=" + REVISION, "min_replicas=3", "max_replicas=2"],
            "max_replicas: The most replicas (2) must not be fewer than the fewest (3)",
        ),
        (["hf_revision=" + REVISION, "lora_adapters=[Bad Name]"], "lora_adapters"),
        (["hf_revision=" + REVISION, "regions=[mars-1]"], "regions"),
        (["hf_revision=" + REVISION, "quantization=int3"], "quantization"),
        (["project_name=x"], "project_name: not a question of llm-service"),
    ],
)
def test_bad_answers_are_refused_naming_the_question(tmp_path, data, message):
    args = ["new", "llm-service", str(tmp_path / "out"), "--defaults", "--vcs-ref", "HEAD"]
    for pair in data:
        args += ["--data", pair]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split())
    assert not (tmp_path / "out" / "catalog-info.yaml").exists()


def test_a_model_from_the_registry_needs_no_revision_and_renders(tmp_path):
    out = tmp_path / "svc"
    result = runner.invoke(
        app,
        [
            "new", "llm-service", str(out), "--defaults", "--vcs-ref", "HEAD",
            "--data", "model_source=registry", "--data", "registered_model=mistral-7b",
            "--data", "lora_adapters=[mistral-7b-eu]",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    recorded = yaml.safe_load((out / ".copier-answers.yml").read_text())
    assert recorded["registered_model"] == "mistral-7b"
    assert "hf_revision" not in recorded
    assert not (out / ".github" / "workflows" / "import-model.yml").exists()
