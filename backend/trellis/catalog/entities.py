"""Registered models as Backstage entities: a pure function of a registry snapshot.

Each registered model becomes one ``Resource`` of ``spec.type: ai-model`` (the mapping Red
Hat Developer Hub's model catalog uses), and each ``system`` tag one ``System``. Every
entity is validated before it is returned; one that cannot be made valid is left out and
reported as a problem, because one invalid entity freezes a whole Backstage location.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from trellis.catalog import annotations as ann
from trellis.catalog.names import entity_names, fold_name, fold_tag, is_valid_name
from trellis.catalog.validation import entity_problems
from trellis.model import ModelTags, RegisteredModel, Snapshot

__all__ = [
    "AI_MODEL",
    "Catalog",
    "CatalogOptions",
    "Naming",
    "Problem",
    "build_catalog",
    "model_resource",
]

API_VERSION = "backstage.io/v1alpha1"
AI_MODEL = "ai-model"
PRODUCTION = "production"
EXPERIMENTAL = "experimental"
_REF = re.compile(r"^(?:(?P<kind>[^:/]+):)?(?:(?P<ns>[^:/]+)/)?(?P<name>.+)$")
_GITHUB = re.compile(
    r"^https://github\.com/(?P<slug>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+?)(?:\.git)?/?$"
)
_KIND_ORDER = {"System": 0, "Resource": 1}

Entity = dict[str, Any]


@dataclass(frozen=True, slots=True)
class CatalogOptions:
    """Choices an adopter makes about the entities; built from settings by the app."""

    namespace: str = "default"
    fallback_owner: str = "group:default/ml-platform"
    emit_systems: bool = True
    mlflow_ui_url: str | None = None


@dataclass(frozen=True, slots=True)
class Problem:
    """Something about a model's entity that an adopter should know about."""

    model: str
    entity: str | None
    severity: Literal["error", "warning"]
    message: str


@dataclass(frozen=True, slots=True)
class Naming:
    """Entity names decided for the whole snapshot at once (collisions need the whole set)."""

    models: Mapping[str, str]
    systems: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Catalog:
    """The entities to emit, in a stable order, and what went wrong making them."""

    entities: tuple[Entity, ...]
    problems: tuple[Problem, ...]


ResourceTransformer = Callable[[RegisteredModel, Naming, CatalogOptions, list[Problem]], Entity]


def build_catalog(
    snapshot: Snapshot,
    options: CatalogOptions,
    transform: ResourceTransformer | None = None,
) -> Catalog:
    """Map a snapshot to entities; the same snapshot always gives the same entities."""
    transform = transform or model_resource
    naming = Naming(
        models=entity_names(m.name for m in snapshot.models),
        systems=entity_names(
            _clean(m.tags[ModelTags.SYSTEM].strip())
            for m in snapshot.models
            if m.tags.get(ModelTags.SYSTEM, "").strip()
        ),
    )
    problems: list[Problem] = []
    resources = [transform(model, naming, options, problems) for model in snapshot.models]
    systems = _systems(resources, naming, options) if options.emit_systems else []
    entities: list[Entity] = []
    for entity in systems + resources:
        errors = entity_problems(entity)
        if errors:
            title = str(entity.get("metadata", {}).get("title", ""))
            problems.append(Problem(title, _ref(entity), "error", "; ".join(errors)))
        else:
            entities.append(entity)
    entities.sort(key=lambda e: (_KIND_ORDER.get(e["kind"], 9), e["metadata"]["name"]))
    problems.sort(key=lambda p: (p.model, p.severity, p.message))
    return Catalog(entities=tuple(entities), problems=tuple(problems))


def model_resource(
    model: RegisteredModel, naming: Naming, options: CatalogOptions, problems: list[Problem]
) -> Entity:
    """The default transformer: one ``Resource`` of type ``ai-model`` for a model."""
    name = naming.models[model.name]
    ref = f"resource:{options.namespace}/{name}"
    tags = model.tags
    champion = model.version_for_alias(ModelTags.CHAMPION)
    repo = _http_url(tags.get(ModelTags.SOURCE_REPO, ""))
    metadata: Entity = {
        "name": name,
        "namespace": options.namespace,
        "title": _clean(model.name),
    }
    if model.description.strip():
        metadata["description"] = _clean(model.description.strip())
    backstage_tags = _tags(model, ref, problems)
    if backstage_tags:
        metadata["tags"] = backstage_tags
    metadata["annotations"] = _annotations(model, champion, repo)
    links = _links(model, champion, repo, options)
    if links:
        metadata["links"] = links

    spec: Entity = {
        "type": AI_MODEL,
        "owner": _owner(model, ref, options, problems),
        "lifecycle": PRODUCTION if champion is not None else EXPERIMENTAL,
    }
    system = tags.get(ModelTags.SYSTEM, "").strip()
    if system:
        spec["system"] = f"system:{options.namespace}/{naming.systems[_clean(system)]}"
    return {"apiVersion": API_VERSION, "kind": "Resource", "metadata": metadata, "spec": spec}


