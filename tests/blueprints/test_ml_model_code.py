"""ml-model's code: it compiles, lints, documents itself, and trains for real.

Every variant's Python compiles and passes ruff, its Dockerfile passes hadolint (on the right
base image) and its TechDocs build strictly. The scikit-learn variant is then installed into
a fresh virtualenv, runs its own tests, trains and promotes a model through a real MLflow
server, and the model comes out of Trellis's catalog as the Resource its repository names.
"""

from __future__ import annotations

import os
import py_compile
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest
import yaml

from support.backstage import validate_entities
from support.blueprints import VARIANTS, render
from support.services import mlflow_server
from support.timing import scaled
from support.tools import uv
from trellis.catalog import CatalogOptions, entity_problems
from trellis.model import ModelTags
from trellis.services.catalog_refresh import build_document
from trellis.sources.mlflow import RestRegistry

BIN = Path(sys.executable).parent
TRAINED_VARIANT = "sklearn-github-aws"
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
    card = (site / "model-card" / "index.html").read_text()
    assert answers_of(repo)["data_classification"] in card
    assert answers_of(repo)["hub_region"] in card


# --- one variant, for real -----------------------------------------------------------------


#: Settings of this environment that a user's fresh install does not have. Without
#: PYTHONDONTWRITEBYTECODE the first process writes the bytecode of what it imports (pip writes
#: it at install; uv does not), so the later ones do not compile MLflow, pandas and scikit-learn
#: again (some 7 s of CPU per process), nor MLflow's migrations for each new SQLite registry.
NOT_A_USERS = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONDONTWRITEBYTECODE"}


def fresh_env(**extra: str) -> dict[str, str]:
    """This environment without our virtualenv's traces, plus MLflow's quiet settings."""
    env = {
        k: v for k, v in os.environ.items() if k not in NOT_A_USERS and not k.startswith("MLFLOW_")
    }
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if Path(p) != BIN
    )
    return {
        **env,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        **extra,
    }


@pytest.mark.backstage
@pytest.mark.mlflow
@pytest.mark.tools
def test_a_generated_repository_trains_and_promotes_its_model_into_the_trellis_catalog(
    tmp_path,
):
    answers = VARIANTS[TRAINED_VARIANT]
    repo = render(answers, tmp_path / "repo")
    slug = answers_of(repo)["project_slug"]
    package = package_of(repo)

    # A fresh virtualenv with nothing but the generated project and its test extras, its
    # requirements resolved from the index as a user's `pip install` would (by uv, for speed).
    venv = tmp_path / "venv"
    made = run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path, env=fresh_env()
    )
    assert made.returncode == 0, made.stderr
    python = str(venv / "bin" / "python")
    installed = run(
        [uv(), "pip", "install", "--quiet", "--python", python, "-e", f"{repo}[test]"],
        cwd=tmp_path,
        env=fresh_env(),
        timeout=600,
    )
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]

    # The repository's own tests pass there.
    tested = run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=repo,
        env=fresh_env(),
        timeout=600,
    )
    assert tested.returncode == 0, tested.stdout[-5000:] + tested.stderr[-3000:]
    assert re.search(r"\b\d+ passed\b", tested.stdout), tested.stdout[-2000:]

    commit = "c0ffee" * 6 + "c0ff"
    with mlflow_server(tmp_path / "registry" / "mlflow.db") as server:
        env = fresh_env(MLFLOW_TRACKING_URI=server.url, GIT_COMMIT=commit)
        trained = run([python, "-m", f"{package}.train"], cwd=repo, env=env)
        assert trained.returncode == 0, trained.stdout + trained.stderr[-5000:]
        evaluated = run([python, "-m", f"{package}.evaluate"], cwd=repo, env=env)
        assert evaluated.returncode == 0, evaluated.stdout + evaluated.stderr[-5000:]
        assert "new `champion`" in evaluated.stdout

        _assert_registry(server.url, slug, commit, answers, repo, tmp_path)

        with httpx.Client(base_url=server.url, timeout=scaled(30)) as http:
            snapshot = RestRegistry(http, label=server.url).read()
    document = build_document(snapshot, CatalogOptions(mlflow_ui_url=server.url))
    _assert_catalog(document, slug, answers, repo)


