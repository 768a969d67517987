"""A blueprint's questions as JSON Schema: for checking answers and for Backstage's form.

One schema per question serves both: the render API validates answers against it, and the
Software Template's parameter pages are built from it, so the form can never accept what
the API refuses.
"""

from __future__ import annotations

from typing import Any

from trellis.model import Blueprint, Question

__all__ = ["MAX_TEXT", "answers_schema", "question_schema"]

MAX_TEXT = 2_000
"""Longest text answer taken; no question needs more, and answers end up in many files."""

_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}


def question_schema(question: Question, hints: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON Schema of one answer, with the blueprint's form hints merged in."""
    schema: dict[str, Any] = {"title": _title(question.name)}
    if question.help:
        schema["description"] = question.help
    if question.type in _TYPES:
        schema["type"] = _TYPES[question.type]
    elif isinstance(question.default, list):  # a yaml/json question whose answer is a list
        schema.update(type="array", items={"type": "string"}, uniqueItems=True)
    if question.choices:
        schema["enum"] = list(question.choices)
        schema["enumNames"] = list(question.choices.values())
    elif schema.get("type") == "string":
        schema["maxLength"] = MAX_TEXT
    if question.default is not None and not question.computed_default:
        schema["default"] = question.default
    if question.secret:
        schema["ui:field"] = "Secret"
    schema.update(hints or {})
    return schema


def answers_schema(blueprint: Blueprint, *, require: bool = True) -> dict[str, Any]:
    """JSON Schema of a whole set of answers (no unknown keys; ``required`` when asked)."""
    schema: dict[str, Any] = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": blueprint.title,
        "type": "object",
        "properties": {
            q.name: question_schema(q, dict(blueprint.form.get(q.name, {})))
            for q in blueprint.questions
        },
        "additionalProperties": False,
    }
    if require and blueprint.required:
        schema["required"] = list(blueprint.required)
    return schema


def _title(name: str) -> str:
    words = name.replace("_", " ").split()
    return " ".join([words[0].capitalize(), *words[1:]]) if words else name
