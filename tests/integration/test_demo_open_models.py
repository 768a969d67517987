"""The demo's open model and adapters are what they claim: loadable by transformers and PEFT.

They are registered into an embedded (SQLite) MLflow registry, as ``trellis demo`` does,
downloaded back through ``models:/`` URIs and loaded by the libraries that serve such models.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from trellis.demo_open_models import ADAPTERS, BASE, register_open_models
from trellis.model import ModelTags


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("demo", artifact_location=(tmp_path / "a").as_uri())
    names = register_open_models(client, experiment)
    assert names == [BASE, *(a.name for a in ADAPTERS)]
    # A second call registers nothing twice.
    assert register_open_models(client, experiment) == []
    return client


def champion_folder(client, name: str, into: Path) -> Path:
    """Download the champion version's files, resolved through this client alone."""
    from mlflow.artifacts import download_artifacts

    version = client.get_model_version_by_alias(name, ModelTags.CHAMPION).version
    source = client.get_model_version_download_uri(name, version)
    return Path(download_artifacts(artifact_uri=source, dst_path=str(into)))


def test_the_base_model_loads_and_its_checksum_is_the_weights(registry, tmp_path):
    from transformers import AutoModelForCausalLM

    client = registry
    version = client.get_model_version_by_alias(BASE, ModelTags.CHAMPION)
    folder = champion_folder(client, BASE, tmp_path / "b")
    weights = (folder / "model.safetensors").read_bytes()
    assert version.tags[ModelTags.SHA256] == hashlib.sha256(weights).hexdigest()
    assert version.tags[ModelTags.SIZE_BYTES] == str(len(weights))
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert model.config.model_type == "gpt2"


# PEFT still reads transformers' deprecated `is_gradient_checkpointing`.
@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")
def test_each_adapter_loads_on_the_base_model_and_changes_its_answers(registry, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    client = registry
    base_dir = champion_folder(client, BASE, tmp_path / "b")
    tokens = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        plain = AutoModelForCausalLM.from_pretrained(base_dir)(tokens).logits
    for adapter in ADAPTERS:
        folder = champion_folder(client, adapter.name, tmp_path / adapter.name)
        tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), folder)
        with torch.no_grad():
            logits = tuned(tokens).logits
        assert logits.shape == plain.shape
        assert not torch.allclose(logits, plain), f"{adapter.name} changes nothing"
        # Only the adapter is stored: no training row is among its files.
        stored = b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())
        for row in adapter.rows:
            assert row.encode() not in stored, (adapter.name, row)
