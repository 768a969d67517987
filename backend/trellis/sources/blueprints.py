"""Blueprints: Copier templates in one git repository, one folder each under ``blueprints/``.

The repository's root ``copier.yml`` picks the folder from the ``blueprint`` answer and
includes each blueprint's questions, so ``copier copy`` and ``copier update`` work from the
repository itself with git tags as versions. Rendering never runs Copier's unsafe features
(tasks, migrations, Jinja extensions).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from trellis.errors import ConfigError, TrellisError

__all__ = ["AnswerError", "BlueprintSource", "Question", "find_checkout"]

_INCLUDE = re.compile(r"^!include\s+(\S+)\s*$", re.MULTILINE)


class AnswerError(TrellisError):
    """An answer to a blueprint question is not acceptable; the text says which and why."""

    def __init__(self, question: str, message: str) -> None:
        super().__init__(f"{question}: {message}")
        self.question = question
        self.message = message


@dataclass(frozen=True, slots=True)
class Question:
    """One question of a blueprint, as its ``copier.yml`` declares it."""

    name: str
    type: str
    help: str
    default: object
    choices: tuple[str, ...]


def find_checkout() -> Path | None:
    """The Trellis source checkout this package runs from, when it has the blueprints."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / "copier.yml").is_file() and (root / "blueprints").is_dir() else None


class BlueprintSource:
    """The blueprints of one Copier source (a local checkout or a git URL)."""

    def __init__(self, source: str, *, local_root: Path | None = None) -> None:
        self.source = source
        self._root = local_root

    @property
    def root(self) -> Path:
        """The local checkout holding the blueprint definitions."""
        if self._root is None:
            raise ConfigError(
                f"blueprint definitions are read from a local checkout; {self.source} is remote"
            )
        return self._root

    def names(self) -> list[str]:
        """Every blueprint that has a template folder."""
        return sorted(
            p.name for p in (self.root / "blueprints").iterdir() if (p / "template").is_dir()
        )

    def questions(self, blueprint: str) -> list[Question]:
        """The blueprint's own questions, in the order Copier asks them."""
        self._known(blueprint)
        path = self.root / "blueprints" / blueprint / "copier.yml"
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return [
            Question(
                name=name,
                type=str(spec.get("type", "str")),
                help=str(spec.get("help", "")),
                default=spec.get("default"),
                choices=_choices(spec.get("choices")),
            )
            for name, spec in raw.items()
            # `when: false` marks a computed value, never asked and never answered.
            if not name.startswith("_")
            and isinstance(spec, Mapping)
            and spec.get("when") is not False
        ]

    def render(
        self,
        blueprint: str,
        destination: Path,
        answers: Mapping[str, Any],
        *,
        defaults: bool,
        vcs_ref: str | None = None,
    ) -> Path:
        """Render ``blueprint`` into ``destination`` with Copier; bad answers raise."""
        questions = {q.name: q for q in self.questions(blueprint)}
        unknown = sorted(set(answers) - set(questions))
        if unknown:
            raise AnswerError(
                unknown[0], f"not a question of {blueprint}; it asks {', '.join(sorted(questions))}"
            )
        for name, value in answers.items():
            _check_type(questions[name], value)
        from copier import run_copy  # importing Copier costs 0.3 s; only when rendering
        from copier.errors import DirtyLocalWarning

        try:
            with warnings.catch_warnings():
                # A local template with uncommitted edits renders them; that is the point.
                warnings.simplefilter("ignore", DirtyLocalWarning)
                run_copy(
                    self.source,
                    destination,
                    data={"blueprint": blueprint, **answers},
                    defaults=defaults,
                    vcs_ref=vcs_ref,
                    unsafe=False,
                    quiet=True,
                    overwrite=False,
                )
        except ValueError as exc:  # Copier's validators and type casts raise ValueError
            raise _answer_error(exc) from exc
        return destination

    def _known(self, blueprint: str) -> None:
        names = self.names()
        if blueprint not in names:
            raise AnswerError(
                "blueprint", f"unknown blueprint {blueprint!r}; choose from {', '.join(names)}"
            )


_BOOLEANS = {"true", "false", "yes", "no", "on", "off", "1", "0", "y", "n"}


def _check_type(question: Question, value: object) -> None:
    """Reject answers Copier could not cast, naming the question (Copier does not)."""
    if not isinstance(value, str):
        return
    if question.type == "int":
        try:
            int(value)
        except ValueError:
            raise AnswerError(question.name, f"expects a whole number, got {value!r}") from None
    elif question.type == "float":
        try:
            float(value)
        except ValueError:
            raise AnswerError(question.name, f"expects a number, got {value!r}") from None
    elif question.type == "bool" and value.strip().lower() not in _BOOLEANS:
        raise AnswerError(question.name, f"expects true or false, got {value!r}")
    elif question.type in {"yaml", "json"}:
        try:
            yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise AnswerError(question.name, f"is not valid YAML: {exc}") from None
    if question.choices and question.type == "str" and value not in question.choices:
        raise AnswerError(question.name, f"{value!r} is not one of {', '.join(question.choices)}")


def _choices(raw: object) -> tuple[str, ...]:
    if isinstance(raw, Mapping):
        return tuple(str(v) for v in raw.values())
    if isinstance(raw, list):
        return tuple(str(v) for v in raw)
    return ()


_VALIDATION = re.compile(r"Validation error for question '(?P<q>[^']+)': (?P<m>.*)", re.S)
_REQUIRED = re.compile(r'Question "(?P<q>[^"]+)" is required')


def _answer_error(exc: ValueError) -> AnswerError:
    text = str(exc).strip()
    for pattern in (_VALIDATION, _REQUIRED):
        match = pattern.search(text)
        if match:
            message = match.groupdict().get("m") or "an answer is required (or pass --defaults)"
            return AnswerError(match["q"], " ".join(message.split()))
    return AnswerError("answers", " ".join(text.split()))
