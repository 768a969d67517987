"""ml-model's README, followed the way a newcomer follows it.

The scikit-learn variant's README is run as one shell script in a fresh virtualenv, every
command taken from its ```bash blocks: install, the repository's own tests, train against a
real MLflow server, evaluate, promote, publish to a folder, and train on data in the bucket.
What comes out is then checked as Trellis sees it: the registry's tags, the model's catalog
entity (validated by Backstage), and the Model readiness scorecard, which must pass.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml

from support.backstage import validate_entities
from support.blueprints import VARIANTS, render
from support.fresh_env import fresh_env
from support.services import free_port, mlflow_server, start_process, wait_http
from support.timing import scaled
from support.tools import uv
from trellis.catalog import CatalogOptions, entity_problems
from trellis.model import ModelTags
from trellis.scorecards import load_scorecards
from trellis.scorecards.facts import REGISTRY, registry_facts
from trellis.scorecards.scoring import Outcome, run_checks
from trellis.services.catalog_refresh import build_document
from trellis.sources.mlflow import RestRegistry
from trellis.wiring import default_scorecards

WALKED_VARIANT = "sklearn-github-aws"
#: The object store each cloud trains from, and the fsspec package that reads it.
OBJECT_STORES = {"aws": ("s3://", "s3fs"), "gcp": ("gs://", "gcsfs"), "azure": ("abfs://", "adlfs")}
#: What the README says to run in a second terminal; the test's own server runs instead.
LOCAL_MLFLOW = "http://127.0.0.1:5000"


def bash_blocks(readme: str) -> list[str]:
    """The README's ```bash blocks, in order."""
    return re.findall(r"^```bash\n(.*?)^```$", readme, flags=re.MULTILINE | re.DOTALL)


def answers_of(repo: Path) -> dict:
    return yaml.safe_load((repo / ".copier-answers.yml").read_text())


def run(
    args: list[str], *, cwd: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=scaled(timeout), check=False
    )


# --- every variant -------------------------------------------------------------------------


def test_the_readme_walks_every_step_with_commands_that_run_as_written(variant):
    _, _, repo = variant
    readme = (repo / "README.md").read_text()
    script = "\n".join(bash_blocks(readme))
    for command in (
        "pip install -e '.[test]'",
        "pytest",
        "mlflow server",
        "export MLFLOW_TRACKING_URI=",
        "train",
        "evaluate",
        "promote 1",
        "publish --to ",
        "export TRAINING_DATA=",
    ):
        assert command in script, command
    assert "```sh" not in readme, "every command block is a runnable ```bash block"
    assert "{{" not in readme and "<" not in script, "a placeholder the reader must fill in"
    assert "MLFLOW_TRACKING_TOKEN" in readme.split("## What CI does")[1]


def test_the_clouds_object_store_is_read_with_a_dependency_the_image_installs(variant):
    _, answers, repo = variant
    scheme, package = OBJECT_STORES[answers["cloud"]]
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=!~ \[]", dep, maxsplit=1)[0] for dep in project["dependencies"]}
    assert package in names
    # `publish` needs no extra: one `pip install -e '.[test]'` runs every documented command.
    assert project["optional-dependencies"].get("publish", []) == []
    others = {p for _, p in OBJECT_STORES.values()} - {package}
    assert not names & others
    data = re.search(r"^export TRAINING_DATA=(\S+)$", (repo / "README.md").read_text(), re.M)
    assert data and data.group(1).startswith(scheme), data
    # The image installs the project with its dependencies, and no credentials.
    dockerfile = (repo / "Dockerfile").read_text()
    assert re.search(r"pip install .*\s\.$", dockerfile, flags=re.MULTILINE), dockerfile
    for secret in (
        "AWS_ACCESS_KEY",
        "AWS_SECRET",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "AZURE_CLIENT_SECRET",
    ):
        assert secret not in dockerfile


# --- one variant, for real -----------------------------------------------------------------


