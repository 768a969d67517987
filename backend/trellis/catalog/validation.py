"""Backstage's catalog rules for the entities Trellis emits, checked before emitting.

One invalid entity in a url location freezes the whole location in Backstage, so an entity
that breaks any rule here is left out and reported instead. The rules mirror
``@backstage/catalog-model``'s field-format policy and kind schemas for the kinds Trellis
emits; the test suite runs Backstage's own validators over the same output.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from trellis.annotations import API_VERSION
from trellis.catalog.names import is_valid_name, is_valid_tag

__all__ = ["entity_problems"]

_DNS_LABEL = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*(?:\.[a-z0-9]+(?:-[a-z0-9]+)*)*$")
_REF = re.compile(r"^(?:(?P<kind>[A-Za-z]+):)?(?:(?P<ns>[^:/]+)/)?(?P<name>[^:/]+)$")
_REQUIRED_SPEC: Mapping[str, tuple[str, ...]] = {
    "Resource": ("type", "owner"),
    "System": ("owner",),
    "Component": ("type", "lifecycle", "owner"),
    "API": ("type", "lifecycle", "owner", "definition"),
}
_REF_FIELDS = ("owner", "system")
_REF_LIST_FIELDS = ("dependsOn", "dependencyOf", "providesApis", "consumesApis")


def entity_problems(entity: Mapping[str, Any]) -> list[str]:
    """Every rule ``entity`` breaks, as readable sentences; empty when it is valid."""
    problems: list[str] = []
    if entity.get("apiVersion") != API_VERSION:
        problems.append(f"apiVersion {entity.get('apiVersion')!r} is not {API_VERSION}")
    kind = entity.get("kind")
    if kind not in _REQUIRED_SPEC:
        problems.append(f"kind {kind!r} is not one Trellis emits")
    metadata = entity.get("metadata")
    if not isinstance(metadata, Mapping):
        return [*problems, "metadata is missing"]
    problems += _metadata_problems(metadata)
    spec = entity.get("spec")
    if not isinstance(spec, Mapping):
        return [*problems, "spec is missing"]
    return problems + _spec_problems(str(kind), spec)


def _spec_problems(kind: str, spec: Mapping[str, Any]) -> list[str]:
    problems = [
        f"spec.{field} must be a non-empty string"
        for field in _REQUIRED_SPEC.get(kind, ())
        if not _non_empty_string(spec.get(field))
    ]
    for field in _REF_FIELDS:
        if field in spec and not _valid_ref(spec[field]):
            problems.append(f"spec.{field} {spec[field]!r} is not a valid entity reference")
    for field in _REF_LIST_FIELDS:
        refs = spec.get(field, [])
        if not isinstance(refs, list) or not all(_valid_ref(r) for r in refs):
            problems.append(f"spec.{field} must be a list of entity references")
    return problems


def _metadata_problems(metadata: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    name = metadata.get("name")
    if not isinstance(name, str) or not is_valid_name(name):
        problems.append(f"metadata.name {name!r} is not a valid entity name")
    namespace = metadata.get("namespace", "default")
    if not isinstance(namespace, str) or not _DNS_LABEL.match(namespace) or len(namespace) > 63:
        problems.append(f"metadata.namespace {namespace!r} is not a valid namespace")
    for field in ("title", "description"):
        if field in metadata and not isinstance(metadata[field], str):
            problems.append(f"metadata.{field} must be a string")
    tags = metadata.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) and is_valid_tag(t) for t in tags):
        problems.append(f"metadata.tags {tags!r} has an invalid tag")
    problems += _annotation_problems(metadata.get("annotations", {}))
    for link in metadata.get("links", []):
        if not isinstance(link, Mapping) or not _non_empty_string(link.get("url")):
            problems.append(f"link {link!r} needs a url")
    return problems


def _annotation_problems(annotations: object) -> list[str]:
    if not isinstance(annotations, Mapping):
        return ["metadata.annotations must be a mapping"]
    problems = []
    for key, value in annotations.items():
        if not _valid_key(key):
            problems.append(f"annotation key {key!r} is not prefix/name")
        if not isinstance(value, str):
            problems.append(f"annotation {key!r} must have a string value")
    return problems


def _valid_key(key: object) -> bool:
    if not isinstance(key, str):
        return False
    prefix, _, name = key.rpartition("/")
    prefix_ok = not prefix or (len(prefix) <= 253 and bool(_DNS_SUBDOMAIN.match(prefix)))
    return prefix_ok and is_valid_name(name)


def _valid_ref(ref: object) -> bool:
    if not isinstance(ref, str):
        return False
    match = _REF.match(ref)
    if not match:
        return False
    namespace = match["ns"]
    return is_valid_name(match["name"]) and (namespace is None or bool(_DNS_LABEL.match(namespace)))


def _non_empty_string(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())
