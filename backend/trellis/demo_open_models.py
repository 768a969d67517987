"""``trellis demo``'s open model and its regional adapters: hub-to-region lineage to look at.

A tiny GPT-2 (one layer, random weights written from its config: nothing is downloaded)
stands in for an open model imported into the private registry, and two LoRA adapters of it
for regional fine-tunes. Their files have the layout ``save_pretrained`` writes (the model's
``config.json`` and ``model.safetensors``; each adapter's ``adapter_config.json`` and
``adapter_model.safetensors``), so transformers and PEFT can load them, and they are
registered with the tags the `llm-service` import and `edge-finetune` jobs write. The
adapters' training rows only go into their fingerprint: they never reach the registry.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trellis.model import ModelKind, ModelTags

__all__ = ["ADAPTERS", "BASE", "DemoAdapter", "register_open_models"]

BASE = "tiny-gpt2"
_UPSTREAM = "hf://trellis-demo/tiny-gpt2"
#: The demo's stand-in for the upstream commit an import pins.
_REVISION = hashlib.sha1(b"trellis-demo/tiny-gpt2", usedforsecurity=False).hexdigest()
_VOCAB, _POSITIONS, _EMBD = 256, 64, 16
_CONFIG = {
    "architectures": ["GPT2LMHeadModel"],
    "model_type": "gpt2",
    "vocab_size": _VOCAB,
    "n_positions": _POSITIONS,
    "n_embd": _EMBD,
    "n_layer": 1,
    "n_head": 2,
    "bos_token_id": 0,
    "eos_token_id": 0,
}
_OWNER = "group:default/llm-platform"
_REPO = "https://github.com/acme/tiny-gpt2-service"


@dataclass(frozen=True)
class DemoAdapter:
    """One regional adapter: where its data lives, how it is classified, its gate verdicts."""

    name: str
    region: str
    classification: str
    #: The evaluation gate's verdict on each version, in order; `champion` is the last pass.
    gates: tuple[str, ...]
    rows: tuple[str, ...]


ADAPTERS: tuple[DemoAdapter, ...] = (
    DemoAdapter(
        name=f"{BASE}-eu-west-1",
        region="eu-west-1",
        classification="restricted",
        gates=("passed",),
        rows=("Wie kündige ich meinen Vertrag?", "Où est ma facture ?"),
    ),
    DemoAdapter(
        name=f"{BASE}-ap-southeast-1",
        region="ap-southeast-1",
        classification="confidential",
        gates=("passed", "failed"),
        rows=("How do I reset my PIN?", "Bagaimana cara membayar tagihan?"),
    ),
)


def register_open_models(client: Any, experiment_id: str) -> list[str]:
    """Register the base model and its adapters that are not yet there; their names."""
    import numpy as np

    existing = {m.name for m in client.search_registered_models(max_results=1000)}
    generator = np.random.default_rng(7)
    done = []
    with tempfile.TemporaryDirectory(prefix="trellis-demo-") as scratch:
        folder = Path(scratch)
        if BASE not in existing:
            _register_base(client, experiment_id, folder / "model", generator)
            done.append(BASE)
        for adapter in ADAPTERS:
            if adapter.name not in existing:
                _register_adapter(client, experiment_id, folder / adapter.name, adapter, generator)
                done.append(adapter.name)
    return done


def _register_base(client: Any, experiment_id: str, folder: Path, generator: Any) -> None:
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(_CONFIG, indent=2))
    weights = folder / "model.safetensors"
    _save(weights, _gpt2_weights(generator))
    data = weights.read_bytes()
    version_tags = {
        ModelTags.UPSTREAM: _UPSTREAM,
        ModelTags.UPSTREAM_REVISION: _REVISION,
        ModelTags.LICENSE: "mit",
        ModelTags.SIZE_BYTES: str(len(data)),
        ModelTags.SHA256: hashlib.sha256(data).hexdigest(),
    }
    client.create_registered_model(
        BASE,
        description="A tiny GPT-2 (random weights) standing in for an open model imported "
        "once into the private registry and served with vLLM.",
        tags={
            ModelTags.MODEL_KIND: ModelKind.BASE,
            ModelTags.LICENSE: "mit",
            ModelTags.UPSTREAM: _UPSTREAM,
            ModelTags.UPSTREAM_REVISION: _REVISION,
            ModelTags.FRAMEWORK: "transformers",
            ModelTags.TASK: "text-generation",
            ModelTags.OWNER: _OWNER,
            ModelTags.SYSTEM: "assistants",
            ModelTags.DATA_CLASSIFICATION: "public",
            ModelTags.SOURCE_REPO: _REPO,
            ModelTags.BLUEPRINT: "llm-service",
        },
    )
    version = _log_version(client, experiment_id, BASE, folder, "model", version_tags)
    client.set_registered_model_alias(BASE, ModelTags.CHAMPION, version)


def _register_adapter(
    client: Any, experiment_id: str, folder: Path, adapter: DemoAdapter, generator: Any
) -> None:
    lineage = {
        ModelTags.PARENT_MODEL: BASE,
        ModelTags.DATA_REGION: adapter.region,
        ModelTags.TRAINING_REGION: adapter.region,
        ModelTags.DATA_CLASSIFICATION: adapter.classification,
        ModelTags.METHOD: "lora",
    }
    client.create_registered_model(
        adapter.name,
        description=f"{BASE} fine-tuned with LoRA on support conversations kept in "
        f"{adapter.region}.",
        tags={
            **lineage,
            ModelTags.MODEL_KIND: ModelKind.ADAPTER,
            ModelTags.FRAMEWORK: "transformers",
            ModelTags.TASK: "text-generation",
            ModelTags.OWNER: _OWNER,
            ModelTags.SYSTEM: "assistants",
            ModelTags.SOURCE_REPO: f"https://github.com/acme/{adapter.name}",
            ModelTags.BLUEPRINT: "edge-finetune",
        },
    )
    parent = client.get_model_version_by_alias(BASE, ModelTags.CHAMPION).version
    fingerprint = hashlib.sha256("\n".join(adapter.rows).encode()).hexdigest()
    for index, gate in enumerate(adapter.gates):
        files = folder / str(index)
        files.mkdir(parents=True)
        _write_adapter(files, generator)
        tags = {
            **lineage,
            ModelTags.PARENT_VERSION: str(parent),
            ModelTags.DATASET_FINGERPRINT: fingerprint,
            ModelTags.GATE: gate,
        }
        version = _log_version(client, experiment_id, adapter.name, files, "adapter", tags)
        if gate == "passed":
            client.set_registered_model_alias(adapter.name, ModelTags.CHAMPION, version)


def _log_version(
    client: Any,
    experiment_id: str,
    name: str,
    folder: Path,
    path: str,
    tags: Mapping[str, str],
) -> str:
    """Log ``folder`` as a run's artifacts under ``path`` and register that folder."""
    run = client.create_run(experiment_id, run_name=name)
    client.log_artifacts(run.info.run_id, str(folder), path)
    client.set_terminated(run.info.run_id)
    version = client.create_model_version(
        name, source=f"{run.info.artifact_uri}/{path}", run_id=run.info.run_id, tags=dict(tags)
    )
    return str(version.version)


