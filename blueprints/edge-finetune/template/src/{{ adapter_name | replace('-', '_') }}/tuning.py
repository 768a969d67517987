"""Tune a causal language model with PEFT (LoRA, QLoRA) or in full, and score it on texts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed

from .params import Params


@dataclass(frozen=True)
class Score:
    """Mean token loss (nats) on a set of texts, and its perplexity."""

    loss: float
    perplexity: float


def seed_everything(seed: int) -> None:
    """Same data, same parameters, same result: seed Python, NumPy and torch."""
    set_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def load(folder: Path, method: str) -> tuple[Any, Any]:
    """(model, tokenizer) from a Hugging Face folder; QLoRA loads the base in 4 bits."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    options: dict[str, Any] = {}
    if method == "qlora":
        if not torch.cuda.is_available():
            raise RuntimeError("QLoRA loads the base model in 4 bits with bitsandbytes: CUDA only")
        from transformers import BitsAndBytesConfig

        options["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=torch.bfloat16,
            bnb_4bit_use_double_quant=True,
        )
        options["device_map"] = "auto"
    model = AutoModelForCausalLM.from_pretrained(folder, **options)
    return model, tokenizer


def _batches(texts: Sequence[str], size: int) -> list[list[str]]:
    return [list(texts[i : i + size]) for i in range(0, len(texts), size)]


def _encode(tokenizer: Any, texts: Sequence[str], max_length: int, device: Any) -> Any:
    batch = tokenizer(
        list(texts), return_tensors="pt", padding=True, truncation=True, max_length=max_length
    )
    labels = batch["input_ids"].clone()
    labels[batch["attention_mask"] == 0] = -100  # padding is not learnt, nor scored
    batch["labels"] = labels
    return {key: value.to(device) for key, value in batch.items()}


@torch.no_grad()
def score(model: Any, tokenizer: Any, texts: Sequence[str], params: Params) -> Score:
    """Token-weighted mean loss over ``texts`` and its perplexity."""
    model.eval()
    device = next(model.parameters()).device
    total, tokens = 0.0, 0
    for texts_batch in _batches(texts, params.batch_size):
        batch = _encode(tokenizer, texts_batch, params.max_length, device)
        # Each row's loss counts by the tokens it predicts (every token after the first).
        counted = int((batch["labels"][:, 1:] != -100).sum())
        total += float(model(**batch).loss) * counted
        tokens += counted
    loss = total / max(tokens, 1)
    return Score(loss=loss, perplexity=math.exp(min(loss, 50.0)))


def wrap(model: Any, params: Params) -> Any:
    """The model to train: a PEFT LoRA model, or the model itself for full fine-tuning."""
    if params.method == "full":
        return model
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if params.method == "qlora":
        model = prepare_model_for_kbit_training(model)
    config = LoraConfig(
        r=params.lora_rank,
        lora_alpha=params.lora_alpha,
        lora_dropout=params.lora_dropout,
        target_modules=params.target_modules,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def train(model: Any, tokenizer: Any, texts: Sequence[str], params: Params) -> list[float]:
    """``max_steps`` AdamW steps over the texts in a seeded order; the loss of each step."""
    device = next(model.parameters()).device
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=params.learning_rate)
    order = torch.Generator().manual_seed(params.seed)
    losses: list[float] = []
    model.train()
    while len(losses) < params.max_steps:
        shuffled = [texts[i] for i in torch.randperm(len(texts), generator=order).tolist()]
        for texts_batch in _batches(shuffled, params.batch_size):
            if len(losses) == params.max_steps:
                break
            loss = model(**_encode(tokenizer, texts_batch, params.max_length, device)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
    return losses
