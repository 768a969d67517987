"""Checks run against one entity's facts, levels reached, and the fleet rolled up.

Results are three-valued: a check is passed, failed or unknown (a fact it reads could not
be read). A level is reached when every check at that level and below has passed; an
unknown check holds a level back just as a failed one does, but it is never reported as
failed.

A run compiles its checks once (``compile_checks``): each check's tree as closures, the facts
it reports, and what a failed comparison against a constant says; then ``run_checks`` costs
per entity only the comparisons themselves.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from trellis.scorecards.definitions import Check, Level, Scorecard
from trellis.scorecards.rules import CompiledRule, FactRef, Seen, compile_rule
from trellis.scorecards.unknown import Unknown

__all__ = [
    "NO_LEVEL",
    "CheckOutcome",
    "CompiledChecks",
    "Outcome",
    "ScorecardView",
    "applicable",
    "check_facts",
    "compile_checks",
    "entity_levels",
    "fleet_rollup",
    "json_value",
    "run_checks",
    "tally_levels",
    "view",
]

#: The roll-up's name for entities that reached no level.
NO_LEVEL = "none"


class Outcome(StrEnum):
    """What a check says of an entity."""

    PASSED = "passed"
    FAILED = "failed"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """One check's outcome for one entity: why, and the facts it read (unknowns as null)."""

    check_id: str
    outcome: Outcome
    reasons: tuple[str, ...]
    facts: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class ScorecardView:
    """One scorecard for one entity: each check with its outcome, and the level reached."""

    scorecard: Scorecard
    outcomes: tuple[tuple[Check, CheckOutcome | None], ...]
    level: Level | None

    def as_json(self) -> dict[str, object]:
        """The scorecard as ``/api/scorecards/{namespace}/{kind}/{name}`` shows it."""
        counts = Counter(o.outcome.value if o else "pending" for _, o in self.outcomes)
        return {
            "name": self.scorecard.name,
            "title": self.scorecard.title,
            "description": self.scorecard.description,
            "level": self.level.value if self.level else None,
            "counts": {key: counts.get(key, 0) for key in (*Outcome, "pending")},
            "checks": [_check_json(check, outcome) for check, outcome in self.outcomes],
        }


def applicable(scorecards: Iterable[Scorecard], entity: Mapping[str, Any]) -> list[Scorecard]:
    """The scorecards whose filter matches ``entity`` (a Backstage entity as JSON)."""
    return [scorecard for scorecard in scorecards if scorecard.filter.matches(entity)]


def check_facts(check: Check, facts: Mapping[str, Mapping[str, object]]) -> dict[str, object]:
    """The facts a check sees: those of every retriever it names, merged in order."""
    merged: dict[str, object] = {}
    for retriever in check.fact_ids:
        merged.update(facts.get(retriever, {}))
    return merged


@dataclass(frozen=True, slots=True)
class _CompiledCheck:
    """One check ready to run: its rule compiled, what it reports, how failures read."""

    check: Check
    rule: CompiledRule
    #: The facts its outcome shows: the left-hand side of every comparison, sorted.
    shown: tuple[str, ...]
    #: Per leaf: the failure's start (``fact$.path``) and, for a constant, its ``wanted`` part.
    failures: tuple[tuple[str, str | None], ...] = field(repr=False)


@dataclass(frozen=True, slots=True)
class CompiledChecks:
    """Scorecards with every check compiled once, for a run over many entities."""

    scorecards: tuple[tuple[Scorecard, tuple[_CompiledCheck, ...]], ...]


def compile_checks(scorecards: Iterable[Scorecard]) -> CompiledChecks:
    """``scorecards`` with each check's conditions compiled (once per run, not per entity)."""
    return CompiledChecks(
        tuple(
            (scorecard, tuple(_compile(check) for check in scorecard.checks))
            for scorecard in scorecards
        )
    )


