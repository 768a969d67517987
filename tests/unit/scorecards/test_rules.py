"""Nesting, three-valued logic for unknown facts, explanations, and malformed trees."""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trellis.scorecards import RuleError, Unknown, evaluate, facts_used, parse_conditions

T, F, U = True, False, None


def leaf(name):
    return {"fact": name, "operator": "equal", "value": True}


def facts_for(values):
    """Facts named v0, v1, ... with True/False, or left out (not read) for unknown."""
    return {f"v{i}": v for i, v in enumerate(values) if v is not None}


def result(conditions, *values):
    return evaluate(parse_conditions(conditions), facts_for(values)).result


def rooted(conditions, *values):
    """The result of any tree, a bare leaf included (a rule's root must be boolean)."""
    return result({"all": [conditions]}, *values)


# --- Kleene tables ---------------------------------------------------------------------------

AND = {
    (T, T): T,
    (T, F): F,
    (T, U): U,
    (F, T): F,
    (F, F): F,
    (F, U): F,
    (U, T): U,
    (U, F): F,
    (U, U): U,
}
OR = {
    (T, T): T,
    (T, F): T,
    (T, U): T,
    (F, T): T,
    (F, F): F,
    (F, U): U,
    (U, T): T,
    (U, F): U,
    (U, U): U,
}


@pytest.mark.parametrize(("a", "b"), list(AND))
def test_all_is_kleene_conjunction(a, b):
    assert result({"all": [leaf("v0"), leaf("v1")]}, a, b) is AND[a, b]


@pytest.mark.parametrize(("a", "b"), list(OR))
def test_any_is_kleene_disjunction(a, b):
    assert result({"any": [leaf("v0"), leaf("v1")]}, a, b) is OR[a, b]


@pytest.mark.parametrize(("a", "expected"), [(T, F), (F, T), (U, U)])
def test_not_flips_and_unknown_stays_unknown(a, expected):
    assert result({"not": leaf("v0")}, a) is expected


def test_empty_lists_pass_as_in_json_rules_engine():
    # prioritizeAndRun resolves true for zero conditions, for `any` as for `all`.
    assert result({"all": []}) is True
    assert result({"any": []}) is True
    assert result({"not": {"any": []}}) is False


def test_nesting_three_levels():
    conditions = {
        "all": [
            {"any": [leaf("v0"), {"not": leaf("v1")}]},
            {"not": {"all": [leaf("v2"), leaf("v3")]}},
        ]
    }
    assert result(conditions, F, F, T, F) is True
    assert result(conditions, F, T, T, F) is False
    assert result(conditions, T, U, F, U) is True  # unknowns the known parts outweigh
    assert result(conditions, U, T, F, F) is None


# --- unknown facts ----------------------------------------------------------------------------


def test_a_fact_that_was_not_read_is_unknown_with_a_reason():
    evaluation = evaluate(parse_conditions({"all": [leaf("latency")]}), {})
    assert evaluation.result is None
    assert evaluation.reasons == ("fact 'latency' was not read",)


def test_unknown_marker_as_a_whole_fact_and_inside_an_object_fact():
    node = parse_conditions(
        {
            "all": [
                {
                    "fact": "blueprint",
                    "path": "$.versionsBehind",
                    "operator": "lessThanInclusive",
                    "value": 1,
                }
            ]
        }
    )
    down = evaluate(node, {"blueprint": Unknown("blueprint repository unreachable")})
    assert (down.result, down.reasons) == (None, ("blueprint repository unreachable",))
    field = {"blueprint": "ml-model", "versionsBehind": Unknown("latest version not read")}
    partly = evaluate(node, {"blueprint": field})
    assert (partly.result, partly.reasons) == (None, ("latest version not read",))
    deeper = parse_conditions(
        {"all": [{"fact": "o", "path": "$.a.b", "operator": "equal", "value": 1}]}
    )
    assert evaluate(deeper, {"o": {"a": Unknown("why")}}).result is None


def test_null_is_a_value_not_unknown():
    # json-rules-engine semantics: a fact that was read as null compares as null.
    node = parse_conditions(
        {"all": [{"fact": "age", "operator": "lessThanInclusive", "value": 90}]}
    )
    evaluation = evaluate(node, {"age": None})
    assert evaluation.result is False
    assert evaluation.reasons == ()


def test_an_unknown_on_the_value_side_makes_the_comparison_unknown():
    node = parse_conditions({"all": [{"fact": "a", "operator": "equal", "value": {"fact": "b"}}]})
    assert evaluate(node, {"a": 1}).reasons == ("fact 'b' was not read",)
    both = evaluate(node, {})
    assert both.result is None
    assert both.reasons == ("fact 'a' was not read; fact 'b' was not read",)


def test_unknown_serving_facts_do_not_fail_a_check_that_registry_facts_fail():
    conditions = {"all": [leaf("hasOwner"), leaf("p95ok")]}
    assert evaluate(parse_conditions(conditions), {"hasOwner": False}).result is False
    assert evaluate(parse_conditions(conditions), {"hasOwner": True}).result is None


# --- explanations -----------------------------------------------------------------------------


