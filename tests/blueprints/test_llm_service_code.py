"""llm-service's generated code, image, docs and CI: they pass their own checks.

The generated tests run with this suite's interpreter (after checking it meets every
requirement the generated ``pyproject.toml`` declares, so nothing is downloaded), ruff passes,
the Dockerfile passes hadolint, the TechDocs build strictly, the workflows pass actionlint,
and the CI files pass yamllint.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.requirements import assert_requirements_met
from support.timing import scaled
from support.tools import actionlint, tool

BIN = Path(sys.executable).parent
Variant = tuple[str, dict[str, Any], Path]
MODULES = {
    "client",
    "dev_server",
    "evaluate",
    "import_model",
    "project",
    "pull",
    "registry",
    "snapshot",
}
YAMLLINT_CONFIG = "{extends: relaxed, rules: {truthy: {check-keys: false}, line-length: disable}}"


def run(args: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120):
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=scaled(timeout), check=False
    )


def package(repo: Path) -> Path:
    slug = yaml.safe_load((repo / ".copier-answers.yml").read_text())["service_slug"]
    return repo / "src" / slug.replace("-", "_")


def test_the_package_is_complete_and_the_generated_tests_pass(llm_variant: Variant):
    _, _, repo = llm_variant
    found = {p.stem for p in package(repo).glob("*.py") if p.stem != "__init__"}
    assert found == MODULES
    assert (package(repo) / "prompts.jsonl").is_file()
    assert_requirements_met(repo, ("test",))
    env = {
        **os.environ,
        "PYTHONPATH": str(repo / "src"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    env.pop("OPENAI_BASE_URL", None)
    result = run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=repo,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    assert passed >= 15 and "failed" not in summary, summary


def test_ruff_passes_on_the_generated_repository(llm_variant: Variant):
    _, _, repo = llm_variant
    result = run([str(BIN / "ruff"), "check", "--no-cache", "."], cwd=repo)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dockerfile_passes_hadolint_and_runs_as_a_non_root_user(llm_variant: Variant):
    _, _, repo = llm_variant
    result = run([str(BIN / "hadolint"), "Dockerfile"], cwd=repo)
    assert result.returncode == 0, result.stdout + result.stderr
    dockerfile = (repo / "Dockerfile").read_text()
    images = re.findall(r"^FROM\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert len(images) == 2 and all(":" in i and not i.endswith(":latest") for i in images)
    user = re.findall(r"^USER\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert user and user[-1].split(":")[0] not in {"root", "0"}
    assert "torch" not in dockerfile, "the job image needs no torch"


def test_the_techdocs_site_builds_strictly(llm_variant: Variant, tmp_path: Path):
    _, _, repo = llm_variant
    site = tmp_path / "site"
    result = run([str(BIN / "mkdocs"), "build", "--strict", "-d", str(site)], cwd=repo)
    assert result.returncode == 0, result.stderr
    assert "fonts.googleapis.com" not in (site / "index.html").read_text(), "offline readers wait"
    answers = yaml.safe_load((repo / ".copier-answers.yml").read_text())
    model = (site / "model" / "index.html").read_text()
    assert answers["registered_model"] in model and answers["model_license"] in model
    assert (site / "serving" / "index.html").is_file() and (
        site / "runbook" / "index.html"
    ).is_file()


@pytest.mark.tools
def test_ci_files_pass_yamllint_and_actionlint(llm_variant: Variant):
    _, answers, repo = llm_variant
    if answers["ci_system"] == "github":
        assert not (repo / ".gitlab-ci.yml").exists()
        workflows = sorted((repo / ".github" / "workflows").glob("*.yml"))
        names = {p.name for p in workflows}
        assert {"ci-cd.yml", "blueprint-update.yml"} <= names
        assert ("import-model.yml" in names) is (answers["model_source"] == "huggingface")
        result = run([*actionlint(), ".github/workflows/*.yml"], cwd=repo)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"Checking {len(workflows)} workflow file(s)" in result.stdout, result.stdout
        targets = [repo / ".github"]
    else:
        assert not (repo / ".github").exists()
        pipeline = yaml.safe_load((repo / ".gitlab-ci.yml").read_text())
        regions = answers["regions"]
        for region in regions:
            assert pipeline[f"deploy-{region}"]["environment"]["name"] == region
            assert pipeline[f"smoke-{region}"]["needs"] == [f"deploy-{region}"]
        assert pipeline[f"deploy-{regions[1]}"]["needs"] == ["build-image", f"deploy-{regions[0]}"]
        assert ("import-model" in pipeline) is (answers.get("model_source") == "huggingface")
        assert "blueprint-update" in pipeline
        targets = [repo / ".gitlab-ci.yml"]
    result = run(
        [tool("yamllint", install="pip install yamllint"), "-f", "parsable", "-d", YAMLLINT_CONFIG]
        + [str(t) for t in targets],
        cwd=repo,
    )
    assert result.returncode == 0, result.stdout + result.stderr
