"""Run a generated edge-finetune repository's job as its Kubernetes Job runs it.

The generated project needs torch: it runs with this suite's interpreter (a fresh virtualenv
would download a CUDA build of several GB), once ``support.requirements`` has checked that
this environment meets what its ``pyproject.toml`` declares.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from support.timing import scaled

#: A few quick steps: enough for the adapter to beat the random hub model on the hold-out.
TUNING = {"max_steps": 12, "batch_size": 8, "learning_rate": 0.01}


def answers_of(repo: Path) -> dict[str, Any]:
    return yaml.safe_load((repo / ".copier-answers.yml").read_text())


def package_of(repo: Path) -> str:
    return str(answers_of(repo)["adapter_name"]).replace("-", "_")


def sample_of(repo: Path) -> Path:
    """The regional sample the blueprint bundles."""
    return repo / "src" / package_of(repo) / "sample_data" / "regional_sample.jsonl"


def rows_of(repo: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in sample_of(repo).read_text().splitlines() if line.strip()]


def texts_of(rows: list[dict[str, Any]]) -> list[str]:
    """The text each row trains on (a plain text, or a prompt and its completion)."""
    return [r.get("text") or r["prompt"] + r["completion"] for r in rows]


def fingerprint(rows: list[dict[str, Any]]) -> str:
    """SHA-256 over the rows, one canonical JSON line each (as the contract defines it)."""
    lines = (json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False) for r in rows)
    return hashlib.sha256("".join(f"{line}\n" for line in lines).encode()).hexdigest()


def write_params(repo: Path, path: Path, min_loss_improvement: float) -> Path:
    """The repository's params.yaml with quick tuning and the given gate margin."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["tuning"].update(TUNING)
    params["gate"]["min_loss_improvement"] = min_loss_improvement
    path.write_text(yaml.safe_dump(params))
    return path


def finetune(repo: Path, url: str, params: Path) -> subprocess.CompletedProcess[str]:
    """The generated entry point, run as the Job runs it (``python -m <package>.finetune``)."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
        "PYTHONPATH": str(repo / "src"),
        "MLFLOW_TRACKING_URI": url,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "HF_HUB_OFFLINE": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", f"{package_of(repo)}.finetune", "--data", str(sample_of(repo)),
         "--params", str(params)],
        cwd=repo, env=env, capture_output=True, text=True, timeout=scaled(600), check=False,
    )  # fmt: skip