def _gpt2_weights(generator: Any) -> dict[str, Any]:
    """GPT-2's parameters for ``_CONFIG``, named as ``GPT2LMHeadModel`` saves them."""
    embd = _EMBD

    def normal(*shape: int) -> Any:
        return generator.normal(0.0, 0.02, shape).astype("float32")

    layer = "transformer.h.0"
    return {
        "transformer.wte.weight": normal(_VOCAB, embd),
        "transformer.wpe.weight": normal(_POSITIONS, embd),
        **{f"{layer}.ln_{i}.weight": normal(embd) + 1.0 for i in (1, 2)},
        **{f"{layer}.ln_{i}.bias": normal(embd) for i in (1, 2)},
        f"{layer}.attn.c_attn.weight": normal(embd, 3 * embd),
        f"{layer}.attn.c_attn.bias": normal(3 * embd),
        f"{layer}.attn.c_proj.weight": normal(embd, embd),
        f"{layer}.attn.c_proj.bias": normal(embd),
        f"{layer}.mlp.c_fc.weight": normal(embd, 4 * embd),
        f"{layer}.mlp.c_fc.bias": normal(4 * embd),
        f"{layer}.mlp.c_proj.weight": normal(4 * embd, embd),
        f"{layer}.mlp.c_proj.bias": normal(embd),
        "transformer.ln_f.weight": normal(embd) + 1.0,
        "transformer.ln_f.bias": normal(embd),
    }


def _write_adapter(folder: Path, generator: Any) -> None:
    """A LoRA adapter of rank 4 on the attention projection, as PEFT saves one."""
    rank, embd = 4, _EMBD
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": BASE,
        "r": rank,
        "lora_alpha": 8,
        "lora_dropout": 0.0,
        "target_modules": ["c_attn"],
        "fan_in_fan_out": True,
        "bias": "none",
    }
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=2))
    prefix = "base_model.model.transformer.h.0.attn.c_attn"
    _save(
        folder / "adapter_model.safetensors",
        {
            f"{prefix}.lora_A.weight": generator.normal(0.0, 0.02, (rank, embd)).astype("float32"),
            f"{prefix}.lora_B.weight": generator.normal(0.0, 0.02, (3 * embd, rank)).astype(
                "float32"
            ),
        },
    )


def _save(path: Path, tensors: Mapping[str, Any]) -> None:
    """Write ``tensors`` in the safetensors format, as ``save_pretrained`` does for PyTorch."""
    from safetensors.numpy import save_file

    save_file(dict(tensors), str(path), metadata={"format": "pt"})
