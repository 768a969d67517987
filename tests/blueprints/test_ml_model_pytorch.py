"""ml-model's PyTorch variant for real: installed on the CPU, tested, trained, laid out for Triton.

The Triton variant is installed into a fresh virtualenv with the CPU build of torch (a CUDA
build is several GB), runs its own tests, and trains and promotes its model through a real
MLflow server. The Triton model repository that its `publish` lays out is then read as Triton
reads it (``support/triton_probe.py``, run by the project's own Python): `config.pbtxt` parsed
as Triton's ModelConfig and matched to the ONNX graph, dynamic batching set, and onnxruntime
predicting what the PyTorch model predicts.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from mlflow import MlflowClient

from support.blueprints import VARIANTS, Renders, render
from support.fresh_env import fresh_env
from support.services import mlflow_server
from support.timing import scaled
from support.tools import uv

pytestmark = [pytest.mark.mlflow, pytest.mark.tools]

VARIANT = "pytorch-gpu-gitlab-gcp"
PROBE = Path(__file__).resolve().parents[1] / "support" / "triton_probe.py"
#: The CPU build of torch that the fresh virtualenv gets, from a folder of wheels on disk.
TORCH = "2.13.0"
WHEELS = Path("/opt/wheels")
#: What the probe needs besides the project (Trellis's own virtualenv has protobuf 7, which
#: tritonclient's gRPC extra refuses, so the project's virtualenv holds them).
PROBE_REQUIREMENTS = ("onnxruntime>=1.20", "tritonclient[grpc]>=2.50")
#: ONNX's name of the element type of each Triton data type.
ONNX_TYPES = {"TYPE_FP32": "FLOAT", "TYPE_FP16": "FLOAT16", "TYPE_INT64": "INT64"}
COMMIT = "feed" * 10


def torch_wheel() -> Path:
    """The CPU wheel of torch for this Python; fail saying how to get it."""
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    found = sorted(WHEELS.glob(f"torch-{TORCH}+cpu-{tag}-{tag}-*.whl"))
    if not found:
        raise AssertionError(
            f"the CPU build of torch {TORCH} for {tag} is missing from {WHEELS} (a CUDA build "
            f"from PyPI is several GB): pip download 'torch=={TORCH}+cpu' --no-deps "
            f"--index-url https://download.pytorch.org/whl/cpu -d {WHEELS}"
        )
    return found[0]


def run(
    args: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=scaled(timeout), check=False
    )
    assert result.returncode == 0, f"{args}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.fixture(scope="module")
def lifecycle(renders: Renders, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """One install, test run, training, evaluation and probe of the PyTorch variant."""
    _, answers, rendered = renders.get("ml-model", VARIANT)
    folder = tmp_path_factory.mktemp("pytorch")
    repo = Path(shutil.copytree(rendered, folder / "repo"))  # the shared render stays clean
    package = answers_of(repo)["project_slug"].replace("-", "_")

    venv = folder / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=folder, env=fresh_env())
    python = str(venv / "bin" / "python")
    # The wheel itself is a requirement, so nothing can bring a CUDA build of torch instead.
    install = [uv(), "pip", "install", "--quiet", "--python", python, str(torch_wheel())]
    run([*install, "-e", f"{repo}[test]", *PROBE_REQUIREMENTS], cwd=folder, env=fresh_env())

    tested = run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=repo,
        env=fresh_env(),
        timeout=900,
    )
    with mlflow_server(folder / "registry" / "mlflow.db") as server:
        env = fresh_env(MLFLOW_TRACKING_URI=server.url, GIT_COMMIT=COMMIT)
        trained = run([python, "-m", f"{package}.train"], cwd=repo, env=env)
        evaluated = run([python, "-m", f"{package}.evaluate"], cwd=repo, env=env)
        probed = run([python, str(PROBE), package, str(folder / "probe")], cwd=folder, env=env)
        client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
        champion = client.get_model_version_by_alias(answers_of(repo)["project_slug"], "champion")
        run_data = client.get_run(champion.run_id).data
    return SimpleNamespace(
        answers=answers,
        repo=repo,
        venv=venv,
        tested=tested.stdout,
        trained=trained.stdout,
        evaluated=evaluated.stdout,
        champion=champion,
        run_data=run_data,
        downloaded=folder / "probe" / "download",
        report=json.loads(probed.stdout),
    )


def answers_of(repo: Path) -> dict:
    return yaml.safe_load((repo / ".copier-answers.yml").read_text())


def test_the_fresh_virtualenv_has_the_cpu_build_of_torch_and_no_cuda(lifecycle):
    site = next((lifecycle.venv / "lib").glob("python3.*/site-packages"))
    assert (site / f"torch-{TORCH}+cpu.dist-info").is_dir()
    assert not list(site.glob("nvidia*")), "a CUDA build of torch came with the install"


def test_the_projects_own_tests_pass_on_the_cpu(lifecycle):
    summary = lifecycle.tested.strip().splitlines()[-1]
    assert re.search(r"\b\d+ passed\b", summary), lifecycle.tested[-2000:]
    assert not re.search(r"failed|error|skipped", summary), summary


def test_the_model_trains_and_is_promoted_through_a_real_mlflow_server(lifecycle):
    slug = answers_of(lifecycle.repo)["project_slug"]
    assert f"registered {slug} version 1 as `candidate`" in lifecycle.trained
    assert f"{slug} version 1 is the new `champion`" in lifecycle.evaluated
    champion = lifecycle.champion
    assert champion.version == "1"
    assert champion.tags["validation_status"] == "passed"
    assert champion.tags["git_commit"] == COMMIT
    assert float(champion.tags["holdout_r2"]) >= 0.7  # the sample data is learnable
    assert {"rmse", "mae", "r2"} <= set(lifecycle.run_data.metrics)
    assert lifecycle.run_data.params["framework"] == "pytorch"
    logged = yaml.safe_load((lifecycle.downloaded / "MLmodel").read_text())
    assert {"pytorch", "python_function"} <= set(logged["flavors"])
    # The model server installs the torch release that trained the model, not its CPU build.
    pins = (lifecycle.downloaded / "requirements.txt").read_text().split()
    assert f"torch=={TORCH}" in pins


def test_publish_lays_out_a_triton_model_repository(lifecycle):
    slug = answers_of(lifecycle.repo)["project_slug"]
    report = lifecycle.report
    assert report["files"] == [f"{slug}/1/model.onnx", f"{slug}/config.pbtxt"]
    # Triton requires the configuration's name to be the model's folder.
    assert report["config"]["name"] == slug
    assert report["config"]["backend"] == "onnxruntime"


def test_the_triton_configuration_matches_the_onnx_graph(lifecycle):
    config, graph = lifecycle.report["config"], lifecycle.report["onnx"]
    max_batch_size = config["max_batch_size"]
    assert max_batch_size > 0
    for side, tensors in (("input", graph["inputs"]), ("output", graph["outputs"])):
        declared = config[side]
        assert [t["name"] for t in declared] == [t["name"] for t in tensors]
        for spec, tensor in zip(declared, tensors, strict=True):
            assert ONNX_TYPES[spec["data_type"]] == tensor["data_type"], (side, spec, tensor)
            # With batching, Triton adds the batch dimension: the ONNX graph's first dimension
            # is free, and the configuration lists only the ones after it.
            batch, *rest = tensor["dims"]
            assert isinstance(batch, str), f"the ONNX {side} has a fixed batch size {batch}"
            assert [int(d) for d in spec["dims"]] == rest, (side, spec, tensor)
    features = [name for name in lifecycle.run_data.params["features"].split(",") if name]
    assert config["input"][0]["dims"] == [str(len(features))]


def test_triton_batches_requests_dynamically_on_the_gpu(lifecycle):
    config = lifecycle.report["config"]
    batching = config["dynamic_batching"]
    preferred = batching["preferred_batch_size"]
    assert preferred == sorted(preferred) and preferred
    assert all(0 < size <= config["max_batch_size"] for size in preferred)
    # A short wait: latency is traded for throughput by a fraction of a millisecond.
    assert 0 < int(batching["max_queue_delay_microseconds"]) <= 1000
    assert lifecycle.answers["use_gpu"]
    assert [group["kind"] for group in config["instance_group"]] == ["KIND_GPU"]


def test_onnxruntime_predicts_what_the_pytorch_model_does(lifecycle):
    report = lifecycle.report
    pytorch = np.asarray(report["pytorch"], dtype=np.float32)
    exported = np.asarray(report["onnxruntime"], dtype=np.float32)
    assert exported.shape == pytorch.shape and len(pytorch) > 1
    np.testing.assert_allclose(exported, pytorch, rtol=1e-4, atol=1e-4)
    # One row is a batch too: the batch size is not fixed at the export's example.
    np.testing.assert_allclose(report["onnxruntime_one_row"], pytorch[:1], rtol=1e-4, atol=1e-4)


def test_a_triton_model_without_gpus_runs_on_cpu_instances(tmp_path):
    repo = render({**VARIANTS[VARIANT], "use_gpu": False}, tmp_path / "repo")
    package = answers_of(repo)["project_slug"].replace("-", "_")
    source = (repo / "src" / package / "model.py").read_text()
    assert "kind: KIND_CPU" in source and "KIND_GPU" not in source