class S3:
    """moto's S3-compatible server, in a virtualenv of its own.

    No real S3 runs here: moto answers the S3 API on a local port, and the generated code
    reaches it through the standard `AWS_ENDPOINT_URL`, exactly as it would reach AWS. moto
    cannot join Trellis's own environment (its botocore needs python-dateutil 2, Trellis's
    Kubernetes client 3), so uv builds one for it.
    """

    def __init__(self, folder: Path) -> None:
        venv = folder / "moto"
        env = fresh_env()
        for args in (
            [uv(), "venv", "--quiet", "--python", sys.executable, str(venv)],
            [
                uv(),
                "pip",
                "install",
                "--quiet",
                "--python",
                str(venv / "bin" / "python"),
                "moto[server]>=5",
            ],
        ):
            done = run(args, cwd=folder, env=env, timeout=300)
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        self.url = f"http://127.0.0.1:{free_port()}"
        self.process = start_process(
            [
                str(venv / "bin" / "moto_server"),
                "-H",
                "127.0.0.1",
                "-p",
                self.url.rsplit(":", 1)[1],
            ],
            log=folder / "moto.log",
            env={},
        )
        wait_http(
            self.process,
            f"{self.url}/moto-api/",
            timeout=60,
            what="moto's S3 server",
            ok=lambda response: response.status_code < 500,
        )

    def put(self, location: str, body: bytes) -> None:
        """Create the bucket of an `s3://bucket/key` location and store `body` at the key."""
        bucket, _, key = location.removeprefix("s3://").partition("/")
        with httpx.Client(base_url=self.url, timeout=scaled(30)) as http:
            http.put(f"/{bucket}").raise_for_status()
            http.put(f"/{bucket}/{key}", content=body).raise_for_status()

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture
def s3(tmp_path: Path):
    server = S3(tmp_path)
    yield server
    server.stop()


@pytest.mark.backstage
@pytest.mark.mlflow
@pytest.mark.tools
def test_a_newcomer_following_the_readme_publishes_a_model_that_passes_its_scorecard(tmp_path, s3):
    answers = VARIANTS[WALKED_VARIANT]
    repo = render(answers, tmp_path / "repo")
    recorded = answers_of(repo)
    slug = recorded["project_slug"]
    readme = (repo / "README.md").read_text()
    published = tmp_path / "published"

    # The data in the bucket the README trains on: the bundled sample, uploaded.
    data = re.search(r"^export TRAINING_DATA=(\S+)$", readme, flags=re.MULTILINE).group(1)
    sample = repo / "src" / slug.replace("-", "_") / "sample_data" / "sample.csv"
    s3.put(data, sample.read_bytes())

    commit = "c0ffee" * 6 + "c0ff"
    with mlflow_server(tmp_path / "registry" / "mlflow.db") as server:
        script = readme_script(readme, mlflow_url=server.url, published=published, slug=slug)
        env = fresh_env(
            UV=uv(),
            GIT_COMMIT=commit,
            # What `aws sso login` and the like give a user; here they lead to moto.
            AWS_ENDPOINT_URL=s3.url,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION=answers["hub_region"],
        )
        walked = run(["bash", "-c", script], cwd=repo, env=env, timeout=900)
        assert walked.returncode == 0, walked.stdout[-6000:] + walked.stderr[-6000:]
        assert re.search(r"\b\d+ passed\b", walked.stdout), walked.stdout[-3000:]
        assert "new `champion`" in walked.stdout, walked.stdout[-3000:]
        assert [p.name for p in published.rglob("MLmodel")] == ["MLmodel"]

        client = _assert_registry(server.url, slug, commit, answers, repo, tmp_path)
        # The README's last step trained version 2 from the bucket.
        assert client.get_model_version_by_alias(slug, "candidate").version == "2"
        assert data in client.get_model_version(slug, "2").description

        with httpx.Client(base_url=server.url, timeout=scaled(30)) as http:
            registry = RestRegistry(http, label=server.url)
            snapshot = registry.read()
            (model,) = snapshot.models
            details = registry.version_details([model.champion])
    document = build_document(snapshot, CatalogOptions(mlflow_ui_url=server.url))
    resource = _assert_catalog(document, slug, answers, repo)
    _assert_scorecard(resource, registry_facts(model, details[(slug, 1)], datetime.now(UTC)))

    # Outside the cluster without MLFLOW_TRACKING_URI, or with a server that is down, the
    # commands stop at once (within the timeout, not after minutes of retries) with one line.
    train = str(repo / ".venv" / "bin" / "train")
    unset = run([train], cwd=repo, env=fresh_env(), timeout=60)
    assert unset.returncode == 2, unset.stderr
    (line,) = unset.stderr.strip().splitlines()
    assert "MLFLOW_TRACKING_URI is not set" in line and "export MLFLOW_TRACKING_URI=" in line
    down = f"http://127.0.0.1:{free_port()}"
    stopped = run([train], cwd=repo, env=fresh_env(MLFLOW_TRACKING_URI=down), timeout=60)
    assert stopped.returncode == 3, stopped.stderr
    (line,) = stopped.stderr.strip().splitlines()
    assert f"{down} does not answer" in line


