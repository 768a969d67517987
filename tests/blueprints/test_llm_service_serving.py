"""Real serving on this CPU: the generated dev server, its smoke test and its client.

A tiny causal LM (random weights, tokenizer trained here) and a random LoRA adapter for it are
built; the generated `import_model` registers the model in a real MLflow server (its hub
download replaced by a copy of the tiny model), the adapter is registered beside it as a
regional fine-tune would be, and both get the `champion` alias. The generated `dev_server`
(LitServe's OpenAI spec) then pulls them from the registry, as the serving init container
does, and serves them as a real process on 127.0.0.1. The generated smoke test runs against
it, and the generated client asks the base model and the adapter by name, whole and streamed.

The generated project needs torch, which a fresh virtualenv would download as a multi-GB CUDA
build: it runs with this suite's interpreter instead, after checking that this environment
meets every requirement the generated ``pyproject.toml`` declares (with its `test` and
`dev-server` extras), failing with the list of what is missing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.llm_service import dev_server, service_env
from support.open_models import build_lora_adapter, tiny_causal_lm
from support.requirements import assert_requirements_met
from support.services import mlflow_server
from support.timing import scaled

pytestmark = pytest.mark.mlflow

VARIANT = "kserve-github-aws"
Variant = tuple[str, dict[str, Any], Path]

#: Run with the generated package: import the tiny model as the hub model (the download is a
#: copy), register the adapter as its own model, and make both champions.
PUBLISH = """
import shutil, sys
from pathlib import Path
import mlflow
from {package} import import_model, project, registry

base, adapter = Path(sys.argv[1]), Path(sys.argv[2])

def download(*, repo_id, revision, local_dir):
    return shutil.copytree(base, local_dir)

version = import_model.import_model(download=download)
client = registry.connect()
client.set_registered_model_alias(project.REGISTERED_MODEL, registry.CHAMPION, version)
(name,) = project.LORA_ADAPTERS
with mlflow.start_run() as run:
    mlflow.log_artifacts(str(adapter), artifact_path="adapter")
client.create_registered_model(name, tags={{"model_kind": "adapter"}})
tuned = client.create_model_version(
    name, source=run.info.artifact_uri + "/adapter", run_id=run.info.run_id
)
client.set_registered_model_alias(name, registry.CHAMPION, tuned.version)
"""


@pytest.fixture(scope="module")
def served(llm_variant: Variant, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The dev server of the rendered repository, serving a tiny base model and one adapter."""
    _, _, repo = llm_variant
    assert_requirements_met(repo, ("test", "dev-server"))
    answers = yaml.safe_load((repo / ".copier-answers.yml").read_text())
    (adapter,) = answers["lora_adapters"]
    work = tmp_path_factory.mktemp("tiny-llm")
    base = tiny_causal_lm(work / "base", heads=2)
    (base / "README.md").write_text(f"---\nlicense: {answers['model_license']}\n---\n")
    adapter_dir = build_lora_adapter(base, work / "adapter")
    package = answers["service_slug"].replace("-", "_")
    with mlflow_server(work / "mlflow.db") as registry:
        env = service_env(repo, registry.url)
        published = subprocess.run(
            [sys.executable, "-c", PUBLISH.format(package=package), str(base), str(adapter_dir)],
            cwd=work, env={**os.environ, **env}, capture_output=True, text=True,
            timeout=scaled(120), check=False,
        )  # fmt: skip
        assert published.returncode == 0, published.stdout + published.stderr[-3000:]
        with dev_server(repo, package, registry.url, work / "dev-server.log") as base_url:
            yield {
                "repo": repo,
                "env": env,
                "registry": registry.url,
                "base_url": base_url,
                "registered": answers["registered_model"],
                "model": answers["served_model_name"],
                "adapter": adapter,
                "package": package,
            }


@pytest.mark.parametrize("llm_variant", [VARIANT], indirect=True)
def test_the_import_registered_the_base_model_with_its_provenance(served):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=served["registry"], registry_uri=served["registry"])
    model = client.get_registered_model(served["registered"])
    assert model.tags["model_kind"] == "base" and model.tags["upstream"].startswith("hf://")
    version = client.get_model_version_by_alias(served["registered"], "champion")
    assert len(version.tags["sha256"]) == 64 and int(version.tags["size_bytes"]) > 0
    files = {f.path.rsplit("/", 1)[-1] for f in client.list_artifacts(version.run_id, "model")}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= files


@pytest.mark.parametrize("llm_variant", [VARIANT], indirect=True)
def test_the_generated_smoke_test_passes_against_the_dev_server(served):
    env = {**os.environ, **served["env"], "OPENAI_BASE_URL": served["base_url"]}
    smoke = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "smoke"]
    result = subprocess.run(
        [*smoke, "tests/smoke"],
        cwd=served["repo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=scaled(180),
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "5 passed" in result.stdout.splitlines()[-1], result.stdout[-500:]


@pytest.mark.parametrize("llm_variant", [VARIANT], indirect=True)
def test_the_client_gets_base_and_adapter_by_name_whole_and_streamed(served, monkeypatch):
    monkeypatch.syspath_prepend(str(served["repo"] / "src"))
    client_module = __import__(f"{served['package']}.client", fromlist=["Client"])
    question = [{"role": "user", "content": "What is the capital of France?"}]
    with client_module.Client(served["base_url"], timeout=scaled(60)) as client:
        base = client.chat(question, model=served["model"], max_tokens=12)
        again = client.chat(question, model=served["model"], max_tokens=12)
        tuned = client.chat(question, model=served["adapter"], max_tokens=12)
        pieces = list(client.stream(question, model=served["adapter"], max_tokens=12))
        timing = client.timed(question, model=served["model"], max_tokens=12)
        with pytest.raises(client_module.ServiceError, match="404"):
            client.chat(question, model="no-such-adapter", max_tokens=4)
    assert base.text.strip() and tuned.text.strip()
    assert base.model == served["model"] and tuned.model == served["adapter"]
    assert again.text == base.text, "greedy decoding answers the same twice"
    assert tuned.text != base.text, "the adapter must change the answer"
    assert len(pieces) > 1 and "".join(pieces) == tuned.text
    assert timing.text == base.text and timing.time_to_first_token is not None
