"""The part of JSONPath that conditions use to reach into object facts (``path: $.a.b[0]``).

json-rules-engine hands ``path`` to jsonpath-plus with ``wrap: false``: one match gives the
value itself, no match gives ``undefined``. Checks read one field, so Trellis takes the
single-match subset — ``$``, ``.key``, ``[0]`` and ``['odd key']``, with arrays' and strings'
``length`` as JavaScript sees it — and refuses wildcards, filters, slices and recursive
descent when a definition is loaded, not when it runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from trellis.errors import TrellisError
from trellis.scorecards.jsvalues import UNDEFINED, is_array
from trellis.scorecards.unknown import Unknown

__all__ = ["PathError", "parse_path", "resolve_path"]

_SEGMENT = re.compile(r"\.([A-Za-z0-9_-]+)|\[([0-9]+)\]|\['([^'\\]*)'\]|\[\"([^\"\\]*)\"\]")
_INDEX = re.compile(r"0|[1-9][0-9]*")


class PathError(TrellisError):
    """A ``path`` outside the supported JSONPath subset; the message says what is supported."""


def parse_path(path: str) -> tuple[str, ...]:
    """The property names a path walks through, as JavaScript sees them (indexes are names).

    A path without ``$`` is relative to the fact, as jsonpath-plus reads ``a.b``.
    """
    rest = path[1:] if path.startswith("$") else path
    if rest and not path.startswith("$") and rest[0] not in ".[":
        rest = "." + rest
    segments: list[str] = []
    position = 0
    while position < len(rest):
        match = _SEGMENT.match(rest, position)
        if match is None:
            raise PathError(
                f"unsupported JSONPath {path!r} at {rest[position:]!r}: a path reads one value "
                "with $.key, $.key[0] or $['odd key'] (no wildcards, filters or slices)"
            )
        segments.append(next(group for group in match.groups() if group is not None))
        position = match.end()
    return tuple(segments)


def resolve_path(value: object, segments: tuple[str, ...]) -> object:
    """The value at ``segments`` inside ``value``.

    UNDEFINED where nothing is there; the first :class:`Unknown` met on the way, if any.
    """
    for segment in segments:
        if isinstance(value, Unknown):
            return value
        if isinstance(value, Mapping):
            value = value.get(segment, UNDEFINED)
        elif is_array(value) or isinstance(value, str):
            value = _element(value, segment)
        else:
            return UNDEFINED
        if value is UNDEFINED:
            return UNDEFINED
    return value


def _element(value: object, segment: str) -> object:
    """An array's or a string's own property: ``length`` or an index (JavaScript's view)."""
    units = value.encode("utf-16-le") if isinstance(value, str) else None
    items: tuple[object, ...] = () if units is not None else tuple(value)  # type: ignore[arg-type]
    length = len(units) // 2 if units is not None else len(items)
    if segment == "length":
        return length
    if not _INDEX.fullmatch(segment) or int(segment) >= length:
        return UNDEFINED
    index = int(segment)
    if units is not None:  # one UTF-16 code unit, as JavaScript indexes strings
        return chr(int.from_bytes(units[2 * index : 2 * index + 2], "little"))
    return items[index]
