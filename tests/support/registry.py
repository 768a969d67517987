"""Seed real MLflow registries: ordinary fleets and hostile names and tags."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    tags: dict[str, str] = field(default_factory=dict)
    versions: int = 1
    champion: int | None = None
    description: str = ""


def client(uri: str):
    from mlflow import MlflowClient

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
