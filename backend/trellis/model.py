"""The domain: what Trellis knows about models and blueprints, free of I/O and frameworks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "Blueprint",
    "BlueprintInstance",
    "ChampionDetails",
    "ClusterRead",
    "Condition",
    "CruftRecord",
    "Deployment",
    "MetricPoint",
    "ModelKind",
    "ModelTags",
    "ModelVersion",
    "Page",
    "Publish",
    "Question",
    "RegisteredModel",
    "Runtime",
    "Sample",
    "Series",
    "Snapshot",
]


def _require_aware(owner: object, *moments: datetime) -> None:
    """Refuse a time without a time zone: it cannot be compared with the others, or ordered."""
    for moment in moments:
        if moment.utcoffset() is None:
            raise ValueError(
                f"{type(owner).__name__} takes times with a time zone, not {moment.isoformat()}"
            )


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
    #: A link to the model card (intended use, limits, evaluation).
    MODEL_CARD = "model_card"
    #: Comma-separated free-form labels, shown as Backstage tags.
    TAGS = "tags"
    #: Alias that marks the production version.
    CHAMPION = "champion"

    # Open models and regional fine-tuning (blueprints `llm-service` and `edge-finetune`).
    #: What the model is: `base` (an open model imported once into the private registry) or
    #: `adapter` (a regional fine-tune of a base model). Absent for models trained here.
    MODEL_KIND = "model_kind"
    #: The licence id as the model hub states it (`apache-2.0`, `mit`, `llama3.1`, ...).
    LICENSE = "license"
    #: Where an imported model came from (`hf://<org>/<name>`) and the exact commit taken.
    UPSTREAM = "upstream"
    UPSTREAM_REVISION = "upstream_revision"
    #: Size in bytes and SHA-256 of the imported weights (version tags).
    SIZE_BYTES = "size_bytes"
    SHA256 = "sha256"
    #: An adapter's base model (registered-model name) and the version it was tuned from.
    PARENT_MODEL = "parent_model"
    PARENT_VERSION = "parent_version"
    #: The region whose data tuned an adapter; it is trained in `training_region`.
    DATA_REGION = "data_region"
    #: SHA-256 over the training rows, so a version names its data without holding it.
    DATASET_FINGERPRINT = "dataset_fingerprint"
    #: How an adapter was tuned: `lora`, `qlora` or `full`.
    METHOD = "method"
    #: The evaluation gate's verdict on a version: `passed` or `failed`.
    GATE = "gate"


class ModelKind:
    """Values of the ``model_kind`` tag: where a model stands in hub-to-region lineage."""

    #: An open model imported once into the private registry (blueprint `llm-service`).
    BASE = "base"
    #: A regional fine-tune of a base model (blueprint `edge-finetune`).
    ADAPTER = "adapter"


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

    def __post_init__(self) -> None:
        _require_aware(self, self.created_at, self.updated_at)


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

    def __post_init__(self) -> None:
        _require_aware(self, self.created_at, self.updated_at)

    def version_for_alias(self, alias: str) -> int | None:
        """The version an alias points at, or None."""
        return self.aliases.get(alias)

    @property
    def champion(self) -> ModelVersion | None:
        """The version the ``champion`` alias points at, or None."""
        number = self.version_for_alias(ModelTags.CHAMPION)
        return next((v for v in self.versions if v.version == number), None)

    @property
    def latest_version(self) -> int | None:
        """The highest version number, or None for a model without versions."""
        return self.versions[-1].version if self.versions else None

    @property
    def kind(self) -> str | None:
        """``base``, ``adapter`` (see :class:`ModelKind`), or None for a model trained here."""
        kind = self.tags.get(ModelTags.MODEL_KIND, "").strip().casefold()
        return kind if kind in {ModelKind.BASE, ModelKind.ADAPTER} else None

    def lineage_tag(self, key: str) -> str:
        """A tag of the registered model, else of its champion (or latest) version; stripped.

        The blueprints put model-wide facts on the registered model and per-version ones
        (parent version, dataset fingerprint) on each version; the version shown is the one
        servers load.
        """
        value = self.tags.get(key, "").strip()
        if value:
            return value
        shown = self.champion or (self.versions[-1] if self.versions else None)
        return shown.tags.get(key, "").strip() if shown is not None else ""


class Runtime:
    """Serving runtimes Trellis knows the metrics of."""

    MLSERVER = "kserve-mlserver"
    TRITON = "triton"
    VLLM = "vllm"
    CUSTOM = "custom"


@dataclass(frozen=True, slots=True)
class Condition:
    """A Kubernetes status condition (``Ready``, ``PredictorReady``, ...)."""

    type: str
    status: str
    reason: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class Deployment:
    """One model server running in one cluster: a KServe InferenceService or a Deployment.

    ``model_version`` is what the server was told to load: a version number (``"3"``) or an
    alias (``"champion"``), or None when it cannot be told. ``selector`` holds the labels that
    select its pods, for Backstage's Kubernetes plugin and for PromQL.
    """

    cluster: str
    region: str
    namespace: str
    name: str
    kind: str
    runtime: str
    model_name: str | None
    model_version: str | None
    ready_replicas: int
    desired_replicas: int
    gpu_requests: int
    gpu_limits: int
    gpu_product: str | None
    url: str | None
    conditions: tuple[Condition, ...]
    network_policy: bool
    selector: Mapping[str, str]
    labels: Mapping[str, str] = field(default_factory=dict)
    #: Whether every container must run as a non-root user (``runAsNonRoot`` on the pod or
    #: on each container); None when the manifest does not say.
    runs_as_non_root: bool | None = None
    #: Registered-model names of the LoRA adapters served on top of ``model_name`` (the
    #: base model), sorted; empty for a server of one model.
    adapters: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ChampionDetails:
    """What the registry holds about one model version beyond its tags, for scorecards.

    It is read once per version and kept: a version's run and logged model do not change.
    A field that could not be read is None, and ``problems`` says why.
    """

    model_name: str
    version: int
    #: Whether the logged model has an input/output signature (its ``MLmodel`` file).
    has_signature: bool | None
    #: Datasets the version's run logged as inputs (``name`` or source URI), in order.
    datasets: tuple[str, ...] | None
    #: The run's metrics, latest value of each.
    metrics: Mapping[str, float] | None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ClusterRead:
    """How the last read of one cluster went; a failed cluster keeps its older deployments."""

    cluster: str
    ok: bool
    read_at: datetime
    error: str | None = None

    def __post_init__(self) -> None:
        _require_aware(self, self.read_at)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one complete read of the sources returned, and when.

    ``deployments`` come from every configured cluster; for a cluster whose last read failed
    (``clusters[name].ok`` is false) they are the ones read before, kept rather than dropped.
    """

    models: tuple[RegisteredModel, ...]
    taken_at: datetime
    registry: str
    deployments: tuple[Deployment, ...] = ()
    clusters: Mapping[str, ClusterRead] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require_aware(self, self.taken_at)


