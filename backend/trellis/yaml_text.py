"""The one YAML writer: text that YAML 1.2 (Backstage) and YAML 1.1 (PyYAML) read back alike.

Backstage parses catalog files with the ``yaml`` npm package, under YAML 1.2's core schema;
PyYAML, Copier and most Python tools parse YAML 1.1. PyYAML's dumper only knows 1.1, so it
leaves ``1e3``, ``0o17`` or ``-.5`` plain, and Backstage reads them as numbers: the entity is
then invalid, and one invalid entity freezes its whole url location. This dumper writes a
string plain only when both schemas resolve the plain text to a string, and writes the
characters the two versions disagree on (U+0085, U+2028 and U+2029 are line breaks in 1.1
only) as escapes. Strings that were already safe come out byte for byte as PyYAML wrote them,
and libyaml's emitter is kept where PyYAML has it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

import yaml

__all__ = ["CORE_SCHEMA", "Dumper", "core_schema_tag", "dump", "dump_all"]

_TAG = "tag:yaml.org,2002:"
_STR = _TAG + "str"

#: YAML 1.2.2's core schema (yaml.org/spec/1.2.2, 10.3.2 "Tag Resolution"): the tag a plain
#: scalar resolves to, first match wins, anything else is a string. The ``yaml`` npm package
#: (``schema: 'core'``, its default for YAML 1.2) uses exactly these expressions.
CORE_SCHEMA: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    (_TAG + "null", re.compile(r"(?:null|Null|NULL|~|)\Z")),
    (_TAG + "bool", re.compile(r"(?:true|True|TRUE|false|False|FALSE)\Z")),
    (_TAG + "int", re.compile(r"(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)\Z")),
    (
        _TAG + "float",
        re.compile(
            r"(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))\Z"
        ),
    ),
)

# The core schema's numbers, by the characters they can start with, for PyYAML's resolver
# (it looks resolvers up by a scalar's first character). Its nulls and booleans are all
# YAML 1.1 nulls and booleans too, which PyYAML's resolver knows already.
_NUMBERS: Final[dict[str, str]] = {_TAG + "int": "-+0123456789", _TAG + "float": "-+.0123456789"}


def core_schema_tag(text: str) -> str:
    """The tag ``text`` resolves to as a plain scalar under YAML 1.2's core schema."""
    for tag, pattern in CORE_SCHEMA:
        if pattern.match(text):
            return tag
    return _STR


try:  # libyaml's emitter: the catalog of 10,000 models renders several times faster
    _Base: Any = yaml.CSafeDumper
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Base = yaml.SafeDumper


class Dumper(_Base):  # type: ignore[misc]
    """PyYAML's safe dumper whose resolver also knows YAML 1.2's core schema.

    The emitter writes a string plain only when the resolver says the plain text reads back
    as a string; with both schemas' rules in the resolver, a string is quoted when either
    YAML version would read it as something else.
    """


for _tag, _pattern in CORE_SCHEMA:
    if _tag in _NUMBERS:
        Dumper.add_implicit_resolver(_tag, _pattern, list(_NUMBERS[_tag]))


# U+0085, U+2028 and U+2029 are line breaks in YAML 1.1 but ordinary characters in YAML 1.2:
# a 1.1 emitter folds lines at them, and a 1.2 reader keeps the indentation that follows as
# part of the string. Written as escapes in a double-quoted scalar, both read them back.
def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    breaks = "\x85" in data or "\u2028" in data or "\u2029" in data
    return dumper.represent_scalar(_STR, data, style='"' if breaks else None)


Dumper.add_representer(str, _represent_str)


def dump(data: Any, *, width: int = 1_000_000) -> str:
    """``data`` as one YAML document, keys in their given order, Unicode kept as is.

    ``width`` is where long plain and quoted scalars may be folded; the default never folds.
    """
    text: str = yaml.dump(data, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=width)
    return text


def dump_all(documents: Iterable[Any], *, width: int = 1_000_000) -> str:
    """Several YAML documents, each opened with ``---``, as :func:`dump` writes one."""
    text: str = yaml.dump_all(
        documents,
        Dumper=Dumper,
        sort_keys=False,
        allow_unicode=True,
        explicit_start=True,
        width=width,
    )
    return text
