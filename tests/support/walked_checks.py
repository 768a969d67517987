"""``run_checks`` as it was before checks were compiled: the oracle of the compiled form.

``check_facts`` merged per check, ``evaluate`` walking the tree, reasons and facts built from
its ``LeafResult``s. The compiled-rules tests hold the compiled form to it; the scorecards
benchmark times both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from trellis.scorecards import Scorecard, Unknown, evaluate
from trellis.scorecards.rules import LeafResult
from trellis.scorecards.scoring import CheckOutcome, Outcome, check_facts

__all__ = ["walked_json_value", "walked_run_checks"]


def walked_json_value(value: object) -> object:
    """A fact value as JSON, unknowns as null, recursing into everything."""
    if isinstance(value, Unknown):
        return None
    if isinstance(value, Mapping):
        return {key: walked_json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [walked_json_value(item) for item in value]
    return value


def _show(value: object) -> str:
    try:
        return json.dumps(walked_json_value(value), ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def _failed(leaf: LeafResult) -> str:
    where = f"{leaf.fact}{leaf.path[1:] if leaf.path and leaf.path.startswith('$') else ''}"
    return f"{where} is {_show(leaf.fact_value)}; wanted {leaf.operator} {_show(leaf.compared_to)}"


def walked_run_checks(
    scorecards: Sequence[Scorecard], entity: Mapping[str, Any], facts: Mapping[str, Any]
) -> list[CheckOutcome]:
    """Every check of every scorecard whose filter takes ``entity``, the tree walked."""
    outcomes = []
    for scorecard in [s for s in scorecards if s.filter.matches(entity)]:
        for check in scorecard.checks:
            seen = check_facts(check, facts)
            evaluation = evaluate(check.conditions, seen)
            if evaluation.result is None:
                outcome, reasons = Outcome.UNKNOWN, evaluation.reasons
            elif evaluation.result:
                outcome, reasons = Outcome.PASSED, ()
            else:
                outcome = Outcome.FAILED
                reasons = tuple(_failed(leaf) for leaf in evaluation.leaves if leaf.result is False)
            read = {leaf.fact for leaf in evaluation.leaves}
            shown = {name: walked_json_value(seen.get(name, Unknown(""))) for name in sorted(read)}
            outcomes.append(CheckOutcome(check.id, outcome, reasons, shown))
    return outcomes
