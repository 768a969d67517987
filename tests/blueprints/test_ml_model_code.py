"""ml-model's code: it compiles, lints and documents itself.

Every variant's Python compiles and passes ruff, its Dockerfile passes hadolint (on the right
base image) and its TechDocs build strictly. The scikit-learn variant trains for real in
test_ml_model_readme.py, which follows the generated README.
"""

from __future__ import annotations

import py_compile
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from support.timing import scaled

BIN = Path(sys.executable).parent
#: Every generated repository has these modules (the package folder is the slug, snake-cased).
MODULES = (
    "canary",
    "data",
    "evaluate",
    "metrics",
    "model",
    "params",
    "project",
    "promote",
    "publish",
    "registry",
    "rollout",
    "train",
)


def answers_of(repo: Path) -> dict:
    return yaml.safe_load((repo / ".copier-answers.yml").read_text())


def package_of(repo: Path) -> str:
    return answers_of(repo)["project_slug"].replace("-", "_")


def run(
    args: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=scaled(timeout), check=False
    )


def from_lines(dockerfile: str) -> list[str]:
    """The image of every stage, in order."""
    return re.findall(r"^FROM\s+(?:--platform=\S+\s+)?(\S+)", dockerfile, flags=re.MULTILINE)


# --- every variant -------------------------------------------------------------------------


def test_the_package_is_complete_and_every_python_file_compiles(variant, tmp_path):
    _, _, repo = variant
    package = repo / "src" / package_of(repo)
    assert sorted(p.stem for p in package.glob("*.py") if p.stem != "__init__") == sorted(MODULES)
    sample = package / "sample_data" / "sample.csv"
    header, *rows = sample.read_text().splitlines()
    assert header.split(",")[-1] == "target"
    assert len(rows) >= 200
    sources = sorted(repo.rglob("*.py"))
    assert len(sources) >= len(MODULES) + 4  # the modules, __init__ and the tests
    for source in sources:
        py_compile.compile(str(source), cfile=str(tmp_path / "compiled.pyc"), doraise=True)
    assert not list(repo.rglob("*.jinja")), "a template suffix leaked into the repository"


def test_dependencies_and_python_follow_the_answers(variant):
    _, answers, repo = variant
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    python = answers_of(repo)["python_version"]
    assert project["requires-python"] == f">={python}"
    names = {re.split(r"[<>=!~ \[]", dep, maxsplit=1)[0] for dep in project["dependencies"]}
    assert {"mlflow", "pandas"} <= names
    if answers["framework"] == "sklearn":
        assert "scikit-learn" in names and "torch" not in names
    else:
        assert "torch" in names and "scikit-learn" not in names
    assert ("onnx" in names) == (answers.get("serving_runtime") == "triton")
    assert {"pytest", "ruff"} <= {
        re.split(r"[<>=]", d)[0] for d in project["optional-dependencies"]["test"]
    }
    # The training Job runs these console scripts (`command: [train]`, `[evaluate]`).
    package = package_of(repo)
    assert project["scripts"]["train"] == f"{package}.train:main"
    assert project["scripts"]["evaluate"] == f"{package}.evaluate:main"


def test_ruff_passes_on_the_generated_repository(variant):
    _, _, repo = variant
    result = run([str(BIN / "ruff"), "check", "--no-cache", "."], cwd=repo)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dockerfile_passes_hadolint_and_runs_as_a_non_root_user(variant):
    _, _, repo = variant
    result = run([str(BIN / "hadolint"), "Dockerfile"], cwd=repo)
    assert result.returncode == 0, result.stdout + result.stderr
    dockerfile = (repo / "Dockerfile").read_text()
    images = from_lines(dockerfile)
    assert len(images) >= 2, "the image is built in more than one stage"
    for image in images:
        assert ":" in image and not image.endswith(":latest"), f"{image} is not pinned"
    user = re.findall(r"^USER\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert user and user[-1].split(":")[0] not in {"root", "0"}
    assert re.search(r"^HEALTHCHECK\s", dockerfile, flags=re.MULTILINE)
    ignored = (repo / ".dockerignore").read_text().splitlines()
    assert "*" in ignored and "!src/" in ignored


def test_gpu_variants_run_on_a_cuda_image_and_the_others_on_python_slim(variant):
    _, answers, repo = variant
    runtime = from_lines((repo / "Dockerfile").read_text())[-1]
    python = answers_of(repo)["python_version"]
    if answers["use_gpu"]:
        assert runtime.startswith("nvidia/cuda:") and "-runtime-" in runtime
    else:
        assert runtime.startswith(f"python:{python}-slim")
        assert "cuda" not in (repo / "Dockerfile").read_text().lower()


def test_the_techdocs_site_builds_strictly(variant, tmp_path):
    _, _, repo = variant
    site = tmp_path / "site"
    result = run([str(BIN / "mkdocs"), "build", "--strict", "-d", str(site)], cwd=repo)
    assert result.returncode == 0, result.stderr
    for page in ("index.html", "model-card/index.html", "runbook/index.html"):
        assert (site / page).is_file(), page
    assert "fonts.googleapis.com" not in (site / "index.html").read_text(), "offline readers wait"
    card = (site / "model-card" / "index.html").read_text()
    assert answers_of(repo)["data_classification"] in card
    assert answers_of(repo)["hub_region"] in card
