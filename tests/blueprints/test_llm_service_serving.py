"""Real serving on this CPU: the generated dev server, its smoke test and its client.

A tiny causal LM (random weights, tokenizer trained here) and a random LoRA adapter for it are
built, then the generated repository's `dev_server` (LitServe's OpenAI spec) serves both as a
real process on 127.0.0.1. The generated smoke test runs against it, and the generated client
asks the base model and the adapter by name, whole and streamed.

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

from support.requirements import assert_requirements_met
from support.services import free_port, start_process, wait_http
from support.timing import scaled
from support.tiny_llm import build_lora_adapter, build_tiny_model

pytestmark = pytest.mark.slow
VARIANT = "kserve-github-aws"
Variant = tuple[str, dict[str, Any], Path]


@pytest.fixture(scope="module")
def served(llm_variant: Variant, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The dev server of the rendered repository, serving a tiny base model and one adapter."""
    _, _, repo = llm_variant
    assert_requirements_met(repo, ("test", "dev-server"))
    answers = yaml.safe_load((repo / ".copier-answers.yml").read_text())
    (adapter,) = answers["lora_adapters"]
    work = tmp_path_factory.mktemp("tiny-llm")
    base = build_tiny_model(work / "base")
    build_lora_adapter(base, work / "adapter")
    package = answers["service_slug"].replace("-", "_")
    port = free_port()
    env = {"PYTHONPATH": str(repo / "src"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    process = start_process(
        [
            sys.executable, "-m", f"{package}.dev_server",
            "--model-dir", str(base), "--adapter", f"{adapter}={work / 'adapter'}",
            "--host", "127.0.0.1", "--port", str(port),
        ],
        log=work / "dev-server.log",
        env=env,
    )  # fmt: skip
    try:
        wait_http(process, f"http://127.0.0.1:{port}/health", timeout=60, what="the dev server")
        yield {
            "repo": repo,
            "env": env,
            "base_url": f"http://127.0.0.1:{port}/v1",
            "model": answers["served_model_name"],
            "adapter": adapter,
            "package": package,
        }
    finally:
        process.stop()


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
