"""Check answers before Copier sees them, naming every bad one at once.

Copier stops at the first failing validator and some of its cast errors do not name the
question. Here each answer is cast the way Copier casts it (text from ``--data`` becomes a
number, a boolean or YAML) and checked against the blueprint's JSON Schema; every problem is
reported together. Copier's own validators (rules across answers) still run when rendering.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import jsonschema
import yaml

from trellis.blueprints.form import answers_schema
from trellis.errors import AnswerError, shortened
from trellis.model import Blueprint, Question

__all__ = ["check_answers"]

_TRUE = {"true", "yes", "on", "1", "y"}
_FALSE = {"false", "no", "off", "0", "n"}


def check_answers(
    blueprint: Blueprint, answers: Mapping[str, Any], *, require: bool = True
) -> dict[str, Any]:
    """The answers cast to their questions' types; raises :class:`AnswerError` listing all."""
    questions = {q.name: q for q in blueprint.questions}
    problems: list[tuple[str, str]] = []
    cast: dict[str, Any] = {}
    unknown = sorted(name for name in answers if name not in questions)
    for name in unknown:  # the questions are listed once, with the first unknown name
        asks = f"; it asks {', '.join(questions)}" if name == unknown[0] else ""
        problems.append((name, f"not a question of {blueprint.name}{asks}"))
    for name, value in answers.items():
        question = questions.get(name)
        if question is None:
            continue
        try:
            cast[name] = _cast(question, value)
            _plain_text(cast[name])
        except ValueError as exc:
            problems.append((name, str(exc)))
    schema = answers_schema(blueprint, require=require)
    schema["additionalProperties"] = True  # unknown names are reported above, by name
    validator = jsonschema.Draft7Validator(schema)
    for error in sorted(validator.iter_errors(cast), key=lambda e: list(e.absolute_path)):
        problems.append(_describe(error, questions))
    if problems:
        raise AnswerError(sorted(problems, key=lambda p: _order(p[0], questions)))
    return cast


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
"""Characters no answer needs and that break the files they land in: C0 controls except tab
and line breaks, DEL, C1 controls, and the Unicode line and paragraph separators."""


def _plain_text(value: Any) -> None:
    """``ValueError`` naming the first control character in ``value`` or any text within it."""
    if isinstance(value, str):
        found = _CONTROL.search(value)
        if found:
            raise ValueError(f"contains the control character U+{ord(found.group()):04X}")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _plain_text(key)
            _plain_text(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _plain_text(item)


def _shown(value: Any) -> str:
    """``value`` as it is echoed in a message: its repr, cut short."""
    return shortened(repr(value), _LONGEST_SHOWN)


_LONGEST_SHOWN = 80


def _cast(question: Question, value: Any) -> Any:
    """Copier's casting of a text answer; other values pass through to the schema check."""
    caster = _CASTERS.get(question.type)
    if caster is None or not isinstance(value, str):
        return value
    return caster(value)


def _int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"expects a whole number, got {_shown(text)}") from None


def _float(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise ValueError(f"expects a number, got {_shown(text)}") from None


def _bool(text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    raise ValueError(f"expects true or false, got {_shown(text)}")


def _yaml(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"is not valid YAML: {' '.join(str(exc).split())}") from None


_CASTERS: dict[str, Callable[[str], Any]] = {
    "int": _int,
    "float": _float,
    "bool": _bool,
    "yaml": _yaml,
    "json": _yaml,
}


def _describe(
    error: jsonschema.ValidationError, questions: Mapping[str, Question]
) -> tuple[str, str]:
    """One schema error as ``(question, message)`` in words a form user understands."""
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required":
        missing = str(error.message).split("'")[1]
        return missing, "an answer is required"
    name = path[0] if path else "answers"
    value = error.instance
    question = questions.get(name)
    match error.validator:
        case "enum":
            choices = error.validator_value if isinstance(error.validator_value, list) else []
            return name, f"{_shown(value)} is not one of {', '.join(map(str, choices))}"
        case "type":
            kind = _KINDS.get(str(error.validator_value), "another type")
            return name, f"expects {kind}, got {_shown(value)}"
        case "pattern":
            hint = f" ({question.help})" if question and question.help else ""
            return name, f"{_shown(value)} does not match {error.validator_value}{hint}"
        case "maxLength":
            return name, f"is longer than {error.validator_value} characters"
        case "uniqueItems":
            return name, "repeats an item"
        case _:
            return name, str(error.message)


_KINDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
}


def _order(name: str, questions: Mapping[str, Question]) -> tuple[int, str]:
    names = list(questions)
    return (names.index(name) if name in names else len(names), name)
