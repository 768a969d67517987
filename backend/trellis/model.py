"""The domain: what Trellis knows about models and blueprints, free of I/O and frameworks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

__all__ = [
    "Blueprint",
    "BlueprintInstance",
    "ModelTags",
    "ModelVersion",
    "Page",
    "Publish",
    "Question",
    "RegisteredModel",
    "Snapshot",
]


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


@dataclass(frozen=True, slots=True)
class Question:
    """One question of a blueprint, as its ``copier.yml`` declares it.

    ``choices`` maps each value to its title. ``condition`` is the answer another question
    must have for this one to be asked (from ``when``), e.g. ``("use_gpu", True)``.
    """

    name: str
    type: str
    help: str
    default: object
    choices: Mapping[str, str] = field(default_factory=dict)
    condition: tuple[str, object] | None = None
    secret: bool = False

    @property
    def computed_default(self) -> bool:
        """Whether the default is a Jinja expression Copier works out from other answers."""
        return isinstance(self.default, str) and "{{" in self.default


@dataclass(frozen=True, slots=True)
class Page:
    """A page of a blueprint's form: a title and the questions on it, in order."""

    title: str
    questions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Publish:
    """Where a generated repository is pushed: which answers name it and its Git host.

    ``repository`` is the question holding ``owner/name``; ``selector`` the question whose
    answer picks a host from ``hosts`` (``{"github": "github.com", ...}``).
    """

    repository: str
    selector: str | None
    hosts: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Blueprint:
    """A blueprint: its questions and how Backstage presents it (``blueprint.yaml``)."""

    name: str
    title: str
    description: str
    owner: str
    type: str
    tags: tuple[str, ...]
    questions: tuple[Question, ...]
    pages: tuple[Page, ...]
    #: Questions the form (and the render API) insist on: no default is a good guess for them.
    required: tuple[str, ...] = ()
    #: Extra JSON Schema / ui: keys per question, e.g. ``{"owner": {"ui:field": "OwnerPicker"}}``.
    form: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    publish: Publish | None = None


@dataclass(frozen=True, slots=True)
class BlueprintInstance:
    """A repository generated from a blueprint: which blueprint and which version it uses."""

    location: str
    blueprint: str
    version: str
    source: str
    entity_ref: str | None = None
