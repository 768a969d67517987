"""Registered models and their servers as Backstage entities: a pure function of a snapshot.

Each registered model becomes one ``Resource`` of ``spec.type: ai-model`` (the mapping Red
Hat Developer Hub's model catalog uses), each ``system`` tag one ``System``, and each model
server found in Kubernetes a ``Component`` of ``spec.type: model-server`` with the ``API`` it
provides (``catalog/servers.py``); an adapter's Resource depends on its base model's
(``catalog/lineage.py``). Every entity is validated before it is returned; one that
cannot be made valid is left out and reported as a problem, because one invalid entity
freezes a whole Backstage location.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from trellis import annotations as ann
from trellis.catalog.common import Entity, Problem, clean
from trellis.catalog.lineage import lineage_annotations, link_lineage
from trellis.catalog.names import entity_names, fold_name, fold_tag, is_valid_name
from trellis.catalog.servers import (
    ModelEntity,
    ServerEntities,
    model_finder,
    served_annotations,
    server_entities,
)
from trellis.catalog.validation import entity_problems
from trellis.entity_refs import ref_of, stringify_ref
from trellis.model import Deployment, ModelTags, RegisteredModel, Snapshot
from trellis.redact import scrub_url, url_base

__all__ = [
    "AI_MODEL",
    "Catalog",
    "CatalogOptions",
    "Naming",
    "Problem",
    "Target",
    "build_catalog",
    "model_resource",
    "system_tag",
]

AI_MODEL = "ai-model"
PRODUCTION = "production"
EXPERIMENTAL = "experimental"
_REF = re.compile(r"^(?:(?P<kind>[^:/]+):)?(?:(?P<ns>[^:/]+)/)?(?P<name>.+)$")
_GITHUB = re.compile(
    r"^https://github\.com/(?P<slug>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+?)(?:\.git)?/?$"
)
_KIND_ORDER = {"System": 0, "Resource": 1, "API": 2, "Component": 3}


@dataclass(frozen=True, slots=True)
class CatalogOptions:
    """Choices an adopter makes about the entities; built from settings by the app."""

    namespace: str = "default"
    fallback_owner: str = "group:default/ml-platform"
    emit_systems: bool = True
    mlflow_ui_url: str | None = None


@dataclass(frozen=True, slots=True)
class Naming:
    """Entity names decided for the whole snapshot at once (collisions need the whole set)."""

    models: Mapping[str, str]
    systems: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Target:
    """What an entity ref stands for: a registered model and the servers behind it.

    A model's ``Resource`` stands for the model and all of its servers; a server's
    ``Component`` for its one server and the model it serves (None when it serves no
    registered model).
    """

    model: RegisteredModel | None
    deployments: tuple[Deployment, ...] = ()


@dataclass(frozen=True, slots=True)
class Catalog:
    """The entities to emit, in a stable order, and what went wrong making them.

    ``targets`` maps the ref (``resource:ns/name``, ``component:ns/name``) of every emitted
    model Resource and model-server Component to what it stands for.
    """

    entities: tuple[Entity, ...]
    problems: tuple[Problem, ...]
    targets: Mapping[str, Target] = field(default_factory=dict)


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
        systems=entity_names(tag for m in snapshot.models if (tag := system_tag(m))),
    )
    problems: list[Problem] = []
    resources = [transform(model, naming, options, problems) for model in snapshot.models]
    find = model_finder(snapshot.models, naming.models)
    link_lineage(snapshot.models, resources, find, problems)
    linked = [find(deployment.model_name) for deployment in snapshot.deployments]
    served, as_adapter = _servers_by_model(snapshot.deployments, linked, find)
    by_model: dict[str, ModelEntity] = {}
    for model, resource in zip(snapshot.models, resources, strict=True):
        extra = served_annotations(
            model, served.get(model.name, ()), as_adapter.get(model.name, ())
        )
        _annotate(resource, extra)
        by_model[model.name] = _model_entity(model, resource, options)
    servers = server_entities(
        snapshot.deployments,
        [by_model.get(m.name) if m is not None else None for m in linked],
        namespace=options.namespace,
        fallback_owner=options.fallback_owner,
        problems=problems,
        adapters=[_adapter_entities(d, find, by_model) for d in snapshot.deployments],
    )
    systems = _systems(resources, naming, options) if options.emit_systems else []
    entities: list[Entity] = []
    targets: dict[str, Target] = {}
    for model, resource in zip(snapshot.models, resources, strict=True):
        if _valid(resource, problems):
            entities.append(resource)
            ref = ref_of(resource)
            if ref:
                serving = (*served.get(model.name, ()), *as_adapter.get(model.name, ()))
                targets[ref] = Target(model, serving)
    return _completed(entities, systems, servers, problems, targets)


def _completed(
    entities: list[Entity],
    systems: Sequence[Entity],
    servers: Sequence[ServerEntities],
    problems: list[Problem],
    targets: dict[str, Target],
) -> Catalog:
    """The catalog from its valid model entities: valid Systems and servers added, in order."""
    entities += [system for system in systems if _valid(system, problems)]
    for server in servers:
        if _valid_pair(server, problems):
            entities += [server.component, server.api]
            ref = ref_of(server.component)
            if ref:
                served_model = server.model.model if server.model else None
                targets[ref] = Target(served_model, (server.deployment,))
    entities.sort(key=lambda e: (_KIND_ORDER.get(e["kind"], 9), e["metadata"]["name"]))
    problems.sort(key=lambda p: (p.model, p.severity, p.message))
    return Catalog(entities=tuple(entities), problems=tuple(problems), targets=targets)


def _servers_by_model(
    deployments: Sequence[Deployment],
    linked: Sequence[RegisteredModel | None],
    find: Callable[[str | None], RegisteredModel | None],
) -> tuple[dict[str, list[Deployment]], dict[str, list[Deployment]]]:
    """The servers of each model (by MLflow name): those serving it, those loading it as adapter."""
    served: dict[str, list[Deployment]] = defaultdict(list)
    as_adapter: dict[str, list[Deployment]] = defaultdict(list)
    for deployment, model in zip(deployments, linked, strict=True):
        if model is not None:
            served[model.name].append(deployment)
        adapters = {found.name for found in map(find, deployment.adapters) if found is not None}
        for name in sorted(adapters - {model.name if model is not None else ""}):
            as_adapter[name].append(deployment)
    return served, as_adapter


def _adapter_entities(
    deployment: Deployment,
    find: Callable[[str | None], RegisteredModel | None],
    by_model: Mapping[str, ModelEntity],
) -> dict[str, ModelEntity]:
    """The Resources of the adapters one server loads, by the name the server gives them."""
    result = {}
    for name in deployment.adapters:
        adapter = find(name)
        if adapter is not None and adapter.name in by_model:
            result[name] = by_model[adapter.name]
    return result


def _valid(entity: Entity, problems: list[Problem]) -> bool:
    """Whether ``entity`` passes Backstage's rules; if not, the reason becomes a problem."""
    errors = entity_problems(entity)
    if errors:
        title = str(entity.get("metadata", {}).get("title", ""))
        problems.append(Problem(title, ref_of(entity), "error", "; ".join(errors)))
    return not errors


