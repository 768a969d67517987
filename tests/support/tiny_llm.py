"""A tiny causal language model and a LoRA adapter for it, built here: no download.

The tokenizer is a byte-level BPE trained by the ``tokenizers`` library on a few sentences;
the model is a two-layer Llama with random weights. The adapter's LoRA matrices are random
too (PEFT would start them at zero, which changes nothing), so the adapter answers
differently from the base model.
"""

from __future__ import annotations

import warnings
from pathlib import Path

CORPUS = [
    "The capital of France is Paris.",
    "Regional models are fine-tuned where their data lives.",
    "Hello, how can I help you today?",
    "Large language models answer questions one token at a time.",
] * 20


def build_tiny_model(folder: Path, *, seed: int = 0) -> Path:
    """Save a tokenizer and a randomly initialised two-layer Llama into ``folder``."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        CORPUS, vocab_size=300, min_frequency=1, special_tokens=["<s>", "</s>", "<pad>"]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
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
