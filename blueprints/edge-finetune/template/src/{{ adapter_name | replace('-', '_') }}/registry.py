"""The MLflow registry: fetch the hub model, register the adapter with its lineage, move aliases.

The tag keys are the ones the Trellis catalog reads (registered-model and version tags).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts
from mlflow.exceptions import MlflowException

CHAMPION = "champion"


@dataclass(frozen=True)
class HubModel:
    """The hub model version tuned from, and where its files were downloaded."""

    name: str
    version: str
    folder: Path


def fetch_hub(client: MlflowClient, name: str, alias: str, dst: Path) -> HubModel:
    """Download the version behind ``name@alias`` (pinned by number, so a move cannot race)."""
    version = client.get_model_version_by_alias(name, alias).version
    folder = download_artifacts(
        artifact_uri=client.get_model_version_download_uri(name, version),
        dst_path=str(dst),
        tracking_uri=client.tracking_uri,
    )
    return HubModel(name=name, version=str(version), folder=Path(folder))


def ensure_model(client: MlflowClient, name: str, tags: dict[str, str], description: str) -> None:
    """Create the adapter's registered model, or bring its tags up to date."""
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        client.create_registered_model(name, tags=tags, description=description)
        return
    for key, value in tags.items():
        client.set_registered_model_tag(name, key, value)
    client.update_registered_model(name, description=description)


def register_version(
    client: MlflowClient, name: str, source: str, run_id: str, tags: dict[str, str]
) -> str:
    """A new version of ``name`` from a run's artifact folder; its number."""
    version = client.create_model_version(name, source=source, run_id=run_id, tags=tags)
    return str(version.version)


def move_champion(client: MlflowClient, name: str, version: str) -> None:
    """Point the regional `champion` alias at ``version``."""
    client.set_registered_model_alias(name, CHAMPION, version)
