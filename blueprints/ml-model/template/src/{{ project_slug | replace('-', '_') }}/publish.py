"""Copy the champion into one region's bucket, where that region's model server reads it.

Run it as `publish --overlay deploy/overlays/<region>` (a console script) or with `python -m`
on this module. The overlay's `storageUri` is the model root (`.../models/<model>`); version N
of the registry lands in `<root>/<N>/` and is never overwritten, so a server still reading
version N-1 keeps it and a rollback only points `storageUri` back. The versioned URI is the
only line on stdout (`rollout` sets it on the InferenceService). Only the model is copied:
each region's bucket holds the models it serves, and its own data never leaves it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from . import project, registry

STORAGE_URI_PATH = "/spec/predictor/model/storageUri"


def storage_uri(overlay: Path) -> str:
    """The storage URI the overlay's InferenceService patch sets."""
    kustomization = yaml.safe_load((overlay / "kustomization.yaml").read_text(encoding="utf-8"))
    for patch in kustomization.get("patches", []):
        for operation in yaml.safe_load(patch.get("patch", "")) or []:
            if operation.get("path") == STORAGE_URI_PATH:
                return str(operation["value"])
    raise ValueError(f"{overlay} sets no {STORAGE_URI_PATH}")


def artifact_destination(uri: str) -> str:
    """MLflow's form of a storage URI (Azure blob URLs become `wasbs://`; others are kept)."""
    parts = urlsplit(uri)
    if (
        parts.scheme == "https"
        and parts.hostname
        and parts.hostname.endswith(".blob.core.windows.net")
    ):
        container, _, path = parts.path.lstrip("/").partition("/")
        return f"wasbs://{container}@{parts.hostname}/{path}"
    return uri


def layout(model_dir: Path, out: Path) -> Path:
    """What the model server reads: the MLflow model, or a Triton model repository."""
    if project.SERVING_RUNTIME != "triton":
        return model_dir
    version_dir = out / project.MODEL_NAME / "1"
    version_dir.mkdir(parents=True)
    extra = model_dir / "extra_files"
    shutil.copy(extra / "config.pbtxt", out / project.MODEL_NAME / "config.pbtxt")
    shutil.copy(extra / "model.onnx", version_dir / "model.onnx")
    return out


def versioned_uri(root: str, version: str | int) -> str:
    """Where version `version` lives under the model root."""
    return f"{root.rstrip('/')}/{version}"


def publish(root: str, alias: str = registry.CHAMPION) -> int:
    """Copy the version `alias` points at to `<root>/<version>`; return the exit status."""
    from mlflow.artifacts import download_artifacts
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    client = registry.connect()
    version = registry.version_for_alias(client, alias)
    if version is None:
        print(f"{project.MODEL_NAME} has no `{alias}` version to publish", file=sys.stderr)
        return 2
    destination = versioned_uri(root, version.version)
    label = f"{project.MODEL_NAME} version {version.version}"
    store = get_artifact_repository(artifact_destination(destination))
    if store.list_artifacts():
        # Published before: servers may be reading it, and its content cannot have changed.
        print(f"{label} is already at {destination}", file=sys.stderr)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            model_dir = Path(
                download_artifacts(
                    artifact_uri=registry.model_uri(version.version),
                    dst_path=str(Path(tmp) / "m"),
                )
            )
            store.log_artifacts(str(layout(model_dir, Path(tmp) / "repository")))
        print(f"{label} (`{alias}`) copied to {destination}", file=sys.stderr)
    print(destination)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--overlay", type=Path, help="deploy/overlays/<region>: copy under the model root it reads"
    )
    target.add_argument("--to", help="a model root URI (s3://, gs://, https://*.blob..., a path)")
    parser.add_argument("--alias", default=registry.CHAMPION, help="which version to copy")
    args = parser.parse_args(argv)
    return publish(args.to or storage_uri(args.overlay), args.alias)


if __name__ == "__main__":
    sys.exit(main())
