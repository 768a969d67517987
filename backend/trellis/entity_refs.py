"""Backstage entity refs (``kind:namespace/name``), made and read in one place.

As Backstage's ``stringifyEntityRef`` does, the kind and the namespace are lower-cased and
the namespace defaults to ``default``; names keep their case.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["parse_ref", "ref_of", "stringify_ref"]


def stringify_ref(kind: str, namespace: str | None, name: str) -> str:
    """``kind:namespace/name``, kind and namespace lower-cased."""
    return f"{kind.lower()}:{(namespace or 'default').lower()}/{name}"


def ref_of(entity: Mapping[str, Any]) -> str | None:
    """The ref of an entity (as JSON), or None when it has no kind or no name."""
    metadata = entity.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    kind, name = entity.get("kind"), metadata.get("name")
    if not kind or not name:
        return None
    return stringify_ref(str(kind), metadata.get("namespace"), str(name))


def parse_ref(ref: str, default_kind: str = "component") -> tuple[str, str, str]:
    """``(kind, namespace, name)`` of ``[kind:][namespace/]name``, lower-cased as above.

    Raises:
        ValueError: for an empty part.
    """
    kind, sep, rest = ref.partition(":")
    if not sep:
        kind, rest = default_kind, ref
    namespace, sep, name = rest.partition("/")
    if not sep:
        namespace, name = "default", rest
    if not kind or not namespace or not name:
        msg = f"{ref!r} is not an entity ref ([kind:][namespace/]name)"
        raise ValueError(msg)
    return kind.lower(), namespace.lower(), name
