"""Seed real MLflow registries: ordinary fleets and hostile names and tags."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

#: Where the migrated empty registry new SQLite registries are copied from (see
#: :func:`keep_template_in`); None: MLflow migrates each new file itself.
_template_dir: Path | None = None


@dataclass(frozen=True)
class ModelSpec:
    name: str
    tags: dict[str, str] = field(default_factory=dict)
    versions: int = 1
    champion: int | None = None
    description: str = ""


def keep_template_in(directory: Path) -> None:
    """Copy new SQLite registries from one migrated empty registry kept in ``directory``.

    MLflow makes a new database by running every one of its schema migrations, seconds of CPU
    each time; a copy of one migrated file is the same database. ``directory`` may be shared
    by concurrent test processes: the template is made once, under a file lock.
    """
    global _template_dir
    _template_dir = directory


def new_sqlite_registry(db: Path) -> None:
    """Make ``db`` an empty registry, as MLflow would, unless it exists or no template is kept.

    The template has no Default experiment: MLflow adds it when it first opens the copy, with
    the artifact root of whoever opens it (a client, or a server's ``--default-artifact-root``).
    """
    if _template_dir is None or db.exists():
        return
    import mlflow

    template = _template_dir / f"mlflow-{mlflow.__version__}-empty.db"
    with FileLock(f"{template}.lock"):
        if not template.exists():
            _migrate(template)
    db.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, db)


def _migrate(template: Path) -> None:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    partial = template.with_name(template.name + ".partial")
    partial.unlink(missing_ok=True)
    SqlAlchemyStore(f"sqlite:///{partial}", str(template.parent / "unused")).engine.dispose()
    with closing(sqlite3.connect(partial)) as conn, conn:
        conn.execute("DELETE FROM experiments WHERE experiment_id = 0")
    partial.rename(template)


def client(uri: str):
    from mlflow import MlflowClient

    if uri.startswith("sqlite:///"):
        new_sqlite_registry(Path(uri.removeprefix("sqlite:///")))
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def seed(uri: str, specs: Iterable[ModelSpec], *, skip_refused: bool = False) -> list[ModelSpec]:
    """Create each model with its tags, versions (dummy s3 sources) and champion alias.

    With ``skip_refused``, names MLflow itself refuses (``/``, ``:``, path-like names) are
    skipped; the models that were created are returned.
    """
    from mlflow.exceptions import MlflowException

    mlflow = client(uri)
    created = []
    for spec in specs:
        try:
            mlflow.create_registered_model(spec.name, tags=spec.tags, description=spec.description)
        except MlflowException:
            if not skip_refused:
                raise
            continue
        for number in range(1, spec.versions + 1):
            mlflow.create_model_version(
                spec.name,
                source=f"s3://models/{abs(hash(spec.name))}/{number}",
                tags={"git_commit": f"{number:040x}"},
            )
        if spec.champion:
            mlflow.set_registered_model_alias(spec.name, "champion", str(spec.champion))
        created.append(spec)
    return created


def fleet(count: int, *, prefix: str = "model") -> list[ModelSpec]:
    """An ordinary fleet: owners, systems and champions spread over the models."""
    return [
        ModelSpec(
            name=f"{prefix}-{i:05d}",
            tags={
                "owner": f"group:default/team-{i % 7}",
                "system": f"system-{i % 5}",
                "data_classification": ("public", "internal", "confidential")[i % 3],
                "framework": "sklearn",
            },
            versions=3,
            champion=2 if i % 2 == 0 else None,
            description=f"Model number {i}.",
        )
        for i in range(count)
    ]


_BASES = [
    "Fraud Model",
    "fraud model",
    "FRAUD MODEL",
    "fraud_model",
    "fraud.model",
    "fraud-model",
    "fraud--model",
    "Fraud-Model",
    "fraud model!",
    "¡fraud model!",
    "Façade Détection",
    "facade detection",
    "Ünïcödé Name",
    "名前のモデル",
    "модель оттока",
    "نموذج الاحتيال",
    "\u202eright-to-left override",
    "zero\u200bwidth\u200bspace",
    "combining e\u0301 accent",
    "🔥",
    "🔥🔥",
    "model 🚀 rocket",
    "!!!",
    "———",
    "...x...",
    "-leading-dash",
    "trailing-dash-",
    "_underscore_",
    ".dot.",
    "   spaces around   ",
    "tab\tseparated",
    "new\nline",
    "back\\slash",
    "percent%2Fslash",
    "division\u2215slash",
    "fullwidth\uff0fslash",
    "quote's",
    'double "quoted"',
    "semi;colon",
    "brace{s}",
    "<script>alert(1)</script>",
    "$(rm -rf /)",
    "a",
    "A",
    "1",
    "0.1.2",
    "ends.with.dot.",
    "x" * 63,
    "x" * 64,
    "y" * 200,
    "y" * 200 + "z",
    "long " * 50,
    "long " * 50 + "!",
    "name with \x00 nul",
]


def hostile_specs(minimum: int = 300) -> list[ModelSpec]:
    """At least ``minimum`` models with hostile names and tags, deterministic.

    A few names here are refused by MLflow itself; seed them with ``skip_refused``.
    """
    names: list[str] = []
    seen: set[str] = set()
    suffixes = ["", " v2", " (copy)", "_final", " FINAL", "-🔥", " ümlaut", "." * 3]
    for suffix in suffixes:
        for base in _BASES:
            name = base + suffix
            if name not in seen:
                seen.add(name)
                names.append(name)
    i = 0
    while len(names) < minimum:
        name = f"Generated Model #{i} — variant/{i % 3}".replace("/", "\u2215")
        names.append(name)
        i += 1
    tags_cycle = [
        {"owner": "Risk ML 🔥", "system": "Payments & Cards", "tags": "🔥,a b,,UPPER,x" * 3},
        {"owner": "group:Default/Some Team", "system": "名前", "tags": "ok,also-ok"},
        {"owner": "!!!", "system": "   ", "data_classification": "conf\nidential"},
        {"owner": "user:jdoe", "source_repo": "javascript:alert(1)", "framework": "Sk Learn"},
        {"owner": "", "source_repo": "https://github.com/acme/repo name"},
        {"owner": "component:x", "source_repo": "https://github.com/acme/real-repo"},
        {"system": "x" * 100, "task": "Class/ification", "training_region": "eu-west-1 🔥"},
        {},
    ]
    return [
        ModelSpec(
            name=name,
            tags=tags_cycle[index % len(tags_cycle)],
            versions=1 + index % 2,
            champion=1 if index % 3 == 0 else None,
            description="hostile: " + name[:40],
        )
        for index, name in enumerate(names)
    ]


def seed_lineage(uri: str, base: str, adapters: dict[str, str]) -> None:
    """An imported open model ``base`` and, per region, an adapter of it, tagged per contract.

    ``adapters`` maps each adapter's registered-model name to its data region. Tags are the
    ones the `llm-service` import and the `edge-finetune` job write (``trellis.model.ModelTags``);
    artifact sources are dummy URIs, since the catalog never reads the files.
    """
    from trellis.model import ModelTags as T

    mlflow = client(uri)
    revision, digest = "a" * 40, "b" * 64
    upstream = {T.UPSTREAM: "hf://acme/tiny-llm", T.UPSTREAM_REVISION: revision,
                T.LICENSE: "apache-2.0"}  # fmt: skip
    mlflow.create_registered_model(
        base,
        tags={**upstream, T.MODEL_KIND: "base", T.FRAMEWORK: "transformers",
              T.TASK: "text-generation", T.OWNER: "llm-platform", T.SYSTEM: "assistants",
              T.DATA_CLASSIFICATION: "public"},
    )  # fmt: skip
    mlflow.create_model_version(
        base, source="s3://hub/model", tags={**upstream, T.SIZE_BYTES: "1024", T.SHA256: digest}
    )
    mlflow.set_registered_model_alias(base, T.CHAMPION, "1")
    for name, region in adapters.items():
        lineage = {T.PARENT_MODEL: base, T.DATA_REGION: region, T.TRAINING_REGION: region,
                   T.DATA_CLASSIFICATION: "restricted", T.METHOD: "lora"}  # fmt: skip
        mlflow.create_registered_model(
            name,
            tags={**lineage, T.MODEL_KIND: "adapter", T.FRAMEWORK: "transformers",
                  T.TASK: "text-generation", T.OWNER: "llm-platform"},
        )  # fmt: skip
        for version, gate in enumerate(("passed", "failed"), start=1):
            mlflow.create_model_version(
                name,
                source=f"s3://{region}/adapter/{version}",
                tags={**lineage, T.PARENT_VERSION: "1", T.DATASET_FINGERPRINT: f"{version:064x}",
                      T.GATE: gate, "eval_score": "0.7"},
            )  # fmt: skip
        mlflow.set_registered_model_alias(name, T.CHAMPION, "1")
