"""JavaScript value semantics that json-rules-engine's operators inherit from the language.

The engine's operators are one-liners in JavaScript (``a === b``, ``b.indexOf(a) > -1``,
``a < b`` after ``Number.parseFloat``), so their results on mixed types are JavaScript's:
``"10" < "9"`` is true (strings compare by UTF-16 code units), ``[5] > 4`` is true (the array
becomes ``"5"``), ``[1] === [1]`` is false (objects compare by identity). These helpers
reproduce those rules over JSON values so a check gives here the answer it gives in Backstage.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal
from enum import Enum

__all__ = [
    "UNDEFINED",
    "Undefined",
    "index_of",
    "is_array",
    "is_number",
    "is_object_like",
    "js_string",
    "less_than",
    "number_validator",
    "parse_float",
    "strict_equal",
    "to_number",
    "type_name",
]


class Undefined(Enum):
    """JavaScript's ``undefined``: what a path matching nothing reads (``null`` is None)."""

    UNDEFINED = "undefined"

    def __repr__(self) -> str:
        return "undefined"


UNDEFINED = Undefined.UNDEFINED

# ECMAScript WhiteSpace and LineTerminator code points (what trim() and Number() skip).
_WHITESPACE = "\t\n\v\f\r \u00a0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff" + "".join(
    chr(c) for c in range(0x2000, 0x200B)
)
# StrDecimalLiteral (ASCII digits only: Python's \d and float() accept more than JavaScript).
_DECIMAL = re.compile(r"[+-]?(?:Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")
_RADIX = {"x": (16, re.compile(r"[0-9a-fA-F]+")), "o": (8, re.compile(r"[0-7]+"))}
_RADIX["b"] = (2, re.compile(r"[01]+"))


def is_number(value: object) -> bool:
    """Whether JavaScript would see a number (Python's bool is an int, JavaScript's is not)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_array(value: object) -> bool:
    """``Array.isArray``: JSON arrays arrive as lists (tuples are accepted too)."""
    return isinstance(value, list | tuple)


def is_object_like(value: object) -> bool:
    """Lodash's ``isObjectLike``: objects and arrays, the values a ``path`` can walk into."""
    return is_array(value) or isinstance(value, Mapping)


def strict_equal(a: object, b: object) -> bool:
    """``a === b``: same type and value; objects and arrays only when they are the same one."""
    if is_number(a) and is_number(b):
        return float(a) == float(b)  # type: ignore[arg-type]  # NaN is unequal to itself
    if is_object_like(a) or is_object_like(b):
        return a is b
    if type(a) is not type(b):
        return False
    return a == b


def _number_string(x: float) -> str:
    """``Number.prototype.toString()``: shortest round-trip digits, JavaScript's layout."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    digits_tuple, exponent = Decimal(repr(abs(x))).normalize().as_tuple()[1:]
    digits = "".join(map(str, digits_tuple))
    k = len(digits)
    n = k + int(exponent)  # value = 0.digits * 10^n
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    mantissa = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{sign}{mantissa}e{'+' if n - 1 >= 0 else '-'}{abs(n - 1)}"


def js_string(value: object) -> str:
    """``String(value)``: arrays join their items with commas, objects are ``[object Object]``."""
    if value is UNDEFINED:
        return "undefined"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if is_number(value):
        return _number_string(float(value))  # type: ignore[arg-type]
    if is_array(value):
        items: tuple[object, ...] = tuple(value)  # type: ignore[arg-type]
        return ",".join("" if v is None or v is UNDEFINED else js_string(v) for v in items)
    if isinstance(value, Mapping):
        return "[object Object]"
    return str(value)


def _to_primitive(value: object) -> object:
    """``ToPrimitive`` with hint number: objects and arrays become their string form."""
    return js_string(value) if is_object_like(value) else value


def _string_to_number(text: str) -> float:
    text = text.strip(_WHITESPACE)
    if not text:
        return 0.0
    if _DECIMAL.fullmatch(text):
        return float(text)
    if len(text) > 2 and text[0] == "0" and text[1].lower() in _RADIX:
        radix, pattern = _RADIX[text[1].lower()]
        if pattern.fullmatch(text[2:]):
            return float(int(text[2:], radix))
    return math.nan


def to_number(value: object) -> float:
    """``Number(value)``: null is 0, booleans are 0/1, strings parse strictly, else NaN."""
    value = _to_primitive(value)
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return float(value)
    if is_number(value):
        return float(value)  # type: ignore[arg-type]
    if isinstance(value, str):
        return _string_to_number(value)
    return math.nan


def parse_float(value: object) -> float:
    """``Number.parseFloat(value)``: the longest number at the start of ``String(value)``."""
    text = js_string(value).lstrip(_WHITESPACE)
    match = _DECIMAL.match(text)
    return float(match.group()) if match else math.nan


def number_validator(value: object) -> bool:
    """json-rules-engine's guard for numeric operators: ``parseFloat(fact)`` is not NaN.

    A number prints as a number (``Infinity`` included), so only NaN fails: no printing.
    """
    if is_number(value):
        return not math.isnan(value)  # type: ignore[arg-type]
    return not math.isnan(parse_float(value))


def less_than(a: object, b: object) -> bool | None:
    """``IsLessThan(a, b)``: None where JavaScript answers ``undefined`` (a NaN was involved)."""
    if is_number(a) and is_number(b):  # the common case, without the conversions
        na, nb = float(a), float(b)  # type: ignore[arg-type]
        return None if math.isnan(na) or math.isnan(nb) else na < nb
    pa, pb = _to_primitive(a), _to_primitive(b)
    if isinstance(pa, str) and isinstance(pb, str):
        return pa.encode("utf-16-be") < pb.encode("utf-16-be")  # code-unit order
    na, nb = to_number(pa), to_number(pb)
    if math.isnan(na) or math.isnan(nb):
        return None
    return na < nb


def index_of(haystack: object, needle: object) -> bool | None:
    """``haystack.indexOf(needle) > -1``; None where JavaScript would throw a TypeError.

    Arrays search with ``===``; strings search for ``String(needle)`` as a substring; any
    other value has no ``indexOf`` and json-rules-engine's run would fail.
    """
    if isinstance(haystack, list | tuple):
        return any(strict_equal(item, needle) for item in haystack)
    if isinstance(haystack, str):
        return js_string(needle) in haystack
    return None


def type_name(value: object) -> str:
    """The kind of JSON value as a JavaScript reader would name it, for messages."""
    if value is UNDEFINED:
        return "undefined"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if is_array(value) else "object"