def _valid_pair(server: ServerEntities, problems: list[Problem]) -> bool:
    """A server's Component and API are emitted together or not at all (no dangling API)."""
    component_ok = _valid(server.component, problems)
    api_ok = _valid(server.api, problems)
    return component_ok and api_ok


def _annotate(resource: Entity, extra: Mapping[str, str]) -> None:
    if not extra:
        return
    metadata = resource.setdefault("metadata", {})
    annotations = {**(metadata.get("annotations") or {}), **extra}
    metadata["annotations"] = dict(sorted(annotations.items()))


def _model_entity(model: RegisteredModel, resource: Entity, options: CatalogOptions) -> ModelEntity:
    """What a model's servers inherit from the Resource the transformer made for it."""
    spec = resource.get("spec") or {}
    name = str((resource.get("metadata") or {}).get("name", ""))
    system = spec.get("system")
    return ModelEntity(
        model=model,
        ref=ref_of(resource) or stringify_ref("resource", options.namespace, name),
        name=name,
        owner=str(spec.get("owner") or options.fallback_owner),
        lifecycle=str(spec.get("lifecycle") or EXPERIMENTAL),
        system=system if isinstance(system, str) and system else None,
    )


def model_resource(
    model: RegisteredModel, naming: Naming, options: CatalogOptions, problems: list[Problem]
) -> Entity:
    """The default transformer: one ``Resource`` of type ``ai-model`` for a model."""
    name = naming.models[model.name]
    ref = stringify_ref("resource", options.namespace, name)
    tags = model.tags
    champion = model.version_for_alias(ModelTags.CHAMPION)
    repo = _http_url(tags.get(ModelTags.SOURCE_REPO, ""))
    metadata: Entity = {
        "name": name,
        "namespace": options.namespace,
        "title": clean(model.name),
    }
    if model.description.strip():
        metadata["description"] = clean(model.description.strip())
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
    system = system_tag(model)
    if system:
        spec["system"] = stringify_ref("system", options.namespace, naming.systems[system])
    return {"apiVersion": ann.API_VERSION, "kind": "Resource", "metadata": metadata, "spec": spec}


def system_tag(model: RegisteredModel) -> str:
    """The model's system tag as ``Naming.systems`` keys it, or "" without one."""
    raw = model.tags.get(ModelTags.SYSTEM, "").strip()
    return clean(raw) if raw else ""


def _annotations(model: RegisteredModel, champion: int | None, repo: str | None) -> dict[str, str]:
    annotations = {ann.REGISTERED_MODEL: clean(model.name), **lineage_annotations(model)}
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
            annotations[annotation] = clean(value)
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
        ref = stringify_ref("system", options.namespace, name)
        counts = owners.get(ref)
        if not counts:
            continue
        owner = min(counts, key=lambda o: (-counts[o], o))
        entities.append(
            {
                "apiVersion": ann.API_VERSION,
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
    raw = clean(model.tags.get(ModelTags.OWNER, "").strip())
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
    owner = stringify_ref(kind, namespace, name)
    if match and (match["name"] != name or (match["ns"] and match["ns"] != namespace)):
        problems.append(Problem(model.name, ref, "warning", f"owner tag {raw!r} read as {owner}"))
    return owner


def _tags(model: RegisteredModel, ref: str, problems: list[Problem]) -> list[str]:
    values = [
        model.tags.get(key, "")
        for key in (ModelTags.FRAMEWORK, ModelTags.TASK, ModelTags.MODEL_KIND, ModelTags.METHOD)
    ]
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
        page = f"{url_base(options.mlflow_ui_url)}/#/models/{quote(model.name, safe='')}"
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
        return scrub_url(value.rstrip("/"))
    return None
