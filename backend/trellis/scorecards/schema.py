"""The JSON Schema of a scorecard definition file (``scorecards/*.yaml``).

Checks follow Tech Insights' ``json-rules-engine`` check shape (its ``validation-schema.json``
for ``rule``, its ``TechInsightJsonRuleCheck`` for the rest) so a check can be pasted from a
Tech Insights ``app-config`` and back; Trellis adds each check's ``level`` and the scorecard's
``filter``. Conditions are matched with ``if``/``then`` rather than ``anyOf`` so that a bad
field is reported at its own path, not as "not valid under any of the given schemas".
``x-message`` replaces jsonschema's wording where that wording would not help.
"""

from __future__ import annotations

from typing import Any

from trellis.scorecards.rules import OPERATORS

__all__ = ["LEVELS", "SCORECARD_SCHEMA"]

#: Levels in the order they are reached.
LEVELS = ("bronze", "silver", "gold")

_TEXT: dict[str, Any] = {"type": "string", "minLength": 1}
_PRIORITY: dict[str, Any] = {"type": "integer", "minimum": 1}
_PATH: dict[str, Any] = {"type": "string"}
_FACT_REF: dict[str, Any] = {
    "type": "object",
    "required": ["fact"],
    "properties": {"fact": _TEXT, "path": _PATH, "params": {"type": "object"}},
    "additionalProperties": False,
}
_VALUE: dict[str, Any] = {
    "if": {"type": "object", "required": ["fact"]},
    "then": _FACT_REF,
    "else": {
        "type": ["string", "number", "boolean", "array", "object"],
        "x-message": "a value is a string, number, boolean, array or object "
        "(Tech Insights refuses null)",
    },
}
_SEARCHED: dict[str, Any] = {
    "if": {"type": "object", "required": ["fact"]},
    "then": _FACT_REF,
    "else": {
        "type": ["array", "string"],
        "x-message": "`in` and `notIn` look the fact up in an array (or a string); "
        "json-rules-engine throws a TypeError on anything else",
    },
}


def _boolean(key: str, child: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [key],
        "properties": {key: child, "name": {"type": "string"}, "priority": _PRIORITY},
        "additionalProperties": False,
    }


def _one_of_nodes(otherwise: dict[str, Any]) -> dict[str, Any]:
    """Dispatch on `all` / `any` / `not` the way json-rules-engine does, else ``otherwise``."""
    return {
        "type": "object",
        "if": {"required": ["any"]},
        "then": {"$ref": "#/definitions/any"},
        "else": {
            "if": {"required": ["all"]},
            "then": {"$ref": "#/definitions/all"},
            "else": {
                "if": {"required": ["not"]},
                "then": {"$ref": "#/definitions/not"},
                "else": otherwise,
            },
        },
    }


_CONDITION_LIST: dict[str, Any] = {
    "type": "array",
    "minItems": 1,
    "items": {"$ref": "#/definitions/condition"},
    "x-message": "a list of one condition or more (an empty list passes vacuously in "
    "json-rules-engine, which a scorecard never means)",
}
_LEAF: dict[str, Any] = {
    "type": "object",
    "required": ["fact", "operator", "value"],
    "properties": {
        "fact": _TEXT,
        "operator": {"enum": list(OPERATORS)},
        "value": _VALUE,
        "path": _PATH,
        "params": {"type": "object"},
        "name": {"type": "string"},
        "priority": _PRIORITY,
    },
    "additionalProperties": False,
    "if": {"required": ["operator"], "properties": {"operator": {"enum": ["in", "notIn"]}}},
    "then": {"properties": {"value": _SEARCHED}},
}
_ROOT = _one_of_nodes(
    {"required": ["all"], "x-message": "the root of `conditions` is `all`, `any` or `not`"}
)
_RULE: dict[str, Any] = {
    "type": "object",
    "required": ["conditions"],
    "properties": {"conditions": _ROOT, "name": {"type": "string"}, "priority": _PRIORITY},
    "additionalProperties": False,
}
_LINK: dict[str, Any] = {
    "type": "object",
    "required": ["title", "url"],
    "properties": {"title": _TEXT, "url": _TEXT},
    "additionalProperties": False,
}
_CHECK_PROPERTIES: dict[str, Any] = {
    "id": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$"},
    "type": {"const": "json-rules-engine"},
    "name": _TEXT,
    "description": {"type": "string"},
    "factIds": {"type": "array", "minItems": 1, "uniqueItems": True, "items": _TEXT},
    "rule": _RULE,
    "level": {"enum": list(LEVELS)},
    "metadata": {"type": "object"},
    "links": {"type": "array", "items": _LINK},
    "successMetadata": {"type": "object"},
    "failureMetadata": {"type": "object"},
}
_CHECK_FIELDS = ["type", "name", "description", "factIds", "rule", "level"]
_STRINGS: dict[str, Any] = {
    "type": ["string", "array"],
    "items": _TEXT,
    "minItems": 1,
    "minLength": 1,
    "x-message": "one name or a list of names",
}

SCORECARD_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["name", "title", "filter", "checks"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]*$"},
        "title": _TEXT,
        "description": {"type": "string"},
        "filter": {
            "type": "object",
            "minProperties": 1,
            "properties": {
                "kind": _STRINGS,
                "spec.type": _STRINGS,
                "tags": _STRINGS,
                "annotations": {
                    "type": ["array", "object"],
                    "minItems": 1,
                    "items": _TEXT,
                    "minProperties": 1,
                    "additionalProperties": {"type": "string"},
                    "x-message": "annotation keys that must be present, or a map of "
                    "annotation key to the value it must have",
                },
            },
            "additionalProperties": False,
        },
        # A list of checks, or a map from id to check as in Tech Insights' app-config.
        "checks": {
            "type": ["array", "object"],
            "minItems": 1,
            "minProperties": 1,
            "propertyNames": _CHECK_PROPERTIES["id"],
            "items": {
                "type": "object",
                "required": ["id", *_CHECK_FIELDS],
                "properties": _CHECK_PROPERTIES,
                "additionalProperties": False,
            },
            "additionalProperties": {
                "type": "object",
                "required": _CHECK_FIELDS,
                "properties": _CHECK_PROPERTIES,
                "additionalProperties": False,
            },
        },
    },
    "additionalProperties": False,
    "definitions": {
        "condition": _one_of_nodes({"$ref": "#/definitions/leaf"}),
        "all": _boolean("all", _CONDITION_LIST),
        "any": _boolean("any", _CONDITION_LIST),
        "not": _boolean("not", {"$ref": "#/definitions/condition"}),
        "leaf": _LEAF,
    },
}
