"""A tiny open model and a LoRA adapter for it, built offline, and registered as imported.

The model is a two-layer Llama-style causal LM with random weights and a byte-level BPE
tokenizer trained on the given texts (no download). The adapter's LoRA matrices are random
too (PEFT would start them at zero, which changes nothing), so it answers differently from
the base model. The model is registered the way Trellis's contract describes an imported open
model: a Hugging Face ``save_pretrained`` folder logged under ``model/`` of a run, the
version's source that folder, and the base-model tags.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from trellis.model import ModelTags

EOS = "<|endoftext|>"
UPSTREAM = "hf://trellis-tests/tiny-llama"
UPSTREAM_REVISION = "0123456789abcdef0123456789abcdef01234567"
#: Texts for the tokenizer when the caller has none of its own.
CORPUS = (
    "The capital of France is Paris.",
    "Regional models are fine-tuned where their data lives.",
    "Hello, how can I help you today?",
    "Large language models answer questions one token at a time.",
) * 20


def tiny_causal_lm(
    folder: Path, texts: Iterable[str] = CORPUS, *, seed: int = 0, heads: int = 4
) -> Path:
    """Save a tiny random Llama-style model and its tokenizer into ``folder``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(list(texts), trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOS, pad_token=EOS)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=heads,
        num_key_value_heads=2,
        max_position_embeddings=256,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_lora_adapter(base: Path, folder: Path, *, seed: int = 1) -> Path:
    """Save a PEFT LoRA adapter with random (non-zero) weights for the model at ``base``."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base)
    config = LoraConfig(
        r=4,
        lora_alpha=16,
        target_modules=["q_proj", "v_proj", "o_proj"],
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings():
        # PEFT still reads transformers' deprecated `is_gradient_checkpointing`.
        warnings.filterwarnings(
            "ignore", "`is_gradient_checkpointing` is deprecated", FutureWarning
        )
        get_peft_model(model, config).save_pretrained(folder)
    return folder


def folder_digest(folder: Path) -> tuple[int, str]:
    """(size in bytes, SHA-256 over the files' relative paths and contents) of a model folder."""
    digest, size = hashlib.sha256(), 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        size += len(data)
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + data)
    return size, digest.hexdigest()


def register_base_model(client: Any, name: str, folder: Path, *, alias: str) -> str:
    """Log ``folder`` under ``model/`` of a run, register it as a base model, set ``alias``."""
    size, sha256 = folder_digest(folder)
    experiment = client.create_experiment(f"import-{name}")
    run = client.create_run(experiment)
    client.log_artifacts(run.info.run_id, str(folder), artifact_path="model")
    client.set_terminated(run.info.run_id)
    provenance = {
        ModelTags.UPSTREAM: UPSTREAM,
        ModelTags.UPSTREAM_REVISION: UPSTREAM_REVISION,
        ModelTags.LICENSE: "apache-2.0",
    }
    client.create_registered_model(
        name,
        tags={
            ModelTags.MODEL_KIND: "base",
            ModelTags.FRAMEWORK: "transformers",
            ModelTags.TASK: "text-generation",
            ModelTags.OWNER: "group:default/ml-platform",
            **provenance,
        },
    )
    version = client.create_model_version(
        name,
        source=f"{run.info.artifact_uri}/model",
        run_id=run.info.run_id,
        tags={
            **provenance,
            ModelTags.SIZE_BYTES: str(size),
            ModelTags.SHA256: sha256,
        },
    )
    client.set_registered_model_alias(name, alias, version.version)
    return str(version.version)
