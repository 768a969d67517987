"""Compiled checks give exactly the outcomes of the plain tree walk, on random trees and facts.

The oracle is ``run_checks`` as it was before checks were compiled
(``support.walked_checks``).
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from support.walked_checks import walked_json_value, walked_run_checks
from trellis.scorecards import (
    OPERATORS,
    Check,
    EntityFilter,
    Level,
    Scorecard,
    Unknown,
    compile_rule,
    evaluate,
    parse_conditions,
)
from trellis.scorecards.jsvalues import less_than, number_validator, parse_float, to_number
from trellis.scorecards.scoring import (
    compile_checks,
    json_value,
    run_checks,
)

FACTS = ("f0", "f1", "f2", "f3")
RETRIEVERS = ("r1", "r2", "r3")
PATHS = (None, "", "$.a", "$.a.b", "$[0]", "$.length", "a", "$['b']", "$.a[1]")

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=False, width=32),
    st.sampled_from(["", "a", "1", "10", "9", " 2 ", "0x1f", "ab,c"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["a", "b", "0"]), inner, max_size=3),
    ),
    max_leaves=6,
)
#: Fact values: JSON, with unknowns whole or inside an object.
fact_values = st.one_of(
    json_values,
    st.builds(Unknown, st.sampled_from(["down", "timed out"])),
    st.dictionaries(
        st.sampled_from(["a", "b"]),
        st.one_of(json_values, st.just(Unknown("inside"))),
        max_size=2,
    ),
)


@st.composite
def leaves(draw: st.DrawFn) -> dict[str, Any]:
    leaf: dict[str, Any] = {"fact": draw(st.sampled_from(FACTS))}
    leaf["operator"] = draw(st.sampled_from(OPERATORS))
    if draw(st.integers(0, 4)) == 0:
        ref: dict[str, Any] = {"fact": draw(st.sampled_from(FACTS))}
        if (path := draw(st.sampled_from(PATHS))) is not None:
            ref["path"] = path
        leaf["value"] = ref
    else:
        leaf["value"] = draw(json_values)
    if (path := draw(st.sampled_from(PATHS))) is not None:
        leaf["path"] = path
    return leaf


trees = st.recursive(
    leaves(),
    lambda children: st.one_of(
        st.lists(children, max_size=3).map(lambda c: {"all": c}),
        st.lists(children, max_size=3).map(lambda c: {"any": c}),
        children.map(lambda c: {"not": c}),
    ),
    max_leaves=8,
)
roots = trees.map(lambda tree: tree if {"all", "any", "not"} & tree.keys() else {"all": [tree]})
facts_by_retriever = st.dictionaries(
    st.sampled_from(RETRIEVERS), st.dictionaries(st.sampled_from(FACTS), fact_values), max_size=3
)
fact_ids = st.lists(st.sampled_from(RETRIEVERS), min_size=1, max_size=3, unique=True).map(tuple)


def scorecard_of(checks: list[tuple[dict[str, Any], tuple[str, ...]]]) -> Scorecard:
    made = tuple(
        Check(
            id=f"c{i}",
            name=f"c{i}",
            description="",
            fact_ids=ids,
            level=Level.BRONZE,
            conditions=parse_conditions(conditions),
            scorecard="random",
            definition={},
        )
        for i, (conditions, ids) in enumerate(checks)
    )
    return Scorecard(
        name="random",
        title="Random",
        description="",
        filter=EntityFilter(),
        checks=made,
        source="random.yaml",
    )


# --- the properties ----------------------------------------------------------------------------


#: Where the compiled ``equal``/``notEqual`` shortcuts could part from ``===``: a boolean, a
#: number and a string that look alike, and null against a missing fact.
LOOKALIKES = {"all": [
    {"fact": "f0", "operator": "equal", "value": True},
    {"fact": "f1", "operator": "equal", "value": 1},
    {"fact": "f2", "operator": "notEqual", "value": "1"},
    {"fact": "f3", "operator": "equal", "value": None},
    {"fact": "f0", "operator": "notEqual", "value": 1.0},
]}  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(roots, st.dictionaries(st.sampled_from(FACTS), fact_values))
@example(LOOKALIKES, {"f0": 1, "f1": True, "f2": 1})
@example(LOOKALIKES, {"f0": True, "f1": 1.0, "f2": "1", "f3": None})
@example(LOOKALIKES, {"f0": 1.0, "f1": "1", "f3": False})
def test_a_compiled_rule_evaluates_as_the_tree_walk(conditions, facts):
    node = parse_conditions(conditions)
    walked = evaluate(node, facts)
    result, seen = compile_rule(node).results(facts)
    assert result == walked.result
    assert seen == [
        (leaf.result, leaf.fact_value, leaf.compared_to, leaf.reason) for leaf in walked.leaves
    ]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(roots, fact_ids), min_size=1, max_size=4),
    st.lists(facts_by_retriever, min_size=1, max_size=4),
)
def test_compiled_checks_give_the_outcomes_of_the_tree_walk(checks, entities):
    scorecard = scorecard_of(checks)
    compiled = compile_checks([scorecard])  # once, for every entity, as a run does
    entity = {"kind": "Resource", "metadata": {"name": "m"}}
    for facts in entities:
        expected = walked_run_checks([scorecard], entity, facts)
        assert run_checks(compiled, entity, facts) == expected
        assert run_checks([scorecard], entity, facts) == expected


@given(fact_values)
def test_json_value_is_unchanged_by_its_fast_path(value):
    assert json_value(value) == walked_json_value(value)


numbers = st.one_of(st.integers(-(2**60), 2**60), st.floats(), st.floats(width=16))


@given(numbers, st.one_of(numbers, scalars))
def test_the_numeric_shortcuts_answer_as_the_conversions_do(a, b):
    """For numbers, what parsing their printed form and ``ToNumber`` would answer."""
    assert number_validator(a) is (not math.isnan(parse_float(a)))
    if isinstance(b, int | float) and not isinstance(b, bool):
        na, nb = to_number(a), to_number(b)
        assert less_than(a, b) is (None if math.isnan(na) or math.isnan(nb) else na < nb)