def _compile(check: Check) -> _CompiledCheck:
    rule = compile_rule(check.conditions)
    failures = tuple(
        (
            _where(leaf.fact, leaf.path),
            None if isinstance(leaf.value, FactRef) else _wanted(leaf.operator, leaf.value),
        )
        for leaf in rule.leaves
    )
    return _CompiledCheck(check, rule, tuple(sorted({leaf.fact for leaf in rule.leaves})), failures)


def run_checks(
    scorecards: Iterable[Scorecard] | CompiledChecks,
    entity: Mapping[str, Any],
    facts: Mapping[str, Mapping[str, object]],
    *,
    changed: Collection[str] | None = None,
) -> list[CheckOutcome]:
    """Every check of every scorecard that applies to ``entity``, against its facts.

    ``facts`` are by retriever id; a retriever with no facts for it leaves them unknown.
    A run over many entities passes ``compile_checks``'s result; scorecards are compiled here.
    With ``changed`` (retriever ids), only the checks reading one of them are run: the others'
    outcomes are those they had.
    """
    compiled = scorecards if isinstance(scorecards, CompiledChecks) else compile_checks(scorecards)
    outcomes = []
    merged: dict[tuple[str, ...], dict[str, object]] = {}
    for scorecard, checks in compiled.scorecards:
        if not scorecard.filter.matches(entity):
            continue
        for compiled_check in checks:
            check = compiled_check.check
            if changed is not None and not any(r in changed for r in check.fact_ids):
                continue
            seen = merged.get(check.fact_ids)
            if seen is None:  # checks that name the same retrievers see the same facts
                seen = merged[check.fact_ids] = check_facts(check, facts)
            result, leaves = compiled_check.rule.results(seen)
            if result is None:
                outcome = Outcome.UNKNOWN
                reasons = tuple(dict.fromkeys(reason for *_, reason in leaves if reason))
            elif result:
                outcome, reasons = Outcome.PASSED, ()
            else:
                outcome, reasons = Outcome.FAILED, _failures(compiled_check, leaves)
            outcomes.append(
                CheckOutcome(
                    check.id,
                    outcome,
                    reasons,
                    {name: json_value(seen.get(name, _NOT_READ)) for name in compiled_check.shown},
                )
            )
    return outcomes


#: What ``json_value`` makes null: a fact a check reports but no retriever gave.
_NOT_READ = Unknown("")


def _failures(compiled: _CompiledCheck, leaves: Sequence[Seen]) -> tuple[str, ...]:
    """Each comparison that was false, in order: what it saw and what it wanted."""
    reasons = []
    for leaf, (result, fact_value, compared_to, _), (where, wanted) in zip(
        compiled.rule.leaves, leaves, compiled.failures, strict=True
    ):
        if result is False:
            wanted = wanted or _wanted(leaf.operator, compared_to)
            reasons.append(f"{where} is {_show(fact_value)}; {wanted}")
    return tuple(reasons)


def view(scorecard: Scorecard, outcomes: Mapping[str, CheckOutcome]) -> ScorecardView:
    """``scorecard`` for one entity from its kept outcomes by check id."""
    pairs = tuple((check, outcomes.get(check.id)) for check in scorecard.checks)
    return ScorecardView(
        scorecard, pairs, _level(scorecard, {c: o.outcome for c, o in outcomes.items()})
    )


def _level(scorecard: Scorecard, outcomes: Mapping[str, Outcome]) -> Level | None:
    """The highest level whose checks, and those of every level below, all passed."""
    reached: Level | None = None
    for level in Level:
        at = [outcomes.get(check.id) for check in scorecard.checks if check.level is level]
        if any(o is not Outcome.PASSED for o in at):
            break
        if at or reached is not None:
            reached = level
    return reached


def fleet_rollup(
    scorecards: Sequence[Scorecard],
    entities: Mapping[str, Mapping[str, Any]],
    outcomes: Mapping[str, Mapping[str, CheckOutcome]],
) -> list[dict[str, object]]:
    """For each scorecard, how many entities reached each level: in all, by owner, by system.

    Owner and system are ``spec.owner`` / ``spec.system`` of the entities it applies to.
    """
    levels = {
        ref: entity_levels(
            scorecards, entity, {c: o.outcome for c, o in outcomes.get(ref, {}).items()}
        )
        for ref, entity in entities.items()
    }
    return tally_levels(scorecards, entities, levels)


