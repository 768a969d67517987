"""`params.yaml`: the data, model and promotion-gate parameters, reviewed like code."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

#: Environment variable naming another parameters file.
PARAMS_ENV = "PARAMS_FILE"
_REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Params:
    """The three sections of `params.yaml`."""

    data: Mapping[str, Any]
    model: Mapping[str, Any]
    gate: Mapping[str, Any]
    path: Path

    def flat(self) -> dict[str, Any]:
        """Data and model parameters as `section.key` pairs, for logging to MLflow."""
        return {
            f"{section}.{key}": value
            for section, values in (("data", self.data), ("model", self.model))
            for key, value in values.items()
        }


def find_params(path: str | os.PathLike[str] | None = None) -> Path:
    """The parameters file: the argument, `$PARAMS_FILE`, `./params.yaml` or the repository's."""
    explicit = path or os.environ.get(PARAMS_ENV)
    if explicit:
        return Path(explicit)
    for candidate in (Path.cwd() / "params.yaml", _REPO_ROOT / "params.yaml"):
        if candidate.is_file():
            return candidate
    return Path("params.yaml")


def load_params(path: str | os.PathLike[str] | None = None) -> Params:
    """Read and check the parameters file; a missing or malformed one is a clear error."""
    location = find_params(path)
    try:
        raw = yaml.safe_load(location.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(
            f"parameters file {location} not found: run from the repository root, "
            f"pass --params or set {PARAMS_ENV}"
        ) from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{location} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{location}: expected a mapping with data, model and gate sections")
    sections = {}
    for section in ("data", "model", "gate"):
        value = raw.get(section) or {}
        if not isinstance(value, dict):
            raise ValueError(f"{location}: `{section}` must be a mapping")
        sections[section] = value
    return Params(path=location, **sections)