def test_every_leaf_is_reported_in_written_order_with_what_it_saw():
    node = parse_conditions(
        {
            "any": [
                {"fact": "a", "operator": "equal", "value": 1},
                {"not": {"fact": "b", "path": "$.x", "operator": "in", "value": [1, 2]}},
                {"fact": "c", "operator": "greaterThan", "value": 0},
            ]
        }
    )
    evaluation = evaluate(node, {"a": 1, "b": {"x": 2}})
    assert evaluation.result is True
    assert [(r.fact, r.path, r.fact_value, r.result) for r in evaluation.leaves] == [
        ("a", None, 1, True),
        ("b", "$.x", 2, True),
        ("c", None, Unknown("fact 'c' was not read"), None),
    ]


def test_facts_used_lists_both_sides():
    node = parse_conditions(
        {"all": [{"fact": "a", "operator": "equal", "value": {"fact": "b"}}, {"not": leaf("c")}]}
    )
    assert facts_used(node) == {"a", "b", "c"}


def test_params_are_accepted_and_do_not_change_a_constant_fact():
    node = parse_conditions(
        {"all": [{"fact": "a", "params": {"x": 1}, "operator": "equal", "value": 2}]}
    )
    assert evaluate(node, {"a": 2}).result is True


# --- malformed trees --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conditions", "where", "words"),
    [
        ({"fact": "a", "operator": "equal", "value": 1}, "conditions", "root"),
        ([], "conditions", "root"),
        ({"all": {"fact": "a"}}, "conditions.all", "array"),
        ({"not": [leaf("a")]}, "conditions.not", "not an array"),
        (
            {"all": [{"fact": "a", "operator": "equals", "value": 1}]},
            "conditions.all[0].operator",
            "unknown operator",
        ),
        ({"all": [{"fact": "a", "operator": "equal"}]}, "conditions.all[0]", "`value`"),
        ({"any": [{"operator": "equal", "value": 1}]}, "conditions.any[0]", "`fact`"),
        (
            {"all": [{"fact": "a", "path": "$..b", "operator": "equal", "value": 1}]},
            "conditions.all[0].path",
            "JSONPath",
        ),
        (
            {"all": [{"fact": "a", "path": "$.b[*]", "operator": "equal", "value": 1}]},
            "conditions.all[0].path",
            "JSONPath",
        ),
        (
            {"all": [{"fact": "a", "path": "$.b[?(@.x)]", "operator": "equal", "value": 1}]},
            "conditions.all[0].path",
            "JSONPath",
        ),
        (
            {
                "all": [
                    {"fact": "a", "operator": "equal", "value": {"fact": "b", "path": "$.c[0:2]"}}
                ]
            },
            "conditions.all[0].value.path",
            "JSONPath",
        ),
        ({"all": ["text"]}, "conditions.all[0]", "object"),
    ],
)
def test_malformed_conditions_name_the_json_path(conditions, where, words):
    with pytest.raises(RuleError) as caught:
        parse_conditions(conditions)
    assert caught.value.where == where
    assert words in caught.value.message


# --- properties -------------------------------------------------------------------------------

truths = st.sampled_from([T, F, U])


def trees(max_leaves=6):
    """Condition trees over leaves v0..v5 (non-empty lists, where Kleene's laws hold)."""
    leaves = st.integers(0, max_leaves - 1).map(lambda i: leaf(f"v{i}"))
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, min_size=1, max_size=3).map(lambda c: {"all": c}),
            st.lists(children, min_size=1, max_size=3).map(lambda c: {"any": c}),
            children.map(lambda c: {"not": c}),
        ),
        max_leaves=8,
    )


ORDER = {F: 0, U: 1, T: 2}
BACK = {0: F, 1: U, 2: T}


def reference(conditions, values):
    """Kleene logic as min/max over false < unknown < true."""
    if "all" in conditions:
        return BACK[min(ORDER[reference(c, values)] for c in conditions["all"])]
    if "any" in conditions:
        return BACK[max(ORDER[reference(c, values)] for c in conditions["any"])]
    if "not" in conditions:
        return BACK[2 - ORDER[reference(conditions["not"], values)]]
    return values[int(conditions["fact"][1:])]


@given(trees(), st.lists(truths, min_size=6, max_size=6))
def test_engine_matches_a_min_max_reference(conditions, values):
    assert rooted(conditions, *values) is reference(conditions, values)


@given(trees(), st.lists(st.booleans(), min_size=6, max_size=6))
def test_without_unknowns_it_is_plain_boolean_logic(conditions, values):
    def plain(c):
        if "all" in c:
            return all(plain(x) for x in c["all"])
        if "any" in c:
            return any(plain(x) for x in c["any"])
        if "not" in c:
            return not plain(c["not"])
        return values[int(c["fact"][1:])]

    assert rooted(conditions, *values) is plain(conditions)


@given(trees(), trees(), st.lists(truths, min_size=6, max_size=6))
def test_double_negation_and_de_morgan_hold_with_unknowns(a, b, values):
    def r(c):
        return rooted(c, *values)

    assert r({"not": {"not": a}}) is r(a)
    assert r({"not": {"all": [a, b]}}) is r({"any": [{"not": a}, {"not": b}]})
    assert r({"not": {"any": [a, b]}}) is r({"all": [{"not": a}, {"not": b}]})


def test_every_combination_of_three_leaves_against_the_reference():
    conditions = {"any": [{"all": [leaf("v0"), leaf("v1")]}, {"not": leaf("v2")}]}
    for values in itertools.product([T, F, U], repeat=3):
        assert result(conditions, *values) is reference(conditions, list(values))
