"""Scorecard definitions: ``scorecards/*.yaml`` loaded, validated and compiled.

Each file is one scorecard: which entities it applies to (``filter``) and its checks, each
written as a Tech Insights ``json-rules-engine`` check plus a ``level``. Every problem in
every file is reported at once, each naming the file, the check and the JSON path of the
field; nothing is returned unless all files are valid, so a caller keeps its last good set.
"""

from __future__ import annotations

import copy
import re
import stat
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jsonschema
import yaml

from trellis.errors import TrellisError
from trellis.scorecards.rules import Node, RuleError, parse_conditions
from trellis.scorecards.schema import LEVELS, SCORECARD_SCHEMA

__all__ = [
    "Check",
    "DefinitionError",
    "DefinitionFile",
    "EntityFilter",
    "Level",
    "Link",
    "Problem",
    "Scorecard",
    "load_scorecards",
    "parse_scorecard",
    "parse_scorecards",
    "read_definitions",
]

_VALIDATOR = jsonschema.Draft7Validator(SCORECARD_SCHEMA)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Level(StrEnum):
    """How far along an entity is; a level is reached when its checks and those below pass."""

    BRONZE = "bronze"
    SILVER = "silver"
    GOLD = "gold"

    @property
    def rank(self) -> int:
        """0 for bronze, 1 for silver, 2 for gold."""
        return LEVELS.index(self.value)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a definition file."""

    file: str
    check: str | None
    field: str
    message: str

    def __str__(self) -> str:
        check = f" check {self.check!r}:" if self.check else ""
        return f"{self.file}:{check} {self.field}: {self.message}"


class DefinitionError(TrellisError):
    """Scorecard definitions that cannot be used; ``problems`` lists every one found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(map(str, self.problems)))


@dataclass(frozen=True, slots=True)
class Link:
    """A link shown with a check's result (Tech Insights ``CheckLink``)."""

    title: str
    url: str


@dataclass(frozen=True, slots=True)
class Check:
    """One check: the Tech Insights fields, its compiled conditions and its level."""

    id: str
    name: str
    description: str
    fact_ids: tuple[str, ...]
    level: Level
    conditions: Node
    scorecard: str
    #: The check as written (with its id), for Tech Insights responses and round trips.
    definition: Mapping[str, Any]
    links: tuple[Link, ...] = ()
    metadata: Mapping[str, Any] | None = None
    success_metadata: Mapping[str, Any] | None = None
    failure_metadata: Mapping[str, Any] | None = None
    type: str = "json-rules-engine"


@dataclass(frozen=True, slots=True)
class EntityFilter:
    """Which catalog entities a scorecard applies to; every given field must match.

    Strings match case-insensitively, as Tech Insights' check filters do. ``annotations``
    maps a key to the value it must have, or to None when being present is enough.
    """

    kinds: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    annotations: Mapping[str, str | None] = field(default_factory=lambda: MappingProxyType({}))

    def matches(self, entity: Mapping[str, Any]) -> bool:
        """Whether ``entity`` (a Backstage entity as JSON) is one this scorecard scores."""
        # Cheapest first: most entities of a fleet are told apart by their kind alone.
        if self.kinds and _fold(entity.get("kind")) not in self.kinds:
            return False
        if self.types and _fold(_mapping(entity.get("spec")).get("type")) not in self.types:
            return False
        if not self.tags and not self.annotations:
            return True
        metadata = _mapping(entity.get("metadata"))
        tags = metadata.get("tags")
        if self.tags and not (isinstance(tags, list) and self.tags & {_fold(t) for t in tags}):
            return False
        annotations = _mapping(metadata.get("annotations"))
        for key, wanted in self.annotations.items():
            if key not in annotations:
                return False
            if wanted is not None and _fold(annotations[key]) != wanted:
                return False
        return True


@dataclass(frozen=True, slots=True)
class Scorecard:
    """A named set of checks for the entities its filter matches, from one file."""

    name: str
    title: str
    description: str
    filter: EntityFilter
    checks: tuple[Check, ...]
    source: str


