"""edge-finetune's code and documents: they compile, lint, build, validate and test themselves.

Every variant's Python compiles and passes ruff, its Dockerfile passes hadolint, its TechDocs
build strictly and its catalog entry is valid. The LoRA variant's own tests (a tiny model,
offline) pass with this environment's interpreter, after checking that this environment
satisfies every requirement the generated ``pyproject.toml`` declares (a fresh virtualenv
would download a multi-gigabyte PyTorch build). Bad answers are refused naming the question.
"""

from __future__ import annotations

import json
import os
import py_compile
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from support.backstage import validate_entities
from support.requirements import assert_requirements_met
from support.timing import scaled
from trellis.cli.app import app

Variant = tuple[str, dict[str, Any], Path]
BIN = Path(sys.executable).parent
MODULES = ("data", "finetune", "gate", "lineage", "params", "project", "registry", "tuning")
runner = CliRunner()


def answers_of(repo: Path) -> dict[str, Any]:
    return yaml.safe_load((repo / ".copier-answers.yml").read_text())


def package_of(repo: Path) -> str:
    return str(answers_of(repo)["adapter_name"]).replace("-", "_")


def run(args: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300):
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=scaled(timeout), check=False
    )


def test_the_package_is_complete_and_every_python_file_compiles(
    finetune_variant: Variant, tmp_path: Path
) -> None:
    _, _, repo = finetune_variant
    package = repo / "src" / package_of(repo)
    assert sorted(p.stem for p in package.glob("*.py") if p.stem != "__init__") == sorted(MODULES)
    sample = (package / "sample_data/regional_sample.jsonl").read_text()
    rows = [json.loads(line) for line in sample.splitlines()]
    assert len(rows) >= 24
    assert all("text" in r or {"prompt", "completion"} <= set(r) for r in rows)
    for source in sorted(repo.rglob("*.py")):
        py_compile.compile(str(source), cfile=str(tmp_path / "compiled.pyc"), doraise=True)
    assert not list(repo.rglob("*.jinja")), "a template suffix leaked into the repository"


def test_dependencies_entry_point_and_parameters_follow_the_answers(
    finetune_variant: Variant,
) -> None:
    _, answers, repo = finetune_variant
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=!~ \[]", dep, maxsplit=1)[0] for dep in project["dependencies"]}
    assert {"mlflow", "torch", "transformers", "peft"} <= names
    extras = project["optional-dependencies"]
    assert ("qlora" in extras) == (answers["method"] == "qlora")
    cloud_sdk = {"aws": "boto3", "gcp": "google-cloud-storage"}[answers["target_cloud"]]
    assert [d.split(">")[0] for d in extras["cloud"]] == [cloud_sdk]
    assert project["scripts"] == {"finetune": f"{package_of(repo)}.finetune:main"}
    params = yaml.safe_load((repo / "params.yaml").read_text())
    assert params["tuning"]["method"] == answers["method"]
    assert params["lora"]["rank"] == answers.get("lora_rank", 16)
    assert params["gate"]["min_loss_improvement"] == answers.get("min_loss_improvement", 0.01)
    assert params["gate"]["max_perplexity"] == answers.get("max_perplexity", 0.0)


def test_ruff_passes_on_the_generated_repository(finetune_variant: Variant) -> None:
    _, _, repo = finetune_variant
    result = run([str(BIN / "ruff"), "check", "--no-cache", "."], cwd=repo)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dockerfile_passes_hadolint_and_runs_on_cuda_as_a_non_root_user(
    finetune_variant: Variant,
) -> None:
    _, answers, repo = finetune_variant
    result = run([str(BIN / "hadolint"), "Dockerfile"], cwd=repo)
    assert result.returncode == 0, result.stdout + result.stderr
    dockerfile = (repo / "Dockerfile").read_text()
    images = re.findall(r"^FROM\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert len(images) == 2 and images[-1].startswith("nvidia/cuda:") and "-runtime-" in images[-1]
    assert all(":" in image and not image.endswith(":latest") for image in images)
    user = re.findall(r"^USER\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert user and user[-1].split(":")[0] not in {"root", "0"}
    extras = "cloud,qlora" if answers["method"] == "qlora" else "cloud"
    assert f'".[{extras}]"' in dockerfile
    ignored = (repo / ".dockerignore").read_text().splitlines()
    assert "*" in ignored and "!src/" in ignored


def test_the_techdocs_site_builds_strictly(finetune_variant: Variant, tmp_path: Path) -> None:
    _, answers, repo = finetune_variant
    site = tmp_path / "site"
    result = run([str(BIN / "mkdocs"), "build", "--strict", "-d", str(site)], cwd=repo)
    assert result.returncode == 0, result.stderr
    for page in ("index.html", "data-governance/index.html", "runbook/index.html"):
        assert (site / page).is_file(), page
    assert "fonts.googleapis.com" not in (site / "index.html").read_text(), "offline readers wait"
    governance = (site / "data-governance" / "index.html").read_text()
    assert answers["data_region"] in governance


@pytest.mark.backstage
def test_catalog_info_is_valid_and_names_the_adapter_and_its_hub_model(
    finetune_variant: Variant,
) -> None:
    _, answers, repo = finetune_variant
    entity = yaml.safe_load((repo / "catalog-info.yaml").read_text())
    verdicts = validate_entities([entity])
    assert verdicts[0]["ok"], verdicts
    adapter = answers_of(repo)["adapter_name"]
    assert entity["metadata"]["name"] == adapter
    assert entity["spec"]["dependsOn"] == [
        f"resource:default/{adapter}",
        f"resource:default/{answers['hub_model']}",
    ]
    annotations = entity["metadata"]["annotations"]
    assert annotations["trellis.dev/blueprint"] == "edge-finetune"
    assert annotations["trellis.dev/registered-model"] == adapter
    assert annotations["trellis.dev/parent-model"] == answers["hub_model"]
    assert annotations["trellis.dev/regions"] == answers["data_region"]
    host = "github.com" if answers["ci_provider"] == "github" else "gitlab.com"
    assert f"{host}/project-slug" in annotations


@pytest.mark.parametrize("finetune_variant", ["lora-github-aws"], indirect=True)
def test_the_generated_tests_pass_on_a_tiny_model(finetune_variant: Variant) -> None:
    _, _, repo = finetune_variant
    assert_requirements_met(repo, ("test",))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
        "PYTHONPATH": str(repo / "src"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    tested = run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=repo, env=env, timeout=600,
    )  # fmt: skip
    assert tested.returncode == 0, tested.stdout[-5000:] + tested.stderr[-3000:]
    assert re.search(r"\b\d+ passed\b", tested.stdout), tested.stdout[-2000:]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (["data_region=mars-1"], "data_region: Unknown aws region mars-1"),
        (["classification=restricted"], "allowed_classifications: The data is restricted"),
        (["data_location=s3://other-bucket/train.jsonl"], "data_location: The bucket must be"),
        (["schedule=every night"], "schedule: Use on-demand or a five-field cron"),
        (["data_store_cidr=0.0.0.0/0"], "data_store_cidr: Use an IPv4 CIDR"),
        (["mlflow_uri=https://mlflow.example.com"], "mlflow_uri: Use http://SERVICE"),
    ],
)
def test_bad_answers_are_refused_naming_the_question(
    tmp_path: Path, data: list[str], message: str
) -> None:
    args = ["new", "edge-finetune", str(tmp_path / "out"), "--defaults", "--vcs-ref", "HEAD"]
    for pair in data:
        args += ["--data", pair]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split()), result.stderr
    assert not (tmp_path / "out" / "catalog-info.yaml").exists()
