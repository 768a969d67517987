"""The ports: what the use cases need of each outside system, declared as Protocols.

``trellis.services`` and ``trellis.api`` type against these, never against an adapter:
the adapters in ``trellis.sources`` satisfy them, the composition root picks which, and
unit tests pass fakes. Each method says what it raises: a source that cannot be read is
``SourceUnavailable``, whatever library failed underneath.

The value types that cross a port and belong to no part of the domain (a fact store's rows,
a rendered repository, a file set aside) are declared here too, beside the Protocol whose
methods take or return them: they exist only to cross that port, so the port is the one
place to read to know an adapter's whole contract, and ``trellis.model`` stays the domain of
models and blueprints. This module imports only the domain and the standard library.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from trellis.model import (
    Blueprint,
    BlueprintInstance,
    ChampionDetails,
    ClusterRead,
    CruftRecord,
    Deployment,
    MetricPoint,
    ModelVersion,
    RegisteredModel,
    Sample,
    Series,
    Snapshot,
)

__all__ = [
    "ClusterResults",
    "CookiecutterTemplate",
    "CruftCheckouts",
    "DeploymentSource",
    "FactRow",
    "GeneratedRepositories",
    "Lease",
    "MetricNameSource",
    "PromQLSource",
    "RecordedRelease",
    "RegistrySource",
    "RenderPool",
    "RenderedFile",
    "Rendering",
    "ResultRow",
    "RunRow",
    "ScorecardStore",
    "SetAside",
    "SnapshotStore",
    "TemplateSource",
    "WriteStats",
]

_T = TypeVar("_T")

ClusterResults = Mapping[str, tuple[ClusterRead, tuple[Deployment, ...]]]
"""One read of every cluster: each cluster's read, and the model servers found in it."""


@dataclass(frozen=True, slots=True)
class SetAside:
    """A file that was set aside: where it was, the name it is kept under, when and why."""

    path: Path
    kept_as: Path
    at: datetime
    reason: str

    def as_json(self) -> dict[str, str]:
        """JSON-ready view, for ``/readyz``."""
        return {
            "file": str(self.path),
            "set_aside_as": str(self.kept_as),
            "at": self.at.isoformat(),
            "reason": self.reason,
        }


class RegistrySource(Protocol):
    """Port: one complete, consistent read of a model registry, and runs' training history.

    Every method raises ``SourceUnavailable`` when the registry cannot be read; the run
    methods raise ``NotFound`` for a run that does not exist (deleted, or another store's).
    """

    name: str

    def read(self) -> Snapshot:
        """Read every registered model and version."""
        ...

    def read_models(self, names: Collection[str]) -> tuple[RegisteredModel, ...] | None:
        """Read only the named models and their versions, as ``read`` would give them.

        A named model that does not exist is left out (only a full read says a model is
        gone). None when this source cannot read these models one by one: read all.
        """
        ...

    def run_metric_keys(self, run_id: str) -> list[str]:
        """The names of the metrics a run logged, sorted."""
        ...

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        """Every value a run logged for one metric, by step then time."""
        ...

    def version_details(
        self, versions: Sequence[ModelVersion]
    ) -> dict[tuple[str, int], ChampionDetails]:
        """Signature, dataset lineage and metrics of each version, read in batches and kept.

        Keyed by ``(model name, version)``. What could not be read for one version is None
        in its details with the reason in ``problems``, and is read again next time.
        """
        ...

    def close(self) -> None:
        """Release connections and threads."""
        ...


class DeploymentSource(Protocol):
    """Port: model servers by cluster; one cluster's failure is reported in its ``ClusterRead``."""

    def read(self) -> ClusterResults:
        """Read every cluster (never raises for one cluster)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class PromQLSource(Protocol):
    """Port: PromQL against one Prometheus; every failure is ``SourceUnavailable``."""

    def query(self, promql: str, at: datetime) -> list[Sample]:
        """The instant vector ``promql`` evaluates to at ``at``."""
        ...

    def query_range(
        self, promql: str, start: datetime, end: datetime, step_seconds: float
    ) -> list[Series]:
        """The series ``promql`` evaluates to at every step from ``start`` to ``end``."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class MetricNameSource(Protocol):
    """Port: which metric names one Prometheus has; every failure is ``SourceUnavailable``."""

    def metric_names(self, start: datetime, end: datetime, prefix: str = "") -> frozenset[str]:
        """The metric names starting with ``prefix`` with samples between two moments."""
        ...


