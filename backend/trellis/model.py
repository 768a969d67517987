"""The domain: what Trellis knows about registered models, free of I/O and frameworks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["ModelTags", "ModelVersion", "RegisteredModel", "Snapshot"]


class ModelTags:
    """Registered-model tag keys with a meaning; blueprints write them, views read them."""

    OWNER = "owner"
    SYSTEM = "system"
    DATA_CLASSIFICATION = "data_classification"
    TRAINING_REGION = "training_region"
    SOURCE_REPO = "source_repo"
    BLUEPRINT = "blueprint"
    BLUEPRINT_VERSION = "blueprint_version"
    FRAMEWORK = "framework"
    TASK = "task"
    #: Comma-separated free-form labels, shown as Backstage tags.
    TAGS = "tags"
    #: Alias that marks the production version.
    CHAMPION = "champion"


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One version of a registered model, as the registry holds it."""

    model_name: str
    version: int
    status: str
    source: str
    run_id: str | None
    description: str
    tags: Mapping[str, str]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    """A registered model with all of its versions (newest last) and its aliases."""

    name: str
    description: str
    tags: Mapping[str, str]
    aliases: Mapping[str, int]
    created_at: datetime
    updated_at: datetime
    versions: tuple[ModelVersion, ...] = field(default=())

    def version_for_alias(self, alias: str) -> int | None:
        """The version an alias points at, or None."""
        return self.aliases.get(alias)

    @property
    def latest_version(self) -> int | None:
        """The highest version number, or None for a model without versions."""
        return self.versions[-1].version if self.versions else None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one complete read of the registry returned, and when."""

    models: tuple[RegisteredModel, ...]
    taken_at: datetime
    registry: str
