"""A small fleet to score against fakes: two models, one server, tiny scorecard definitions.

``fraud`` has an owner and a champion (version 1) served by ``fraud-eu``; ``orphan`` has
neither. The definitions check ownership and the champion's signature of models, and the
error ratio of servers, so each source's failure shows in exactly one check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from support.domain import model_server, registered_model
from support.fakes import FakePrometheus, FakeRegistry, labels
from trellis.catalog import CatalogOptions
from trellis.model import BlueprintInstance, ChampionDetails, ClusterRead, Sample, Snapshot
from trellis.observability.fleet import plan_fleet_queries
from trellis.ports import Lease
from trellis.services.catalog_refresh import build_document
from trellis.services.scaffolding import Survey
from trellis.services.scoring.options import ScoringOptions
from trellis.services.scoring.pipeline import OneRead
from trellis.services.scoring.scorer import Scorer
from trellis.sources.fact_store import FactStore

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
MODEL = "resource:default/fraud"
ORPHAN = "resource:default/orphan"
OPTIONS = ScoringOptions()

FRAUD = registered_model("fraud", tags={"owner": "risk"}, aliases={"champion": 1})
ORPHANED = registered_model("orphan")
SERVER = replace(model_server("eu", "fraud-eu"), model_name="fraud")
DETAILS = ChampionDetails("fraud", 1, has_signature=True, datasets=("s3://d",), metrics={})

DEFINITIONS = {
    "models.yaml": """\
name: models
title: Models
description: Ownership and signature.
filter: {kind: Resource, spec.type: ai-model}
checks:
  - id: has-owner
    type: json-rules-engine
    name: Has an owner
    description: The owner tag is set.
    factIds: [mlflow-registry]
    level: bronze
    rule: {conditions: {all: [{fact: hasOwner, operator: equal, value: true}]}}
  - id: has-signature
    type: json-rules-engine
    name: Has a signature
    description: The champion is signed.
    factIds: [mlflow-registry]
    level: silver
    rule: {conditions: {all: [{fact: hasSignature, operator: equal, value: true}]}}
""",
    "servers.yaml": """\
name: servers
title: Servers
description: Errors.
filter: {kind: Component, spec.type: model-server}
checks:
  - id: few-errors
    type: json-rules-engine
    name: Few errors
    description: Under 1% of requests fail.
    factIds: [prometheus-serving]
    level: bronze
    rule: {conditions: {all: [{fact: errorRatio, operator: lessThan, value: 0.01}]}}
""",
    "repositories.yaml": """\
name: repositories
title: Repositories
description: Blueprint currency.
filter: {kind: Component, annotations: [trellis.dev/blueprint]}
checks:
  - id: up-to-date
    type: json-rules-engine
    name: Up to date
    description: On the latest release.
    factIds: [blueprint]
    level: gold
    rule:
      conditions:
        all: [{fact: blueprint, path: $.versionsBehind, operator: equal, value: 0}]
""",
}


def write_definitions(directory: Path) -> Path:
    """The scene's definitions, written into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in DEFINITIONS.items():
        (directory / name).write_text(text)
    return directory


def error_ratio(value: float) -> dict[str, list[Sample]]:
    """Canned fleet answers: ``fraud-eu``'s error ratio, nothing else."""
    query = next(q for q in plan_fleet_queries(3_600, 86_400) if q.fact == "errorRatio")
    return {query.promql: [Sample(labels("ml", "fraud-eu", "eu"), NOW.timestamp(), value)]}


@dataclass
class FakeScaffolder:
    """The blueprint survey port: the repositories and releases the test sets, or a failure."""

    survey_answer: Survey | None = None
    failing: Exception | None = None
    surveys: int = 0

    def survey(self) -> Survey:
        self.surveys += 1
        if self.failing is not None:
            raise self.failing
        assert self.survey_answer is not None
        return self.survey_answer


def repository_survey(version: str, releases: tuple[str, ...]) -> Survey:
    """One generated repository, ``team/app``, on ``version`` of ``ml-model``."""
    instance = BlueprintInstance(
        location="https://git.example/team/app",
        blueprint="ml-model",
        version=version,
        source="https://git.example/trellis",
        entity_ref="component:team/app",
    )
    fact = {"blueprint": "ml-model", "version": version, "latestVersion": releases[-1],
            "versionsBehind": len(releases) - 1 - releases.index(version)}  # fmt: skip
    return Survey(instances=(instance,), facts={instance.location: fact}, problems=(), versions={})


@dataclass
class Scene:
    """The fakes a scorer of the scene reads, and where it keeps its results."""

    tmp_path: Path
    registry: FakeRegistry = field(
        default_factory=lambda: FakeRegistry(
            models=(FRAUD, ORPHANED), details={("fraud", 1): DETAILS}
        )
    )
    prometheus: FakePrometheus | None = field(
        default_factory=lambda: FakePrometheus(samples=error_ratio(0.5))
    )
    scaffolder: FakeScaffolder | None = None
    failed_cluster: str | None = None

    @property
    def directory(self) -> Path:
        return self.tmp_path / "scorecards"

    @property
    def database(self) -> str:
        return f"sqlite:///{self.tmp_path / 'scorecards.db'}"

    def catalog(self) -> OneRead:
        read = self.registry.read()
        clusters = {"eu": ClusterRead("eu", self.failed_cluster is None, NOW, self.failed_cluster)}
        snapshot: Snapshot = replace(read, deployments=(SERVER,), clusters=clusters)
        return OneRead(self.registry, build_document(snapshot, CatalogOptions()), snapshot)

    def scorer(
        self,
        store: FactStore | None = None,
        lease: Lease | None = None,
        recorded: Callable[[], frozenset[str]] = frozenset,
        **options: object,
    ) -> Scorer:
        if not self.directory.exists():
            write_definitions(self.directory)
        return Scorer(
            catalog=self.catalog(),
            store=store or FactStore(self.database),
            directory=self.directory,
            options=replace(OPTIONS, **options),
            prometheus=self.prometheus,
            scaffolder=self.scaffolder,
            clock=lambda: NOW,
            lease=lease,
            replica=getattr(lease, "replica", None),
            recorded=recorded,
        )


def server_ref(scorer: Scorer) -> str:
    """The ref of ``fraud-eu``'s Component, as the catalog names it."""
    refs = [r for r in scorer.pipeline.catalog.document().targets if r.startswith("component:")]
    assert len(refs) == 1, refs
    return refs[0]


def outcomes(scorer: Scorer, ref: str) -> dict[str, str]:
    """Each kept check outcome of ``ref``."""
    kept, _ = scorer.queries.kept([ref])
    return {check: outcome.outcome.value for check, outcome in kept.get(ref, {}).items()}
