"""What a cookiecutter template declares, as Trellis reads it; and cruft's record.

Pure functions over a template's questions file (``cookiecutter.json``, or the file of a
template rendered by its own entry point, such as ``ccds.json``) and over cruft's
``.cruft.json``, kept apart from ``trellis.sources.cookiecutter``, which runs git and
cookiecutter, so they are tested without a process.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from trellis.errors import AnswerError, ConfigError
from trellis.model import CruftRecord, Question

__all__ = [
    "BUILTIN_EXTENSIONS",
    "CRUFT_FILE",
    "HOST_QUESTION",
    "RENDER_KEYS",
    "REPOSITORY_QUESTION",
    "answers_from_context",
    "choose_nested",
    "cruft_json",
    "nested_choice",
    "parse_cruft",
    "questions_from_context",
    "unsafe_extensions",
]

CRUFT_FILE = ".cruft.json"
"""The record cruft writes into a generated repository, and Trellis with it."""

BUILTIN_EXTENSIONS = frozenset(
    {
        "cookiecutter.extensions.JsonifyExtension",
        "cookiecutter.extensions.RandomStringExtension",
        "cookiecutter.extensions.SlugifyExtension",
        "cookiecutter.extensions.TimeExtension",
        "cookiecutter.extensions.UUIDExtension",
        "jinja2_time.TimeExtension",
    }
)
"""Jinja extensions cookiecutter always loads: they run no code of the template's own."""

REPOSITORY_QUESTION = "repository"
"""The question Trellis adds for Backstage's publish step (owner/name), unless the template
has one of that name; it is never passed to the template."""

HOST_QUESTION = "git_host"
"""The question Trellis adds to pick the Git host when more than one is configured."""

RENDER_KEYS = frozenset({"_output_dir", "_repo_dir", "_checkout", "_template", "_commit"})
"""Context keys cookiecutter and cruft add about one render (where, from what); not answers."""


def unsafe_extensions(context: Mapping[str, Any]) -> list[str]:
    """The template's ``_extensions`` that are code of its own (they run when rendering)."""
    declared = context.get("_extensions") or []
    if not isinstance(declared, list):
        return [str(declared)]
    return sorted(str(name) for name in declared if str(name) not in BUILTIN_EXTENSIONS)


def nested_choice(raw: object) -> bool:
    """Whether ``raw`` is a choice among named options with sub-values (``ccds.json``)."""
    return (
        isinstance(raw, list)
        and bool(raw)
        and all(isinstance(item, Mapping) and len(item) == 1 for item in raw)
    )


def questions_from_context(
    context: Mapping[str, Any], help_texts: Mapping[str, str] | None = None
) -> tuple[Question, ...]:
    """The questions a template asks, in its order: every variable not starting with ``_``.

    A list is a choice (its first item the default); a list of one-key mappings is a choice
    of named options with sub-values (the option's name is the answer); ``true``/``false``
    is a boolean; a mapping is a dict variable, answered as JSON. A default holding ``{{`` is
    worked out from the earlier answers when none is given. Private variables (``_x``
    copied, ``__x`` rendered) are never asked.
    """
    help_texts = help_texts or {}
    questions: list[Question] = []
    for name, raw in context.items():
        if name.startswith("_"):
            continue
        text = help_texts.get(name, "")
        if nested_choice(raw):
            keys = [str(next(iter(item))) for item in raw]
            questions.append(
                Question(name, "str", text, keys[0], choices={k: k for k in keys}),
            )
        elif isinstance(raw, list):
            values = [str(item) for item in raw]
            if not values:
                raise ConfigError(f"cookiecutter variable {name} is an empty choice list")
            questions.append(Question(name, "str", text, values[0], choices={v: v for v in values}))
        elif isinstance(raw, bool):
            questions.append(Question(name, "bool", text, raw))
        elif isinstance(raw, Mapping):
            questions.append(Question(name, "json", text, dict(raw)))
        elif raw is None:
            questions.append(Question(name, "str", text, ""))
        else:
            questions.append(Question(name, "str", text, str(raw)))
    return tuple(questions)


def choose_nested(raw: Sequence[Mapping[str, Any]], answer: object, question: str) -> list[Any]:
    """The option list with the chosen option first, so cookiecutter picks it without input.

    ``answer`` names an option (its sub-values keep their defaults) or is ``{option: {key:
    value}}`` as cruft records it, whose sub-values replace the defaults.
    """
    if isinstance(answer, Mapping):
        if len(answer) != 1:
            raise AnswerError.one(question, "expects one option, e.g. {'s3': {'bucket': 'x'}}")
        chosen, values = next(iter(answer.items()))
    else:
        chosen, values = answer, None
    options = [str(next(iter(item))) for item in raw]
    if str(chosen) not in options:
        raise AnswerError.one(question, f"{chosen!r} is not one of {', '.join(options)}")
    index = options.index(str(chosen))
    picked = dict(raw[index])
    default = picked[str(chosen)]
    if isinstance(values, Mapping) and isinstance(default, Mapping):
        picked[str(chosen)] = {**default, **{str(k): v for k, v in values.items()}}
    elif values is not None and not isinstance(default, Mapping):
        picked[str(chosen)] = values
    return [picked, *(item for i, item in enumerate(raw) if i != index)]


def answers_from_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """The answers to give again when rendering from a recorded context (cruft's rule).

    Private variables are left out: they are the template's, not the user's.
    """
    return {k: v for k, v in context.items() if not k.startswith("_")}


def cruft_json(record: CruftRecord) -> str:
    """``.cruft.json`` as cruft writes it (same keys, order and layout)."""
    content: dict[str, Any] = {
        "template": record.template,
        "commit": record.commit,
        "checkout": record.checkout,
        "context": {"cookiecutter": dict(record.context)},
        "directory": record.directory,
    }
    if record.skip:
        content["skip"] = list(record.skip)
    return json.dumps(content, ensure_ascii=False, indent=2, separators=(",", ": ")) + "\n"


def parse_cruft(text: str, *, where: str = CRUFT_FILE) -> CruftRecord:
    """A ``.cruft.json``; ``ConfigError`` naming what is missing from a malformed one."""
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where} is not JSON: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"{where} must hold a JSON object")
    context = (loaded.get("context") or {}).get("cookiecutter")
    if not isinstance(loaded.get("template"), str) or not isinstance(context, dict):
        raise ConfigError(f"{where} needs `template` and `context.cookiecutter`")
    skip = loaded.get("skip") or []
    return CruftRecord(
        template=loaded["template"],
        commit=str(loaded.get("commit") or ""),
        context=context,
        checkout=loaded.get("checkout"),
        directory=loaded.get("directory"),
        skip=tuple(str(s) for s in skip) if isinstance(skip, list) else (),
    )
