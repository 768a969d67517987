"""What every entity builder shares: the envelope's apiVersion, problems, and text hygiene."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import yaml

__all__ = ["API_VERSION", "YAML_DUMPER", "Entity", "Problem", "clean"]

API_VERSION = "backstage.io/v1alpha1"

try:  # libyaml is an order of magnitude faster on 10,000 entities (and their API texts)
    YAML_DUMPER: Any = yaml.CSafeDumper
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    YAML_DUMPER = yaml.SafeDumper

Entity = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Problem:
    """Something about a model's entity that an adopter should know about."""

    model: str
    entity: str | None
    severity: Literal["error", "warning"]
    message: str


def clean(text: str) -> str:
    """Text that encodes as UTF-8 and that YAML readers accept (no lone surrogates, no NUL)."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")
