"""PromQL text from untrusted values: every label value is escaped, so it stays a value.

A namespace, model or pod name goes into a query only through these functions. ``quote``
makes a PromQL string literal (Go's escapes: backslash, double quote, control characters);
``regex_alternatives`` first quotes each value for RE2, the way Go's ``regexp.QuoteMeta``
does, so a ``.`` or ``|`` in a name matches itself and nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = ["matcher", "quote", "regex_alternatives", "regex_quote", "selector"]

#: Characters RE2 gives a meaning to (Go's ``regexp.QuoteMeta`` escapes exactly these).
_REGEX_SPECIAL = frozenset("\\.+*?()|[]{}^$")
_SHORT_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
#: What ``quote`` escapes: a backslash, a double quote, control characters.
_ESCAPED = re.compile(r'[\\"\x00-\x1f\x7f]')


def quote(value: str) -> str:
    """``value`` as a double-quoted PromQL string literal that reads back as exactly ``value``."""
    if not _ESCAPED.search(value):  # most names: nothing to escape, no walk per character
        return f'"{value}"'
    parts = ['"']
    for char in value:
        escaped = _SHORT_ESCAPES.get(char)
        if escaped is not None:
            parts.append(escaped)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            parts.append(f"\\x{ord(char):02x}")
        else:
            parts.append(char)
    parts.append('"')
    return "".join(parts)


def regex_quote(value: str) -> str:
    """``value`` as an RE2 pattern matching only itself."""
    return "".join("\\" + char if char in _REGEX_SPECIAL else char for char in value)


def regex_alternatives(values: Iterable[str]) -> str:
    """A string literal for ``=~`` matching exactly one of ``values`` (Prometheus anchors it)."""
    return quote("|".join(regex_quote(v) for v in sorted(set(values))))


def matcher(label: str, value: str) -> str:
    """``label="value"``, the value escaped (label names are Trellis's own constants)."""
    return f"{label}={quote(value)}"


def selector(metric: str, labels: Mapping[str, str], *extra: str) -> str:
    """``metric{label="value",...,extra}``: exact matchers for ``labels`` plus ``extra`` ones."""
    parts = [matcher(label, value) for label, value in labels.items()]
    parts.extend(extra)
    return f"{metric}{{{','.join(parts)}}}"
