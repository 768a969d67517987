"""Copy the served weights from the registry into the model cache: the serving init container.

`<dest>/base` gets the base model's `champion` version and `<dest>/adapters/<name>` each LoRA
adapter's `champion`, all from the registry's artifact store. The public hub is never asked.

    pull-model --dest /mnt/models
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from . import project, registry


def pull_one(name: str, alias: str, destination: Path) -> Path:
    """Download `models:/<name>@<alias>` into `destination` (replaced if it exists)."""
    import mlflow

    if destination.exists():
        shutil.rmtree(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    downloaded = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}@{alias}", dst_path=str(destination.parent / ".incoming")
        )
    )
    downloaded.rename(destination)
    shutil.rmtree(destination.parent / ".incoming", ignore_errors=True)
    return destination


def pull(dest: Path, alias: str = registry.CHAMPION) -> dict[str, Path]:
    """The base model and every adapter, each in its own folder under `dest`."""
    registry.connect()
    folders = {project.REGISTERED_MODEL: pull_one(project.REGISTERED_MODEL, alias, dest / "base")}
    for adapter in project.LORA_ADAPTERS:
        folders[adapter] = pull_one(adapter, alias, dest / "adapters" / adapter)
    return folders


def main(argv: list[str] | None = None) -> int:
    """Entry point of `pull-model`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, required=True, help="the model cache folder")
    parser.add_argument("--alias", default=registry.CHAMPION, help="which version of each model")
    args = parser.parse_args(argv)
    for name, folder in pull(args.dest, args.alias).items():
        print(f"{name} -> {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
