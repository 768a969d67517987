"""Domain objects for pure tests: registered models with a run of ready versions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from trellis.model import ModelVersion, RegisteredModel

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def registered_model(
    name: str,
    tags: Mapping[str, str] | None = None,
    aliases: Mapping[str, int] | None = None,
    versions: int = 2,
    description: str = "",
) -> RegisteredModel:
    """A model with versions 1..``versions``, all READY, created at ``T0``."""
    return RegisteredModel(
        name=name,
        description=description,
        tags=dict(tags or {}),
        aliases=dict(aliases or {}),
        created_at=T0,
        updated_at=T0,
        versions=tuple(
            ModelVersion(name, v, "READY", f"s3://b/{v}", None, "", {}, T0, T0)
            for v in range(1, versions + 1)
        ),
    )