@dataclass(frozen=True, slots=True)
class FactRow:
    """The facts one retriever gave for one entity at one moment.

    ``unknown`` maps a fact name (or a JSON path such as ``blueprint.versionsBehind``) to why
    it could not be read: a fact that could not be read is unknown, not false, and the
    reason is kept so a scorecard can show it.
    """

    entity: str
    retriever: str
    version: str
    timestamp: datetime
    facts: Mapping[str, object]
    unknown: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ResultRow:
    """One check's latest outcome for one entity, with the fact values the check read.

    ``reasons`` say why the outcome is unknown or which conditions failed, so a scorecard
    can explain it without evaluating the check again.
    """

    entity: str
    check_id: str
    timestamp: datetime
    outcome: str
    reasons: tuple[str, ...]
    facts: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class WriteStats:
    """What one write stored: for the logs and the metrics of a scoring run."""

    facts_written: int
    facts_unchanged: int
    results_written: int


@dataclass(frozen=True, slots=True)
class RunRow:
    """One scoring run as kept beside its results, so every replica reports the same run.

    ``report`` is the run's JSON summary (outcome counts, sources unavailable, the fleet
    roll-up); ``replica`` names the process that ran it.
    """

    at: datetime
    replica: str
    seconds: float
    entities: int
    report: Mapping[str, Any]