#: A scorecard is a few kilobytes; a file far larger is a mistake, not a definition.
MAX_DEFINITION_BYTES = 1_048_576

#: One definition file as read: its path, and its bytes or why it could not be read.
DefinitionFile = tuple[str, bytes | str]


def read_definitions(directory: Path) -> tuple[DefinitionFile, ...]:
    """Each ``directory/*.yaml`` file, by name, as read: equal reads compare equal.

    Reading is cheap next to parsing and validating, so a caller holding the scorecards of
    an equal read need not parse them again.
    """
    files: list[DefinitionFile] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            if not stat.S_ISREG(path.stat().st_mode):  # a pipe would block the reader for good
                files.append((str(path), "cannot be read: not a regular file"))
                continue
            with path.open("rb") as file:  # at most one byte past the limit, however it grew
                content = file.read(MAX_DEFINITION_BYTES + 1)
            if len(content) > MAX_DEFINITION_BYTES:
                files.append((str(path), f"larger than {MAX_DEFINITION_BYTES} bytes"))
            else:
                files.append((str(path), content))
        except OSError as exc:
            files.append((str(path), f"cannot be read: {exc.strerror}"))
    return tuple(files)


def load_scorecards(directory: Path) -> tuple[Scorecard, ...]:
    """Every scorecard in ``directory/*.yaml``, by file name (``parse_scorecards`` of a read)."""
    return parse_scorecards(read_definitions(directory))


def parse_scorecards(files: Sequence[DefinitionFile]) -> tuple[Scorecard, ...]:
    """The scorecards in definition files as read.

    Raises:
        DefinitionError: listing every problem in every file, including check ids or
            scorecard names used twice.
    """
    scorecards: list[Scorecard] = []
    problems: list[Problem] = []
    for source, content in files:
        if isinstance(content, str):
            problems.append(Problem(source, None, "$", content))
            continue
        try:
            data = yaml.load(content.decode("utf-8"), Loader=_StrictLoader)  # noqa: S506
        except UnicodeDecodeError as exc:
            problems.append(Problem(source, None, "$", f"not UTF-8 text (byte {exc.start})"))
            continue
        except RecursionError:
            problems.append(Problem(source, None, "$", "nested too deeply to read"))
            continue
        except yaml.YAMLError as exc:
            problems.append(Problem(source, None, "$", _yaml_message(exc)))
            continue
        try:
            scorecards.append(parse_scorecard(data, source))
        except DefinitionError as exc:
            problems.extend(exc.problems)
    problems.extend(_duplicates(scorecards))
    if problems:
        raise DefinitionError(problems)
    return tuple(scorecards)


