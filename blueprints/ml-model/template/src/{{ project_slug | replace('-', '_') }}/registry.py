"""The MLflow registry: where it is, what this project writes into it, and its aliases.

Registered-model tags are what Trellis reads to show the model in Backstage and score it
(owner, system, data classification, training region, source repository, model card,
blueprint and its version, framework, task); version tags record where each version came from.
"""

from __future__ import annotations

import http.client
import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import yaml

from . import project

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

#: The version `train` registered last and `evaluate` judges next.
CANDIDATE = "candidate"
#: The version in production: what the serving pipeline deploys to every region.
CHAMPION = "champion"
#: Version tag: the champion a promotion replaced (what `promote` rolls back to).
PREVIOUS_CHAMPION_TAG = "previous_champion"
UNKNOWN = "unknown"
#: Exit status when `MLFLOW_TRACKING_URI` is unset and the default server is out of reach.
EXIT_NOT_CONFIGURED = 2
#: Exit status when the tracking server `MLFLOW_TRACKING_URI` names does not answer.
EXIT_UNREACHABLE = 3
#: How long the first contact with a tracking server may take before it counts as down.
PROBE_TIMEOUT_SECONDS = 5.0
_REPO_ROOT = Path(__file__).resolve().parents[2]


def tracking_uri() -> str:
    """`MLFLOW_TRACKING_URI`, else the tracking server this project was generated for."""
    return os.environ.get("MLFLOW_TRACKING_URI") or project.DEFAULT_TRACKING_URI


def experiment_name() -> str:
    """`MLFLOW_EXPERIMENT_NAME`, else the model's name."""
    return os.environ.get("MLFLOW_EXPERIMENT_NAME") or project.MODEL_NAME


def connect() -> MlflowClient:
    """Point MLflow at the tracking server (telemetry off) and return a client for it.

    A server out of reach stops the command (SystemExit) with one line saying what to set:
    MLflow itself would retry for minutes and then print a traceback.
    """
    uri = tracking_uri()
    require_reachable(uri)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def without_credentials(uri: str) -> str:
    """`uri` without a `user:password@` part, which must never reach a message or a log."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def unreachable(uri: str) -> str | None:
    """Why an http(s) tracking server cannot be reached, or None when it answers.

    Any HTTP answer counts, even an error status, a refused login or a TLS handshake that
    MLflow's own settings may accept: only a server that is not there is reported. So the probe
    needs no credentials, and sends none.
    """
    if urlsplit(uri).scheme not in {"http", "https"}:
        return None  # a local registry (sqlite://, a folder) or a managed one MLflow resolves
    probe = without_credentials(uri)
    request = urllib.request.Request(probe, method="HEAD")  # noqa: S310 - http(s) only, above
    try:
        with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT_SECONDS):  # noqa: S310
            return None
    except urllib.error.HTTPError:
        return None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ssl.SSLError):
            return None
        return str(exc.reason)
    except (TimeoutError, OSError, ValueError, http.client.HTTPException) as exc:  # bad URL too
        return str(exc).replace(uri, probe) or type(exc).__name__


def require_reachable(uri: str) -> None:
    """Exit with one actionable line when the tracking server cannot be reached.

    Like argparse on a bad argument, this ends the command itself, so that train, evaluate,
    promote and publish all stop the same way wherever they connect.
    """
    problem = unreachable(uri)
    if problem is None:
        return
    uri = without_credentials(uri)
    if os.environ.get("MLFLOW_TRACKING_URI"):
        print(
            f"error: the MLflow tracking server {uri} does not answer ({problem}): start it, "
            "or export MLFLOW_TRACKING_URI=<the URL of one that runs>",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_UNREACHABLE)
    print(
        f"error: MLFLOW_TRACKING_URI is not set and its default {uri} cannot be reached from "
        f"here ({problem}): export MLFLOW_TRACKING_URI=<your tracking server>, e.g. "
        "http://127.0.0.1:5000 for a local `mlflow server` (see README.md)",
        file=sys.stderr,
    )
    raise SystemExit(EXIT_NOT_CONFIGURED)


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


def training_region() -> str:
    """`TRELLIS_REGION` (set by the training Job), else the hub region."""
    return os.environ.get("TRELLIS_REGION") or project.TRAINING_REGION


def model_tags(version_of_blueprint: str) -> dict[str, str]:
    """Tags of the registered model: the facts Trellis turns into the Backstage Resource."""
    labels = [project.SERVING_RUNTIME] + (["gpu"] if project.USE_GPU else [])
    return {
        "owner": project.OWNER,
        "system": project.SYSTEM,
        "data_classification": project.DATA_CLASSIFICATION,
        "training_region": training_region(),
        "source_repo": project.SOURCE_REPO,
        "model_card": project.MODEL_CARD,
        "blueprint": project.BLUEPRINT,
        "blueprint_version": version_of_blueprint,
        "framework": project.FRAMEWORK,
        "task": project.TASK,
        "tags": ",".join(labels),
    }


def version_tags(commit: str, version_of_blueprint: str) -> dict[str, str]:
    """Tags of one model version: who owns it and exactly what produced it."""
    return {
        "owner": project.OWNER,
        "system": project.SYSTEM,
        "data_classification": project.DATA_CLASSIFICATION,
        "git_commit": commit,
        "blueprint": project.BLUEPRINT,
        "blueprint_version": version_of_blueprint,
    }


def describe_model(client: MlflowClient, version_of_blueprint: str) -> None:
    """Write the registered model's description and tags (idempotent)."""
    client.update_registered_model(project.MODEL_NAME, description=project.DESCRIPTION)
    for key, value in model_tags(version_of_blueprint).items():
        client.set_registered_model_tag(project.MODEL_NAME, key, value)


def version_for_alias(client: MlflowClient, alias: str) -> ModelVersion | None:
    """The version an alias points at, or None when the alias (or the model) is not there."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(project.MODEL_NAME, alias)
    except MlflowException as exc:
        if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
            return None
        raise


def model_uri(version: str | int) -> str:
    """The URI of one version of the registered model."""
    return f"models:/{project.MODEL_NAME}/{version}"
