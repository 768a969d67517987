"""The MLflow registry: where it is, the tags this service writes, and its aliases.

Tag keys follow Trellis's model contract: registered-model tags say what the model is
(`model_kind=base`, licence, upstream and revision, owner, system, ...); version tags record
exactly which upstream files a version holds (revision, size, SHA-256).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from . import project

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

#: The version `import-model` registered last and `evaluate` judges next.
CANDIDATE = "candidate"
#: The version in production: what every region's server pulls.
CHAMPION = "champion"
UNKNOWN = "unknown"
_REPO_ROOT = Path(__file__).resolve().parents[2]


def tracking_uri() -> str:
    """`MLFLOW_TRACKING_URI`, else the tracking server this service was generated for."""
    return os.environ.get("MLFLOW_TRACKING_URI") or project.DEFAULT_TRACKING_URI


def connect() -> MlflowClient:
    """Point MLflow at the tracking server (telemetry off) and return a client for it."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    import mlflow

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def git_commit() -> str:
    """`GIT_COMMIT` (set by CI and the image build), else `git rev-parse HEAD`, else unknown."""
    commit = os.environ.get("GIT_COMMIT", "").strip()
    if commit:
        return commit
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607 - git from PATH, fixed arguments
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN
    return result.stdout.strip() or UNKNOWN


def blueprint_version() -> str:
    """The blueprint version (`_commit` of `.copier-answers.yml`) this repository is at."""
    for folder in (Path.cwd(), _REPO_ROOT):
        try:
            answers = yaml.safe_load((folder / ".copier-answers.yml").read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(answers, dict) and answers.get("_commit"):
            return str(answers["_commit"])
    return UNKNOWN


def region() -> str:
    """`TRELLIS_REGION` (set by the job), else the hub region."""
    return os.environ.get("TRELLIS_REGION") or project.HUB_REGION


def upstream() -> str:
    """The upstream model as the registry records it: `hf://<org>/<name>`."""
    return f"hf://{project.HF_MODEL_ID}"


def model_tags() -> dict[str, str]:
    """Tags of the registered base model: what Trellis shows in Backstage."""
    return {
        "model_kind": "base",
        "license": project.LICENSE,
        "upstream": upstream(),
        "upstream_revision": project.HF_REVISION,
        "framework": "transformers",
        "task": "text-generation",
        "owner": project.OWNER,
        "system": project.SYSTEM,
        "data_classification": project.DATA_CLASSIFICATION,
        "training_region": region(),
        "source_repo": project.SOURCE_REPO,
        "blueprint": project.BLUEPRINT,
        "blueprint_version": blueprint_version(),
        "tags": "llm,vllm",
    }


def version_tags(size_bytes: int, sha256: str) -> dict[str, str]:
    """Tags of one imported version: exactly which upstream files it holds."""
    return {
        "upstream": upstream(),
        "upstream_revision": project.HF_REVISION,
        "license": project.LICENSE,
        "size_bytes": str(size_bytes),
        "sha256": sha256,
        "git_commit": git_commit(),
    }


def version_for_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version an alias points at, or None when the alias (or the model) is not there."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
            return None
        raise
