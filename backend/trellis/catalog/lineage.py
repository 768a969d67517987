"""Hub-to-region lineage: open models imported once, and the regional adapters tuned from them.

An imported open model (``model_kind=base``) carries its licence, upstream and revision. A
regional adapter (``model_kind=adapter``) carries its data region, method, parent model and
version and dataset fingerprint, and ``dependsOn`` its base model's ``Resource``; Backstage
derives the base's ``dependencyOf`` from that. The base also lists its adapters' refs in
``trellis.dev/adapters``, so a page that reads one entity can show its regional variants.

An adapter whose base model is not in the catalog is still emitted, without ``dependsOn``
(a dangling relation would point at nothing), and the gap is reported as a warning.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

from trellis import annotations as ann
from trellis.catalog.common import Entity, Problem, clean
from trellis.catalog.validation import entity_problems
from trellis.entity_refs import ref_of
from trellis.model import ModelKind, ModelTags, RegisteredModel

__all__ = ["lineage_annotations", "link_lineage"]

_BASE_ANNOTATIONS = (
    (ModelTags.LICENSE, ann.LICENSE),
    (ModelTags.UPSTREAM, ann.UPSTREAM),
    (ModelTags.UPSTREAM_REVISION, ann.UPSTREAM_REVISION),
)
_ADAPTER_ANNOTATIONS = (
    (ModelTags.DATA_REGION, ann.REGION),
    (ModelTags.METHOD, ann.METHOD),
    (ModelTags.PARENT_MODEL, ann.PARENT_MODEL),
    (ModelTags.PARENT_VERSION, ann.PARENT_VERSION),
    (ModelTags.DATASET_FINGERPRINT, ann.DATASET_FINGERPRINT),
)

ModelFinder = Callable[[str | None], RegisteredModel | None]


def lineage_annotations(model: RegisteredModel) -> dict[str, str]:
    """The ``trellis.dev/`` annotations of a base model or an adapter (none for others)."""
    kind = model.kind
    if kind is None:
        return {}
    pairs = _BASE_ANNOTATIONS if kind == ModelKind.BASE else _ADAPTER_ANNOTATIONS
    result = {ann.MODEL_KIND: kind}
    for key, annotation in pairs:
        value = model.lineage_tag(key)
        if value:
            result[annotation] = clean(value)
    return result


def link_lineage(
    models: Sequence[RegisteredModel],
    resources: Sequence[Entity],
    find: ModelFinder,
    problems: list[Problem],
) -> None:
    """Point each adapter's Resource at its base model's; list the adapters on the base.

    ``resources`` is aligned with ``models``; ``find`` resolves a parent name the way a
    server's model name is resolved. Entities are changed in place.
    """
    index = {model.name: i for i, model in enumerate(models)}
    variants: dict[int, list[str]] = defaultdict(list)
    for model, resource in zip(models, resources, strict=True):
        if model.kind != ModelKind.ADAPTER:
            continue
        ref = ref_of(resource)
        parent_name = model.lineage_tag(ModelTags.PARENT_MODEL)
        parent = find(parent_name) if parent_name else None
        position = index[parent.name] if parent is not None and parent is not model else None
        parent_ref = _valid_ref(resources[position]) if position is not None else None
        if position is None or parent_ref is None:
            why = _missing_parent(parent_name, parent, model)
            problems.append(Problem(clean(model.name), ref, "warning", clean(f"adapter {why}")))
            continue
        spec = resource.setdefault("spec", {})
        spec["dependsOn"] = sorted({*spec.get("dependsOn", ()), parent_ref})
        emitted = _valid_ref(resource)
        if emitted is not None:
            variants[position].append(emitted)
    for position, refs in variants.items():
        metadata = resources[position].setdefault("metadata", {})
        annotations = {**(metadata.get("annotations") or {}), ann.ADAPTERS: ",".join(sorted(refs))}
        metadata["annotations"] = dict(sorted(annotations.items()))


def _valid_ref(entity: Entity) -> str | None:
    """The ref of an entity that will be emitted, or None."""
    return None if entity_problems(entity) else ref_of(entity)


def _missing_parent(name: str, parent: RegisteredModel | None, model: RegisteredModel) -> str:
    if not name:
        return "names no parent model (no `parent_model` tag)"
    if parent is None:
        return f"names the parent model {name!r}, which is not in the registry"
    if parent is model:
        return "names itself as its parent model"
    return f"names the parent model {name!r}, which has no valid entity"