def parse_scorecard(data: object, source: str) -> Scorecard:
    """The scorecard in one parsed file; ``source`` names the file in errors.

    Raises:
        DefinitionError: every schema violation, and any condition that cannot be compiled.
    """
    errors = sorted(_VALIDATOR.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        # A non-object condition fails both the dispatch and its branch: report it once.
        raise DefinitionError(list(dict.fromkeys(_problem(e, data, source) for e in errors)))
    assert isinstance(data, Mapping)  # noqa: S101  # the schema says so
    name = data["name"]
    checks: list[Check] = []
    problems: list[Problem] = []
    for where, check_id, raw in _checks(data["checks"]):
        try:
            conditions = parse_conditions(raw["rule"]["conditions"], f"{where}.rule.conditions")
        except RuleError as exc:
            problems.append(Problem(source, check_id, exc.where, exc.message))
            continue
        checks.append(_check(check_id, raw, conditions, name))
    problems.extend(_duplicates_in(checks, source))
    if problems:
        raise DefinitionError(problems)
    return Scorecard(
        name=name,
        title=data["title"],
        description=data.get("description", ""),
        filter=_filter(data["filter"]),
        checks=tuple(checks),
        source=source,
    )


def _checks(raw: object) -> list[tuple[str, str, Mapping[str, Any]]]:
    """``(json path, id, check)`` for the list form and the app-config map form alike."""
    if isinstance(raw, Mapping):
        return [(f"$.checks{_key(key)}", key, {**body, "id": key}) for key, body in raw.items()]
    assert isinstance(raw, list)  # noqa: S101  # the schema says so
    return [(f"$.checks[{i}]", body["id"], body) for i, body in enumerate(raw)]


def _check(check_id: str, raw: Mapping[str, Any], conditions: Node, scorecard: str) -> Check:
    definition = copy.deepcopy(dict(raw))
    return Check(
        id=check_id,
        name=raw["name"],
        description=raw["description"],
        fact_ids=tuple(raw["factIds"]),
        level=Level(raw["level"]),
        conditions=conditions,
        scorecard=scorecard,
        definition=MappingProxyType(definition),
        links=tuple(Link(link["title"], link["url"]) for link in raw.get("links", ())),
        metadata=raw.get("metadata"),
        success_metadata=raw.get("successMetadata"),
        failure_metadata=raw.get("failureMetadata"),
    )


def _filter(raw: Mapping[str, Any]) -> EntityFilter:
    annotations = raw.get("annotations", {})
    if isinstance(annotations, list):
        annotations = dict.fromkeys(annotations)
    return EntityFilter(
        kinds=_folded(raw.get("kind")),
        types=_folded(raw.get("spec.type")),
        tags=_folded(raw.get("tags")),
        annotations=MappingProxyType(
            {key: None if value is None else _fold(value) for key, value in annotations.items()}
        ),
    )


def _duplicates_in(checks: Sequence[Check], source: str) -> list[Problem]:
    seen: set[str] = set()
    problems = []
    for check in checks:
        if check.id in seen:
            problems.append(Problem(source, check.id, "$.checks", "check id used twice"))
        seen.add(check.id)
    return problems


def _duplicates(scorecards: Sequence[Scorecard]) -> list[Problem]:
    """Check ids and scorecard names must be unique across files: results are keyed by them."""
    problems: list[Problem] = []
    check_files: dict[str, str] = {}
    names: dict[str, str] = {}
    for scorecard in scorecards:
        if scorecard.name in names:
            message = f"scorecard name {scorecard.name!r} is also used in {names[scorecard.name]}"
            problems.append(Problem(scorecard.source, None, "$.name", message))
        names.setdefault(scorecard.name, scorecard.source)
        for check in scorecard.checks:
            first = check_files.setdefault(check.id, scorecard.source)
            if first != scorecard.source:
                message = f"check id used twice: also in {first}"
                problems.append(Problem(scorecard.source, check.id, "$.checks", message))
    return problems


def _problem(error: jsonschema.ValidationError, data: object, source: str) -> Problem:
    path = list(error.absolute_path)
    check_id = None
    if len(path) >= 2 and path[0] == "checks" and isinstance(data, Mapping):
        checks = data.get("checks")
        if isinstance(path[1], str):
            check_id = path[1]
        elif isinstance(checks, list) and isinstance(checks[path[1]], Mapping):
            raw_id = checks[path[1]].get("id")
            check_id = raw_id if isinstance(raw_id, str) else None
    message = error.message
    if isinstance(error.schema, Mapping):
        message = error.schema.get("x-message", message)
    return Problem(source, check_id, _json_path(path), message)


def _json_path(path: Sequence[Any]) -> str:
    return "$" + "".join(_key(p) for p in path)


def _key(part: object) -> str:
    if isinstance(part, int):
        return f"[{part}]"
    text = str(part)
    return f".{text}" if _IDENTIFIER.fullmatch(text) else f"[{text!r}]"


def _yaml_message(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return f"not valid YAML: {problem}{where}"


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key written twice instead of keeping the last."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[Hashable] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            if isinstance(key, Hashable):
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _mapping(value: object) -> Mapping[str, Any]:
    if type(value) is dict:  # JSON's objects: no abstract-class check
        return value
    return value if isinstance(value, Mapping) else {}


def _fold(value: object) -> str | None:
    return value.casefold() if isinstance(value, str) else None


def _folded(value: object) -> frozenset[str]:
    if value is None:
        return frozenset()
    values = [value] if isinstance(value, str) else list(value)  # type: ignore[call-overload]
    return frozenset(v.casefold() for v in values)
