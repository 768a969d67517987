"""The parameters of a run (params.yaml), read once into typed values."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


def default_file() -> Path:
    """params.yaml of the source tree, else of the working directory (the image's /app)."""
    source_tree = Path(__file__).resolve().parents[2] / "params.yaml"
    return source_tree if source_tree.is_file() else Path("params.yaml")


@dataclass(frozen=True)
class Params:
    """Data split, tuning and gate settings; every run logs them to MLflow."""

    holdout_fraction: float
    max_length: int
    seed: int
    method: str
    max_steps: int
    batch_size: int
    learning_rate: float
    lora_rank: int
    lora_alpha: int
    lora_dropout: float
    target_modules: str | list[str]
    min_loss_improvement: float
    max_perplexity: float

    def flat(self) -> dict[str, Any]:
        """Every parameter by name, as MLflow logs them."""
        return dict(self.__dict__)


def load(path: str | Path | None = None, **overrides: Any) -> Params:
    """Read params.yaml (or PARAMS_FILE), then apply ``overrides`` by field name."""
    source = Path(path or os.environ.get("PARAMS_FILE") or default_file())
    raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    data, tune, lora, gate = raw["data"], raw["tuning"], raw["lora"], raw["gate"]
    values: dict[str, Any] = {
        "holdout_fraction": float(data["holdout_fraction"]),
        "max_length": int(data["max_length"]),
        "seed": int(data["seed"]),
        "method": str(tune["method"]),
        "max_steps": int(tune["max_steps"]),
        "batch_size": int(tune["batch_size"]),
        "learning_rate": float(tune["learning_rate"]),
        "lora_rank": int(lora["rank"]),
        "lora_alpha": int(lora["alpha"]),
        "lora_dropout": float(lora["dropout"]),
        "target_modules": lora["target_modules"],
        "min_loss_improvement": float(gate["min_loss_improvement"]),
        "max_perplexity": float(gate["max_perplexity"]),
    }
    unknown = set(overrides) - set(values)
    if unknown:
        raise ValueError(f"unknown parameters: {sorted(unknown)}")
    values.update(overrides)
    if values["method"] not in {"lora", "qlora", "full"}:
        raise ValueError(f"method must be lora, qlora or full, not {values['method']!r}")
    if not 0 < values["holdout_fraction"] < 1:
        raise ValueError("holdout_fraction must be between 0 and 1")
    return Params(**values)