class ScorecardStore(Protocol):
    """Port: fact history and each check's latest result.

    Every method but ``close`` reaches the store first if it was not yet, and raises
    ``SourceUnavailable`` naming the store when it cannot.
    """

    name: str
    set_aside: list[SetAside]
    """Damaged files renamed when the store was opened, for ``/readyz``."""

    @property
    def opened(self) -> bool:
        """Whether the store was reached and is ready."""
        ...

    def open(self) -> None:
        """Reach the store and make it ready, once."""
        ...

    def write(
        self,
        facts: Iterable[FactRow],
        results: Iterable[ResultRow],
        *,
        at: datetime,
        unchanged: Iterable[tuple[str, str]] = (),
    ) -> WriteStats:
        """Store one scoring run's facts (changes only) and results, in one transaction.

        Each is iterated once, so rows may be made as they are written. ``unchanged`` names
        (entity, retriever) pairs read again at ``at`` with the values last written for them.
        """
        ...

    def distrust(self) -> None:
        """Forget what this process believes is stored: another writer may have written."""
        ...

    def forget(self, entities_kept: Collection[str]) -> int:
        """Drop the latest results of entities no longer in the catalog; returns rows deleted."""
        ...

    def record_run(self, run: RunRow) -> None:
        """Keep ``run`` as the latest run (older runs keep their figures, not their report)."""
        ...

    def last_run(self) -> RunRow | None:
        """The latest run kept, whichever replica ran it; None before the first."""
        ...

    def runs(self, since: datetime) -> list[RunRow]:
        """The runs kept from ``since`` on, oldest first (their reports empty but the last's)."""
        ...

    def latest_facts(self, entity: str, retrievers: Sequence[str]) -> dict[str, FactRow]:
        """Each retriever's latest facts for ``entity``, stamped with the latest reading."""
        ...

    def facts_range(
        self, entity: str, retrievers: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, list[FactRow]]:
        """The changes of ``entity``'s facts with ``start <= timestamp <= end``, oldest first."""
        ...

    def latest_results(self, entities: Sequence[str] | None = None) -> dict[str, list[ResultRow]]:
        """Latest results by entity (each list sorted by check id); None means every entity."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class Lease(Protocol):
    """Port: the right to run the scorer, held by one replica at a time.

    Replicas sharing a fact store each ask before every run; only the holder runs. A
    holder that dies (or whose hold the lease's store dropped) loses it, and the next replica
    to ask takes it. Never raises: a store that cannot be reached means "not held".
    """

    name: str

    @property
    def held(self) -> bool:
        """Whether this replica held the lease when last asked (no I/O)."""
        ...

    def try_acquire(self) -> bool:
        """Hold the lease if it is free, or check that it is still held; whether held now."""
        ...

    def release(self) -> None:
        """Give the lease up, so another replica takes it at its next try."""
        ...


@dataclass(frozen=True, slots=True)
class RenderedFile:
    """One file of a rendered repository."""

    path: str
    content: bytes
    executable: bool


@dataclass(frozen=True, slots=True)
class Rendering:
    """A whole rendered repository, held in memory: its files and the version rendered."""

    blueprint: str
    version: str
    files: tuple[RenderedFile, ...]


class RecordedRelease(Protocol):
    """One release of a blueprint recorded in its source: its version and its commit."""

    @property
    def version(self) -> str:
        """The PEP 440 version."""
        ...

    @property
    def commit(self) -> str:
        """The commit that made the release."""
        ...


class TemplateSource(Protocol):
    """Port: the blueprints of one Copier source, their releases, and rendering them.

    Methods raise ``SourceUnavailable`` when the source cannot be read, ``ConfigError`` for
    a name that cannot be a blueprint and ``AnswerError`` for an unknown one or bad answers.
    """

    def names(self) -> list[str]:
        """Every blueprint that has a template folder."""
        ...

    def blueprint(self, name: str, *, ref: str | None = None) -> Blueprint:
        """A blueprint's questions and presentation (at ``ref``, where versions differ)."""
        ...

    def render(
        self,
        blueprint: str,
        destination: Path,
        answers: Mapping[str, Any],
        *,
        defaults: bool,
        vcs_ref: str | None = None,
    ) -> Path:
        """Render ``blueprint`` into ``destination`` (no tasks, no migrations)."""
        ...

    def render_files(
        self, blueprint: str, answers: Mapping[str, Any], *, vcs_ref: str | None = None
    ) -> Rendering:
        """Render in a scratch folder and return the files."""
        ...

    def releases(self, blueprint: str) -> Sequence[RecordedRelease]:
        """The releases of ``blueprint``, oldest first."""
        ...

    def versions(self, blueprint: str) -> list[str]:
        """The final releases of ``blueprint`` an update can move to, oldest first."""
        ...

    def versions_by_blueprint(self) -> dict[str, list[str]]:
        """Each blueprint's final releases, oldest first."""
        ...

    def tag_warnings(self, blueprint: str) -> list[str]:
        """Version tags of the source that disagree with its releases of ``blueprint``."""
        ...

    def changelog(self, blueprint: str, *, ref: str | None = None) -> str:
        """A blueprint's changelog at ``ref`` (default: HEAD); empty when it has none."""
        ...

    def updating(self, blueprint: str) -> AbstractContextManager[dict[str, str]]:
        """The git environment in which ``copier update`` finds every release as a tag."""
        ...


class CookiecutterTemplate(Protocol):
    """Port: one cookiecutter template, its versions (tags) and renders with given answers.

    Renders raise ``ConfigError`` for an untrusted template that would run code,
    ``AnswerError`` for answers it cannot take, ``TimedOut`` past its deadline and
    ``SourceUnavailable`` when the template or its command fails.
    """

    @property
    def name(self) -> str:
        """The blueprint name it is registered under (or a name derived from its URL)."""
        ...

    @property
    def template_url(self) -> str:
        """What ``.cruft.json`` records as ``template``."""
        ...

    def versions(self) -> list[str]:
        """The final version tags, oldest first."""
        ...

    def version_of(self, commit: str) -> str | None:
        """The version whose tag points at ``commit``."""
        ...

    def blueprint(self, ref: str | None = None) -> Blueprint:
        """The template's questions at ``ref`` (default: the configured or newest version)."""
        ...

    def render_tree(
        self, answers: Mapping[str, Any], *, ref: str
    ) -> tuple[dict[str, RenderedFile], CruftRecord]:
        """The files rendered at ``ref`` for ``answers`` (defaults fill the rest); the record."""
        ...


class CruftCheckouts(Protocol):
    """Port: the working tree of a repository recorded in ``.cruft.json``.

    Raise ``ConfigError`` for a record that is missing or malformed and for a path outside
    the repository.
    """

    def is_checkout(self, repo: Path) -> bool:
        """Whether ``repo`` is the top of a git working tree."""
        ...

    def is_dirty(self, repo: Path) -> bool:
        """Whether the checkout has uncommitted changes or untracked files."""
        ...

    def read_record(self, location: str) -> CruftRecord:
        """The ``.cruft.json`` of a checkout or of a repository's raw-file base URL."""
        ...

    def write_record(self, repo: Path, record: CruftRecord) -> None:
        """Write ``.cruft.json`` as cruft writes it."""
        ...

    def files(self, repo: Path) -> dict[str, RenderedFile]:
        """Every file git tracks in the checkout, by path."""
        ...

    def write(self, repo: Path, file: RenderedFile) -> None:
        """Write one file (content and executable bit), making its folders."""
        ...

    def delete(self, repo: Path, path: str) -> None:
        """Remove one file."""
        ...

    def merge(
        self, ours: bytes, base: bytes, theirs: bytes, labels: tuple[str, str, str]
    ) -> tuple[bytes, bool]:
        """A three-way merge of one file's contents, and whether it left conflict markers."""
        ...


class SnapshotStore(Protocol):
    """Port: the last good snapshot, kept across restarts."""

    set_aside: list[SetAside]
    """Unreadable files renamed when loading, for ``/readyz``."""

    def load(self) -> Snapshot | None:
        """The kept snapshot; None when there is none or it cannot be read."""
        ...

    def save(self, snapshot: Snapshot) -> None:
        """Keep ``snapshot`` in place of the one kept."""
        ...


class GeneratedRepositories(Protocol):
    """Port: the repositories generated from blueprints, read and updated where they live.

    A location is a local checkout or the http(s) base URL of a repository's raw files;
    updates need a checkout. Reads raise ``ConfigError`` for a repository that was not
    generated from a blueprint and ``SourceUnavailable`` for one that cannot be read.
    """

    def read_instance(self, location: str, *, entity: bool = True) -> BlueprintInstance:
        """The blueprint, version and source the repository records (and its entity ref)."""
        ...

    def read_answers(self, repo: Path) -> dict[str, Any]:
        """The answers file of a checkout, as a mapping."""
        ...

    def is_checkout(self, repo: Path) -> bool:
        """Whether ``repo`` is inside a git working tree."""
        ...

    def is_dirty(self, repo: Path) -> bool:
        """Whether the checkout has uncommitted changes or untracked files."""
        ...

    def conflicted_files(self, repo: Path) -> list[str]:
        """Files an earlier update left unmerged or holding conflict markers."""
        ...

    def run_update(
        self, repo: Path, *, to: str | None = None, git_env: Mapping[str, str] | None = None
    ) -> list[str]:
        """``copier update`` of a clean checkout to ``to``; the files left in conflict."""
        ...

    def close(self) -> None:
        """Release the HTTP connections to the repositories' hosts."""
        ...


class RenderPool(Protocol):
    """Port: renders run apart from the server, a bounded number at once, each with a deadline.

    ``run`` raises ``TimeoutError`` past ``timeout_seconds`` and ``Busy`` when the queue is
    full; ``running`` and ``waiting`` feed the render gauges.
    """

    timeout_seconds: float
    running: int
    waiting: int

    async def run(self, job: Callable[..., _T], *args: Any) -> _T:
        """``job(*args)`` in a worker; its result, or its exception raised here."""
        ...

    def close(self) -> None:
        """Stop every worker still running."""
        ...
