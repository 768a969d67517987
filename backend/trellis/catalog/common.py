"""What every entity builder shares: the entity type, problems, and text hygiene."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Entity", "Problem", "clean"]

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