def _assert_registry(
    url: str, slug: str, commit: str, answers: dict, repo: Path, tmp_path: Path
) -> None:
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts
    from mlflow.models import Model

    client = MlflowClient(tracking_uri=url, registry_uri=url)
    model = client.get_registered_model(slug)
    blueprint_version = str(answers_of(repo)["_commit"])
    assert model.tags == {
        ModelTags.OWNER: answers["owner"],
        ModelTags.SYSTEM: answers["system"],
        ModelTags.DATA_CLASSIFICATION: answers["data_classification"],
        ModelTags.TRAINING_REGION: answers["hub_region"],
        ModelTags.SOURCE_REPO: f"https://github.com/{answers_of(repo)['repository']}",
        ModelTags.BLUEPRINT: "ml-model",
        ModelTags.BLUEPRINT_VERSION: blueprint_version,
        ModelTags.FRAMEWORK: "sklearn",
        ModelTags.TASK: "classification",
        ModelTags.TAGS: "kserve-mlserver",
    }
    assert model.description == answers_of(repo)["description"]

    champion = client.get_model_version_by_alias(slug, ModelTags.CHAMPION)
    assert client.get_model_version_by_alias(slug, "candidate").version == champion.version
    assert str(champion.version) == "1"
    tags = champion.tags
    assert {
        k: tags.get(k)
        for k in (
            "owner",
            "system",
            "data_classification",
            "git_commit",
            "blueprint",
            "blueprint_version",
        )
    } == {
        "owner": answers["owner"],
        "system": answers["system"],
        "data_classification": answers["data_classification"],
        "git_commit": commit,
        "blueprint": "ml-model",
        "blueprint_version": blueprint_version,
    }
    assert tags["validation_status"] == "passed"
    assert float(tags["holdout_f1"]) >= 0.7

    run_data = client.get_run(champion.run_id).data
    assert {"accuracy", "f1"} <= set(run_data.metrics)
    assert run_data.params["data.test_size"] == "0.25"
    folder = download_artifacts(
        artifact_uri=client.get_model_version_download_uri(slug, champion.version),
        dst_path=str(tmp_path / "model"),
        tracking_uri=url,
    )
    logged = Model.load(folder)
    assert logged.signature is not None
    assert [spec.name for spec in logged.signature.inputs.inputs][:2] == [
        "feature_01",
        "feature_02",
    ]
    assert "sklearn" in logged.flavors


def _assert_catalog(document, slug: str, answers: dict, repo: Path) -> None:
    entities = list(yaml.safe_load_all(document.yaml))
    resources = [e for e in entities if e["kind"] == "Resource"]
    assert [r["metadata"]["name"] for r in resources] == [slug]
    resource = resources[0]
    annotations = resource["metadata"]["annotations"]
    assert annotations["trellis.dev/blueprint"] == "ml-model"
    assert annotations["trellis.dev/blueprint-version"] == str(answers_of(repo)["_commit"])
    assert annotations["trellis.dev/champion-version"] == "1"
    assert annotations["trellis.dev/data-classification"] == answers["data_classification"]
    assert annotations["github.com/project-slug"] == answers_of(repo)["repository"]
    assert resource["spec"]["owner"] == answers["owner"]
    assert resource["spec"]["system"] == f"system:default/{answers['system']}"
    assert resource["spec"]["lifecycle"] == "production"
    assert [p for p in document.problems if p.severity == "error"] == []
    assert entity_problems(resource) == []
    verdicts = validate_entities(entities)
    assert all(v["ok"] for v in verdicts), verdicts
    # The repository's own catalog entity depends on exactly this Resource.
    component = yaml.safe_load((repo / "catalog-info.yaml").read_text())
    assert f"resource:default/{resource['metadata']['name']}" in component["spec"]["dependsOn"]