def entity_levels(
    scorecards: Sequence[Scorecard],
    entity: Mapping[str, Any],
    outcomes: Mapping[str, Outcome],
) -> tuple[str | None, ...]:
    """Per scorecard, the level ``entity`` reached (``NO_LEVEL`` for none), or None.

    None where the scorecard does not apply. ``outcomes`` are by check id. It is what the
    roll-up counts of one entity, so a run can keep it for the next.
    """
    found: list[str | None] = []
    for scorecard in scorecards:
        if not scorecard.filter.matches(entity):
            found.append(None)
            continue
        level = _level(scorecard, outcomes)
        found.append(level.value if level else NO_LEVEL)
    return tuple(found)


def tally_levels(
    scorecards: Sequence[Scorecard],
    entities: Mapping[str, Mapping[str, Any]],
    levels: Mapping[str, Sequence[str | None]],
) -> list[dict[str, object]]:
    """``fleet_rollup`` from each entity's ``entity_levels``."""
    rollups = []
    for index, scorecard in enumerate(scorecards):
        total: Counter[str] = Counter()
        by_owner: defaultdict[str, Counter[str]] = defaultdict(Counter)
        by_system: defaultdict[str, Counter[str]] = defaultdict(Counter)
        for ref, entity in entities.items():
            key = levels[ref][index]
            if key is None:
                continue
            spec = entity.get("spec") or {}
            total[key] += 1
            by_owner[str(spec.get("owner") or "")][key] += 1
            if spec.get("system"):
                by_system[str(spec["system"])][key] += 1
        rollups.append(
            {
                "name": scorecard.name,
                "title": scorecard.title,
                "entities": sum(total.values()),
                "levels": _levels(total),
                "byOwner": {owner: _levels(c) for owner, c in sorted(by_owner.items())},
                "bySystem": {system: _levels(c) for system, c in sorted(by_system.items())},
            }
        )
    return rollups


def _levels(counts: Counter[str]) -> dict[str, int]:
    return {key: counts.get(key, 0) for key in (NO_LEVEL, *(level.value for level in Level))}


def json_value(value: object) -> object:
    """A fact value as JSON: unknowns (at any depth) become null."""
    if value is None or type(value) in _SCALARS:
        return value
    if isinstance(value, Unknown):
        return None
    if isinstance(value, Mapping):
        return {key: json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    return value


#: Types ``json_value`` gives back as they are (exact types: subclasses take the long way).
_SCALARS = frozenset({str, int, float, bool})


def _where(fact: str, path: str | None) -> str:
    return f"{fact}{path[1:] if path and path.startswith('$') else ''}"


def _wanted(operator: str, compared_to: object) -> str:
    return f"wanted {operator} {_show(compared_to)}"


#: ``json.dumps(..., ensure_ascii=False, sort_keys=True)`` without building an encoder per
#: call: a first run shows a value in each of about 70,000 failed comparisons.
_SHOW = json.JSONEncoder(ensure_ascii=False, sort_keys=True)


def _show(value: object) -> str:
    try:
        return _SHOW.encode(json_value(value))
    except (TypeError, ValueError):  # a non-JSON value: say what it is rather than fail
        return repr(value)


def _check_json(check: Check, outcome: CheckOutcome | None) -> dict[str, object]:
    return {
        "id": check.id,
        "name": check.name,
        "description": check.description,
        "level": check.level.value,
        "factIds": list(check.fact_ids),
        "outcome": outcome.outcome.value if outcome else "pending",
        "reasons": list(outcome.reasons) if outcome else ["not evaluated yet"],
        "facts": dict(outcome.facts) if outcome else {},
        "links": [{"title": link.title, "url": link.url} for link in check.links],
    }
