"""Import the base model once: fetch the pinned upstream revision and register it in MLflow.

The licence is checked against the allow-list before anything is downloaded, and against the
model card after. The files are logged as run artifacts under `model/` (a `save_pretrained`
folder as the hub holds it) and registered as a version with their size and SHA-256; serving
then pulls them from the registry's artifact store, never from the public hub. Running it
again for the same revision finds the version already registered and changes nothing.

    import-model              # MLFLOW_TRACKING_URI decides where; HF_TOKEN for gated models
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from . import project, registry
from .snapshot import card_license, fingerprint

#: Downloads `repo_id` at `revision` into `local_dir` and returns the folder.
Download = Callable[..., str]


class ImportRefused(Exception):
    """The model must not be imported (licence, source); the message says why."""


def check_license(declared: str, allowed: tuple[str, ...]) -> None:
    """Refuse a licence outside the organisation's allow-list."""
    if declared not in allowed:
        raise ImportRefused(
            f"licence {declared!r} is not on the allow-list ({', '.join(allowed)}); have it "
            "approved and added to allowed_licenses (copier update --data), or choose another "
            "model"
        )


def hub_download(*, repo_id: str, revision: str, local_dir: str) -> str:
    """The real download: huggingface_hub's snapshot of exactly `revision`."""
    from huggingface_hub import snapshot_download

    return snapshot_download(repo_id=repo_id, revision=revision, local_dir=local_dir)


def already_imported(client, sha256: str) -> str | None:
    """The version that already holds these exact files, if any."""
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = '{project.REGISTERED_MODEL}'")
    except MlflowException:
        return None
    for version in versions:
        if version.tags.get("sha256") == sha256:
            return str(version.version)
    return None


def import_model(download: Download = hub_download) -> str:
    """Fetch, check, log and register the pinned revision; return the version number."""
    if project.MODEL_SOURCE != "huggingface":
        raise ImportRefused(
            f"{project.REGISTERED_MODEL} comes from the registry already; nothing to import"
        )
    check_license(project.LICENSE, project.ALLOWED_LICENSES)
    client = registry.connect()
    import mlflow

    with tempfile.TemporaryDirectory(prefix="import-") as scratch:
        folder = Path(
            download(
                repo_id=project.HF_MODEL_ID,
                revision=project.HF_REVISION,
                local_dir=str(Path(scratch) / "model"),
            )
        )
        stated = card_license(folder)
        if stated is not None and stated != project.LICENSE:
            raise ImportRefused(
                f"the model card states licence {stated!r}, not {project.LICENSE!r}; "
                "correct model_license (and have it approved) before importing"
            )
        fp = fingerprint(folder)
        existing = already_imported(client, fp.sha256)
        if existing is not None:
            print(f"{project.REGISTERED_MODEL} version {existing} already holds these files")
            return existing
        try:
            client.create_registered_model(
                project.REGISTERED_MODEL, description=project.DESCRIPTION
            )
        except mlflow.exceptions.MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        for key, value in registry.model_tags().items():
            client.set_registered_model_tag(project.REGISTERED_MODEL, key, value)
        mlflow.set_experiment(project.SERVICE)
        with mlflow.start_run(run_name=f"import-{project.HF_REVISION[:12]}") as run:
            mlflow.log_params({"upstream": registry.upstream(), "revision": project.HF_REVISION})
            mlflow.log_metric("size_bytes", fp.size_bytes)
            mlflow.log_artifacts(str(folder), artifact_path="model")
        version = client.create_model_version(
            name=project.REGISTERED_MODEL,
            source=f"{run.info.artifact_uri}/model",
            run_id=run.info.run_id,
            tags=registry.version_tags(fp.size_bytes, fp.sha256),
            description=f"{registry.upstream()} at {project.HF_REVISION}",
        )
    client.set_registered_model_alias(project.REGISTERED_MODEL, registry.CANDIDATE, version.version)
    print(
        f"registered {project.REGISTERED_MODEL} version {version.version} "
        f"({fp.size_bytes} bytes, sha256 {fp.sha256[:12]}...) as {registry.CANDIDATE}"
    )
    return str(version.version)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `import-model`."""
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    try:
        import_model()
    except ImportRefused as exc:
        print(f"import-model: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