@dataclass(frozen=True, slots=True)
class Sample:
    """One value of one labelled series at one moment (Unix seconds), as a query answers it."""

    labels: Mapping[str, str]
    timestamp: float
    value: float


@dataclass(frozen=True, slots=True)
class Series:
    """A labelled series over a time range: ``(Unix seconds, value)`` points, oldest first."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One logged value of a training metric: the step, when it was logged, and the value."""

    step: int
    timestamp: datetime
    value: float

    def __post_init__(self) -> None:
        _require_aware(self, self.timestamp)


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
class CruftRecord:
    """What ``.cruft.json`` records of a repository generated from a cookiecutter template.

    ``context`` is cookiecutter's context of the render: every answer, the template's
    private variables, and ``_template``/``_commit`` as cruft adds them.
    """

    template: str
    commit: str
    context: Mapping[str, Any]
    checkout: str | None = None
    directory: str | None = None
    skip: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BlueprintInstance:
    """A repository generated from a blueprint: which blueprint and which version it uses."""

    location: str
    blueprint: str
    version: str
    source: str
    entity_ref: str | None = None
    #: Its entity's Git host annotations (``github.com/project-slug`` and the like) as
    #: ``(key, value)`` pairs: where its blueprint-update requests are opened.
    project_slugs: tuple[tuple[str, str], ...] = ()
