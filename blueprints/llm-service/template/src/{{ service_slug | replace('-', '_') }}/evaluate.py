"""Evaluate the served model over the bundled prompts and gate its promotion.

Each prompt of `prompts.jsonl` is sent streamed; the answer passes when it mentions one of
the prompt's expected terms. Quality is the share that pass; time to first token (p95) and
tokens per second come from the streams. The metrics are logged to MLflow on the version
judged (alias `candidate` by default); the alias `champion` moves to it only when every
threshold of the gate in `params.yaml` holds, and the version is tagged `gate=passed|failed`.

    OPENAI_BASE_URL=http://host:8080/v1 evaluate [--model NAME] [--version N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from . import project, registry
from .client import Client

DEFAULT_PARAMS = Path("params.yaml")


@dataclass(frozen=True)
class Prompt:
    """One evaluation prompt and the terms a good answer mentions."""

    prompt: str
    expected: tuple[str, ...]


def load_prompts() -> list[Prompt]:
    """The prompt set shipped with the package."""
    text = resources.files(__package__).joinpath("prompts.jsonl").read_text(encoding="utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [Prompt(row["prompt"], tuple(row["expected"])) for row in rows]


def load_params(path: Path | None = None) -> dict:
    """`params.yaml` (or `PARAMS_FILE`): the gate and the generation settings."""
    chosen = path or Path(os.environ.get("PARAMS_FILE") or DEFAULT_PARAMS)
    return yaml.safe_load(chosen.read_text(encoding="utf-8"))


def mentions(answer: str, expected: tuple[str, ...]) -> bool:
    """Whether the answer names one of the expected terms (case does not matter)."""
    lowered = answer.lower()
    return any(term.lower() in lowered for term in expected)


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile of `values` (`share` in 0..1)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def measure(client: Client, model: str, prompts: list[Prompt], max_tokens: int) -> dict[str, float]:
    """Quality, time to first token and tokens per second of `model` over `prompts`."""
    passed, ttfts, rates = 0, [], []
    for item in prompts:
        timing = client.timed(
            [{"role": "user", "content": item.prompt}], model=model, max_tokens=max_tokens
        )
        passed += mentions(timing.text, item.expected)
        if timing.time_to_first_token is not None:
            ttfts.append(timing.time_to_first_token)
        rates.append(timing.tokens_per_second)
    return {
        "quality": passed / len(prompts),
        "ttft_p95_seconds": percentile(ttfts, 0.95) if ttfts else float("inf"),
        "tokens_per_second": sum(rates) / len(rates),
        "prompts": float(len(prompts)),
    }


def judge(metrics: dict[str, float], gate: dict[str, float]) -> list[str]:
    """The thresholds the metrics miss; empty when the gate passes."""
    misses = []
    if metrics["quality"] < gate["min_quality"]:
        misses.append(f"quality {metrics['quality']:.2f} < {gate['min_quality']}")
    if metrics["ttft_p95_seconds"] > gate["max_ttft_p95_seconds"]:
        misses.append(
            f"p95 time to first token {metrics['ttft_p95_seconds']:.3f} s > "
            f"{gate['max_ttft_p95_seconds']} s"
        )
    if metrics["tokens_per_second"] < gate["min_tokens_per_second"]:
        misses.append(
            f"{metrics['tokens_per_second']:.1f} tokens/s < {gate['min_tokens_per_second']}"
        )
    return misses


def record(version: str, metrics: dict[str, float], misses: list[str]) -> bool:
    """Log the metrics on the version, tag its gate verdict, move `champion` if it passed."""
    import mlflow

    client = registry.connect()
    mlflow.set_experiment(project.SERVICE)
    with mlflow.start_run(run_name=f"evaluate-v{version}"):
        mlflow.log_metrics(metrics)
        mlflow.set_tag("gate", "failed" if misses else "passed")
    name = project.REGISTERED_MODEL
    for key, value in metrics.items():
        client.set_model_version_tag(name, version, f"eval_{key}", f"{value:.6g}")
    client.set_model_version_tag(name, version, "gate", "failed" if misses else "passed")
    if misses:
        return False
    client.set_registered_model_alias(name, registry.CHAMPION, version)
    return True


def main(argv: list[str] | None = None) -> int:
    """Entry point of `evaluate`: 0 when promoted, 1 when the gate held it back."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=project.SERVED_MODEL_NAME, help="served model name")
    parser.add_argument("--version", help="registry version judged (default: the candidate)")
    parser.add_argument("--params", type=Path, help="params file (default: params.yaml)")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    version = args.version
    if version is None:
        candidate = registry.version_for_alias(
            registry.connect(), project.REGISTERED_MODEL, registry.CANDIDATE
        )
        if candidate is None:
            print(f"evaluate: {project.REGISTERED_MODEL} has no candidate", file=sys.stderr)
            return 2
        version = str(candidate.version)
    with Client.from_env() as client:
        metrics = measure(client, args.model, load_prompts(), params["evaluation"]["max_tokens"])
    misses = judge(metrics, params["gate"])
    promoted = record(version, metrics, misses)
    print(json.dumps({"version": version, "metrics": metrics, "misses": misses}, indent=2))
    return 0 if promoted else 1


if __name__ == "__main__":
    raise SystemExit(main())
