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

import json
from pathlib import Path
from typing import Any

import pytest

from support.edge_finetune import answers_of, finetune, fingerprint, rows_of, texts_of, write_params
from support.open_models import register_base_model, tiny_causal_lm
from support.requirements import assert_requirements_met
from support.services import mlflow_server
from trellis.model import ModelTags

pytestmark = pytest.mark.mlflow

Variant = tuple[str, dict[str, Any], Path]


@pytest.mark.parametrize("finetune_variant", ["lora-github-aws"], indirect=True)
def test_the_adapter_is_registered_with_its_lineage_gated_and_without_the_data(
    finetune_variant: Variant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, answers, repo = finetune_variant
    assert_requirements_met(repo, ("test",))
    recorded = answers_of(repo)
    hub, adapter, region = answers["hub_model"], recorded["adapter_name"], answers["data_region"]
    rows = rows_of(repo)
    texts = texts_of(rows)
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
