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

from trellis.catalog import annotations as ann
from trellis.catalog.common import Entity, Problem, clean
from trellis.catalog.validation import entity_problems
from trellis.entity_refs import ref_of
from trellis.model import ModelTags, ModelVersion, RegisteredModel

__all__ = ["ADAPTER", "BASE", "lineage_annotations", "lineage_tag", "link_lineage", "model_kind"]

BASE = "base"
ADAPTER = "adapter"

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


def model_kind(model: RegisteredModel) -> str | None:
    """``base``, ``adapter``, or None for a model trained here (or an unknown kind)."""
    kind = model.tags.get(ModelTags.MODEL_KIND, "").strip().casefold()
    return kind if kind in {BASE, ADAPTER} else None


def lineage_tag(model: RegisteredModel, key: str) -> str:
    """A lineage tag: the registered model's, else the one of its champion (or latest) version.

    The blueprints put model-wide facts on the registered model and per-version facts (the
    parent version, the dataset fingerprint) on each version; the version shown is the one
    servers load.
    """
    value = model.tags.get(key, "").strip()
    if value:
        return value
    version = _shown_version(model)
    return version.tags.get(key, "").strip() if version is not None else ""


def lineage_annotations(model: RegisteredModel) -> dict[str, str]:
    """The ``trellis.dev/`` annotations of a base model or an adapter (none for others)."""
    kind = model_kind(model)
    if kind is None:
        return {}
    pairs = _BASE_ANNOTATIONS if kind == BASE else _ADAPTER_ANNOTATIONS
    result = {ann.MODEL_KIND: kind}
    for key, annotation in pairs:
        value = lineage_tag(model, key)
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
        if model_kind(model) != ADAPTER:
            continue
        ref = ref_of(resource)
        parent_name = lineage_tag(model, ModelTags.PARENT_MODEL)
        parent = find(parent_name) if parent_name else None
        reason = None
        if not parent_name:
            reason = "names no parent model (no `parent_model` tag)"
        elif parent is None:
            reason = f"names the parent model {parent_name!r}, which is not in the registry"
        elif parent is model:
            reason = "names itself as its parent model"
        parent_resource = resources[index[parent.name]] if parent is not None else None
        parent_ref = ref_of(parent_resource) if parent_resource is not None else None
        if reason is None and (parent_ref is None or entity_problems(parent_resource or {})):
            reason = f"its parent model {parent_name!r} has no valid entity"
        if reason is not None or parent is None or parent_ref is None:
            problems.append(Problem(clean(model.name), ref, "warning", clean(f"adapter {reason}")))
            continue
        spec = resource.setdefault("spec", {})
        spec["dependsOn"] = sorted({*spec.get("dependsOn", ()), parent_ref})
        if ref is not None and not entity_problems(resource):
            variants[index[parent.name]].append(ref)
    for position, refs in variants.items():
        metadata = resources[position].setdefault("metadata", {})
        annotations = {**(metadata.get("annotations") or {}), ann.ADAPTERS: ",".join(sorted(refs))}
        metadata["annotations"] = dict(sorted(annotations.items()))


def _shown_version(model: RegisteredModel) -> ModelVersion | None:
    champion = model.version_for_alias(ModelTags.CHAMPION)
    found = next((v for v in model.versions if v.version == champion), None)
    return found or (model.versions[-1] if model.versions else None)
