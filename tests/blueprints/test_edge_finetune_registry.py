"""A generated edge-finetune repository tunes a real (tiny) model through a real registry.

A tiny Llama-style model with random weights is built offline and registered as the hub model
in a real MLflow server, as an imported open model is. The generated `finetune` entry point
then tunes it with LoRA on the bundled regional sample, twice: once with a gate it can pass
and once with one it cannot. The registry must then hold the adapter's versions with their
lineage, the alias only on the passing one, and no training row in any artifact.

The generated project needs PyTorch: it runs with this environment's interpreter (a fresh
virtualenv would download a multi-gigabyte PyTorch build), after checking that this
environment satisfies every requirement the generated ``pyproject.toml`` declares.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.open_models import register_base_model, tiny_causal_lm
from support.requirements import assert_requirements_met
from support.services import mlflow_server
from support.timing import scaled
from trellis.model import ModelTags

pytestmark = pytest.mark.slow  # a real MLflow server and two fine-tuning runs

Variant = tuple[str, dict[str, Any], Path]
TUNING = {"max_steps": 12, "batch_size": 8, "learning_rate": 0.01}


def package_of(repo: Path) -> str:
    return str(answers_of(repo)["adapter_name"]).replace("-", "_")


def answers_of(repo: Path) -> dict[str, Any]:
    return yaml.safe_load((repo / ".copier-answers.yml").read_text())


def rows_of(repo: Path) -> list[dict[str, Any]]:
    sample = repo / "src" / package_of(repo) / "sample_data" / "regional_sample.jsonl"
    return [json.loads(line) for line in sample.read_text().splitlines() if line.strip()]


def fingerprint(rows: list[dict[str, Any]]) -> str:
    """SHA-256 over the rows, one canonical JSON line each (as the contract defines it)."""
    lines = (json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False) for r in rows)
    return hashlib.sha256("".join(f"{line}\n" for line in lines).encode()).hexdigest()


def write_params(repo: Path, path: Path, min_loss_improvement: float) -> Path:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["tuning"].update(TUNING)
    params["gate"]["min_loss_improvement"] = min_loss_improvement
    path.write_text(yaml.safe_dump(params))
    return path


def finetune(repo: Path, url: str, params: Path) -> subprocess.CompletedProcess[str]:
    """The generated entry point, run as the Job runs it (``python -m <package>.finetune``)."""
    sample = repo / "src" / package_of(repo) / "sample_data" / "regional_sample.jsonl"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
        "PYTHONPATH": str(repo / "src"),
        "MLFLOW_TRACKING_URI": url,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "HF_HUB_OFFLINE": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", f"{package_of(repo)}.finetune", "--data", str(sample),
         "--params", str(params)],
        cwd=repo, env=env, capture_output=True, text=True, timeout=scaled(600), check=False,
    )  # fmt: skip


@pytest.mark.parametrize("finetune_variant", ["lora-github-aws"], indirect=True)
def test_the_adapter_is_registered_with_its_lineage_gated_and_without_the_data(
    finetune_variant: Variant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, answers, repo = finetune_variant
    assert_requirements_met(repo, ("test",))
    recorded = answers_of(repo)
    hub, adapter, region = answers["hub_model"], recorded["adapter_name"], answers["data_region"]
    rows = rows_of(repo)
    texts = [r.get("text") or r["prompt"] + r["completion"] for r in rows]
    base = tiny_causal_lm(tmp_path / "hub", texts)

    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts

    with mlflow_server(tmp_path / "registry" / "mlflow.db") as server:
        client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)  # `models:/` URIs resolve there
        assert register_base_model(client, hub, base, alias="champion") == "1"

        passed = finetune(repo, server.url, write_params(repo, tmp_path / "pass.yaml", 0.0))
        assert passed.returncode == 0, passed.stdout + passed.stderr[-4000:]
        assert f"gate passed: `champion` of {adapter} is now version 1" in passed.stdout
        failed = finetune(repo, server.url, write_params(repo, tmp_path / "fail.yaml", 1000.0))
        assert failed.returncode == 1, failed.stdout + failed.stderr[-4000:]
        assert f"gate failed: `champion` of {adapter} is unchanged" in failed.stdout

        model = client.get_registered_model(adapter)
        assert model.tags == {
            ModelTags.MODEL_KIND: "adapter",
            ModelTags.PARENT_MODEL: hub,
            ModelTags.DATA_REGION: region,
            ModelTags.TRAINING_REGION: region,
            ModelTags.DATA_CLASSIFICATION: answers["classification"],
            ModelTags.METHOD: "lora",
            ModelTags.FRAMEWORK: "transformers",
            ModelTags.TASK: "text-generation",
            ModelTags.OWNER: answers["team"],
            ModelTags.SYSTEM: answers["catalog_system"],
            ModelTags.SOURCE_REPO: f"https://github.com/{recorded['repo_path']}",
            ModelTags.BLUEPRINT: "edge-finetune",
            ModelTags.BLUEPRINT_VERSION: str(recorded["_commit"]),
        }
        assert model.aliases == {ModelTags.CHAMPION: "1"} or dict(model.aliases) == {
            ModelTags.CHAMPION: "1"
        }
        versions = {str(v.version): v for v in client.search_model_versions(f"name='{adapter}'")}
        assert sorted(versions) == ["1", "2"]
        for number, verdict in (("1", "passed"), ("2", "failed")):
            tags = versions[number].tags
            assert {
                k: tags[k]
                for k in (
                    ModelTags.PARENT_MODEL, ModelTags.PARENT_VERSION, ModelTags.DATA_REGION,
                    ModelTags.TRAINING_REGION, ModelTags.DATA_CLASSIFICATION,
                    ModelTags.DATASET_FINGERPRINT, ModelTags.METHOD, ModelTags.GATE,
                )
            } == {
                ModelTags.PARENT_MODEL: hub,
                ModelTags.PARENT_VERSION: "1",
                ModelTags.DATA_REGION: region,
                ModelTags.TRAINING_REGION: region,
                ModelTags.DATA_CLASSIFICATION: answers["classification"],
                ModelTags.DATASET_FINGERPRINT: fingerprint(rows),
                ModelTags.METHOD: "lora",
                ModelTags.GATE: verdict,
            }  # fmt: skip
            assert float(tags["adapter_loss"]) < float(tags["hub_loss"])
        assert client.get_model_version_by_alias(adapter, ModelTags.CHAMPION).version in (1, "1")

        folder = Path(
            download_artifacts(
                artifact_uri=f"models:/{adapter}@champion",
                dst_path=str(tmp_path / "champion"),
                tracking_uri=server.url,
            )
        )
        assert {p.name for p in folder.iterdir()} >= {
            "adapter_config.json",
            "adapter_model.safetensors",
        }
        assert json.loads((folder / "adapter_config.json").read_text())["r"] == answers["lora_rank"]
        adapter_size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        base_size = sum(p.stat().st_size for p in base.rglob("*") if p.is_file())
        print(f"adapter {adapter_size} bytes, base model {base_size} bytes")

        # No artifact of any run, and no run's parameters or tags, holds a training row.
        everything = tmp_path / "everything"
        runs = [
            run
            for experiment in client.search_experiments()
            for run in client.search_runs([experiment.experiment_id])
        ]
        assert len(runs) == 3  # the hub import and the two fine-tunes
        for run in runs:
            (everything / run.info.run_id).mkdir(parents=True)
            client.download_artifacts(run.info.run_id, "", str(everything / run.info.run_id))
            recorded_run = json.dumps([run.data.params, run.data.tags])
            for row in rows:
                assert not any(str(value) in recorded_run for value in row.values())
        files = [p for p in everything.rglob("*") if p.is_file()]
        assert any(p.name == "adapter_model.safetensors" for p in files)
        pieces = {str(value) for row in rows for value in row.values()} | set(texts)
        for path in files:
            content = path.read_bytes()
            leaked = [piece for piece in pieces if piece.encode() in content]
            assert not leaked, f"{path.relative_to(everything)} holds training rows: {leaked[:2]}"