def _annotations(model: RegisteredModel, champion: int | None, repo: str | None) -> dict[str, str]:
    annotations = {ann.REGISTERED_MODEL: _clean(model.name)}
    if model.latest_version is not None:
        annotations[ann.LATEST_VERSION] = str(model.latest_version)
    if champion is not None:
        annotations[ann.CHAMPION_VERSION] = str(champion)
    for key, annotation in (
        (ModelTags.DATA_CLASSIFICATION, ann.DATA_CLASSIFICATION),
        (ModelTags.TRAINING_REGION, ann.TRAINING_REGION),
        (ModelTags.BLUEPRINT, ann.BLUEPRINT),
        (ModelTags.BLUEPRINT_VERSION, ann.BLUEPRINT_VERSION),
    ):
        value = model.tags.get(key, "").strip()
        if value:
            annotations[annotation] = _clean(value)
    if repo:
        annotations[ann.SOURCE_LOCATION] = f"url:{repo}"
        annotations[ann.TECHDOCS_REF] = f"url:{repo}"
        github = _GITHUB.match(repo)
        if github:
            annotations[ann.GITHUB_PROJECT_SLUG] = github["slug"]
    return dict(sorted(annotations.items()))


def _systems(resources: list[Entity], naming: Naming, options: CatalogOptions) -> list[Entity]:
    """One System per system tag, owned by whoever owns most of its models."""
    owners: dict[str, Counter[str]] = defaultdict(Counter)
    for resource in resources:
        system = resource.get("spec", {}).get("system")
        if system:
            owners[system][resource["spec"]["owner"]] += 1
    entities = []
    for original, name in sorted(naming.systems.items(), key=lambda item: item[1]):
        ref = f"system:{options.namespace}/{name}"
        counts = owners.get(ref)
        if not counts:
            continue
        owner = min(counts, key=lambda o: (-counts[o], o))
        entities.append(
            {
                "apiVersion": API_VERSION,
                "kind": "System",
                "metadata": {
                    "name": name,
                    "namespace": options.namespace,
                    "title": original,
                    "description": f"Machine-learning models of the {original} system.",
                },
                "spec": {"owner": owner},
            }
        )
    return entities


def _owner(
    model: RegisteredModel, ref: str, options: CatalogOptions, problems: list[Problem]
) -> str:
    """The ``owner`` tag as a full entity reference (Group unless it names a kind)."""
    raw = _clean(model.tags.get(ModelTags.OWNER, "").strip())
    if not raw:
        return options.fallback_owner
    match = _REF.match(raw)
    kind = (match["kind"] or "group").lower() if match else "group"
    if kind not in {"group", "user"}:
        kind = "group"
    namespace = fold_name(match["ns"] or options.namespace) if match else options.namespace
    name = fold_name(match["name"]) if match else ""
    if not name or not is_valid_name(name) or not namespace:
        problems.append(
            Problem(
                model.name,
                ref,
                "warning",
                f"owner tag {raw!r} is unusable; using {options.fallback_owner}",
            )
        )
        return options.fallback_owner
    owner = f"{kind}:{namespace}/{name}"
    if match and (match["name"] != name or (match["ns"] and match["ns"] != namespace)):
        problems.append(Problem(model.name, ref, "warning", f"owner tag {raw!r} read as {owner}"))
    return owner


def _tags(model: RegisteredModel, ref: str, problems: list[Problem]) -> list[str]:
    values = [model.tags.get(ModelTags.FRAMEWORK, ""), model.tags.get(ModelTags.TASK, "")]
    values += model.tags.get(ModelTags.TAGS, "").split(",")
    result = set()
    for value in filter(None, (v.strip() for v in values)):
        tag = fold_tag(value)
        if tag is None:
            problems.append(Problem(model.name, ref, "warning", f"tag {value!r} left out"))
        else:
            result.add(tag)
    return sorted(result)


def _links(
    model: RegisteredModel, champion: int | None, repo: str | None, options: CatalogOptions
) -> list[Entity]:
    links: list[Entity] = []
    if options.mlflow_ui_url:
        page = f"{options.mlflow_ui_url}/#/models/{quote(model.name, safe='')}"
        links.append({"url": page, "title": "MLflow registry", "icon": "dashboard"})
        if champion is not None:
            links.append(
                {"url": f"{page}/versions/{champion}", "title": f"Champion (version {champion})"}
            )
    if repo:
        links.append({"url": repo, "title": "Source repository", "icon": "github"})
    return links


def _http_url(value: str) -> str | None:
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme in {"http", "https"} and parts.netloc and not any(c.isspace() for c in value):
        return value.rstrip("/")
    return None


def _clean(text: str) -> str:
    """Text that encodes as UTF-8 and that YAML readers accept (no lone surrogates, no NUL)."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")


def _ref(entity: Mapping[str, Any]) -> str | None:
    metadata = entity.get("metadata") or {}
    kind, name = entity.get("kind"), metadata.get("name")
    if not kind or not name:
        return None
    return f"{str(kind).lower()}:{metadata.get('namespace', 'default')}/{name}"