def readme_script(readme: str, *, mlflow_url: str, published: Path, slug: str) -> str:
    """The README's commands as one script, with only what must change here substituted.

    The local MLflow server is the test's (already running, on a free port); `publish`
    writes into the test's folder; uv installs what pip would (it resolves the same index,
    in seconds), so the virtualenv needs no pip of its own.
    """
    lines = ["set -eo pipefail"]
    for block in bash_blocks(readme):
        for line in block.splitlines():
            if line.startswith("mlflow server "):
                continue
            line = line.replace(LOCAL_MLFLOW, mlflow_url)
            line = line.replace(f"/tmp/{slug}-model", str(published))
            line = line.replace("python3 -m venv ", "python3 -m venv --without-pip ")
            line = re.sub(r"^pip install ", '"$UV" pip install --quiet ', line)
            lines.append(line)
    return "\n".join(lines) + "\n"


def _assert_registry(url: str, slug: str, commit: str, answers: dict, repo: Path, tmp_path: Path):
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts
    from mlflow.models import Model

    client = MlflowClient(tracking_uri=url, registry_uri=url)
    model = client.get_registered_model(slug)
    recorded = answers_of(repo)
    blueprint_version = str(recorded["_commit"])
    source_repo = f"https://github.com/{recorded['repository']}"
    assert model.tags == {
        ModelTags.OWNER: answers["owner"],
        ModelTags.SYSTEM: answers["system"],
        ModelTags.DATA_CLASSIFICATION: answers["data_classification"],
        ModelTags.TRAINING_REGION: answers["hub_region"],
        ModelTags.SOURCE_REPO: source_repo,
        ModelTags.MODEL_CARD: f"{source_repo}/blob/main/docs/model-card.md",
        ModelTags.BLUEPRINT: "ml-model",
        ModelTags.BLUEPRINT_VERSION: blueprint_version,
        ModelTags.FRAMEWORK: "sklearn",
        ModelTags.TASK: "classification",
        ModelTags.TAGS: "kserve-mlserver",
    }
    assert (repo / "docs" / "model-card.md").is_file()
    assert model.description == recorded["description"]

    champion = client.get_model_version_by_alias(slug, ModelTags.CHAMPION)
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
    folder = Path(
        download_artifacts(
            artifact_uri=client.get_model_version_download_uri(slug, champion.version),
            dst_path=str(tmp_path / "model"),
            tracking_uri=url,
        )
    )
    logged = Model.load(str(folder))
    assert logged.signature is not None
    assert [spec.name for spec in logged.signature.inputs.inputs][:2] == [
        "feature_01",
        "feature_02",
    ]
    assert "sklearn" in logged.flavors
    # What the model server installs: the model's needs, not the test tools of training.
    pins = (folder / "requirements.txt").read_text().split()
    assert any(p.startswith("scikit-learn==") for p in pins), pins
    assert not [p for p in pins if p.startswith(("pytest", "ruff"))], pins
    return client


def _assert_catalog(document, slug: str, answers: dict, repo: Path) -> dict:
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
    return resource


def _assert_scorecard(resource: dict, facts: dict) -> None:
    """Every Model readiness check passes: they all read the registry, no live server."""
    (scorecard,) = [s for s in load_scorecards(default_scorecards()) if s.name == "ml-model"]
    assert {check.fact_ids for check in scorecard.checks} == {(REGISTRY.id,)}
    outcomes = run_checks([scorecard], resource, {REGISTRY.id: facts})
    assert {o.check_id for o in outcomes} == {check.id for check in scorecard.checks}
    failing = {o.check_id: (o.outcome, o.reasons) for o in outcomes if o.outcome != Outcome.PASSED}
    assert failing == {}, facts
