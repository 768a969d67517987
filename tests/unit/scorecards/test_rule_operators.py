"""Every json-rules-engine operator, with the type rules the package inherits from JavaScript.

Expected results were taken from json-rules-engine 7.3.1 itself (``engine.run`` on the same
condition and fact); where the package throws a TypeError, Trellis answers unknown.
"""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trellis.scorecards.jsvalues import (
    UNDEFINED,
    index_of,
    js_string,
    less_than,
    number_validator,
    parse_float,
    strict_equal,
    to_number,
)
from trellis.scorecards.rules import OPERATORS, evaluate, parse_conditions


def run(fact_value, operator, value):
    node = parse_conditions({"all": [{"fact": "f", "operator": operator, "value": value}]})
    return evaluate(node, {"f": fact_value})


CASES = [
    # equal / notEqual: ===, no coercion; objects only equal to themselves.
    (1, "equal", 1, True),
    (1, "equal", 1.0, True),
    (-0.0, "equal", 0, True),
    (1, "equal", "1", False),
    (True, "equal", 1, False),
    (None, "equal", False, False),
    ("abc", "equal", "abc", True),
    ([1], "equal", [1], False),
    ({"a": 1}, "equal", {"a": 1}, False),
    (1, "notEqual", "1", True),
    (None, "notEqual", "", True),
    ([1], "notEqual", [1], True),
    ("a", "notEqual", "a", False),
    # in / notIn: value.indexOf(fact) — arrays by ===, strings by substring.
    ("a", "in", ["a", "b"], True),
    (1, "in", ["1"], False),
    (1.0, "in", [1], True),
    ([1], "in", [[1]], False),
    ("b", "in", "abc", True),
    (1, "in", "a1b", True),
    (None, "in", "null", True),
    (True, "in", "true", True),
    ([1, 2], "in", "1,2", True),
    ("", "in", "x", True),
    ("z", "in", [], False),
    ("a", "notIn", ["a"], False),
    ("c", "notIn", ["a", "b"], True),
    (None, "notIn", [], True),
    ("x", "notIn", "abc", True),
    # contains / doesNotContain: only an array fact can contain anything.
    (["a", "b"], "contains", "a", True),
    ([1, 2], "contains", "1", False),
    ([[1]], "contains", [1], False),
    ("abc", "contains", "a", False),
    ({"a": 1}, "contains", "a", False),
    (None, "contains", None, False),
    (["a"], "doesNotContain", "b", True),
    (["a"], "doesNotContain", "a", False),
    ("abc", "doesNotContain", "z", False),
    (5, "doesNotContain", 1, False),
    # numeric operators: parseFloat(fact) must be a number, then JavaScript's < and <=.
    (1, "lessThan", 2, True),
    (2, "lessThan", 2, False),
    (2, "lessThanInclusive", 2, True),
    (3, "greaterThan", 2, True),
    (2, "greaterThanInclusive", 2, True),
    (1.5, "greaterThanInclusive", 2, False),
    ("10", "lessThan", "9", True),  # two strings compare as text
    ("10", "lessThan", 9, False),  # a string and a number compare as numbers
    ("12abc", "greaterThan", 1, False),  # passes parseFloat, then Number("12abc") is NaN
    (" 12 ", "greaterThan", 11, True),
    ("0x10", "greaterThan", 15, True),  # parseFloat("0x10") is 0: it passes; Number() is 16
    ("0x10", "greaterThan", 16, False),
    ("Infinity", "greaterThan", 1e300, True),
    ("1e3", "greaterThanInclusive", 1000, True),
    (".5", "lessThan", 1, True),
    ("abc", "lessThan", 1, False),
    ("", "lessThanInclusive", 0, False),  # parseFloat("") is NaN: refused before comparing
    (True, "greaterThan", 0, False),
    (None, "lessThan", 1, False),
    (None, "lessThanInclusive", 0, False),
    ([5], "greaterThan", 4, True),  # [5] becomes "5"
    ([1, 2], "greaterThan", 0, False),  # passes parseFloat ("1,2" → 1), Number("1,2") is NaN
    ([], "lessThan", 1, False),
    ({}, "lessThan", 1, False),
    (5, "lessThan", "6", True),
    (5, "lessThan", "abc", False),
    (5, "greaterThan", None, True),  # null is 0 on the value side
    (5, "greaterThan", True, True),  # true is 1
    (5, "lessThanInclusive", [5], True),
    ("b", "greaterThan", "a", False),  # parseFloat("b") is NaN: text facts never compare
    ("2", "greaterThan", "10", True),  # two numeric strings compare as text
    ("\uffff", "lessThan", "\U0001f600", False),  # UTF-16 code units: U+FFFF > 0xD83D
    ("1e21", "lessThan", 1e22, True),
    ("5e", "greaterThan", 4, False),  # parseFloat reads 5, Number("5e") is NaN
    # <= is !(b < a) in JavaScript, except that a NaN makes both false.
    ("12abc", "lessThanInclusive", 100, False),
    ("12abc", "greaterThanInclusive", 1, False),
    ([1, 2], "lessThanInclusive", 5, False),
    (5, "greaterThanInclusive", "abc", False),
    (5, "lessThanInclusive", "abc", False),
]


@pytest.mark.parametrize(("fact", "operator", "value", "expected"), CASES)
def test_operator_matches_json_rules_engine(fact, operator, value, expected):
    evaluation = run(fact, operator, value)
    assert evaluation.result is expected
    assert evaluation.leaves[0].reason is None


def test_every_default_operator_is_covered():
    assert set(OPERATORS) == {operator for _, operator, _, _ in CASES}
    assert len(OPERATORS) == 10


@pytest.mark.parametrize("value", [3, 1.5, True, None, {"a": 1}])
@pytest.mark.parametrize("operator", ["in", "notIn"])
def test_in_against_a_value_without_index_of_is_unknown_not_false(operator, value):
    # json-rules-engine throws "b.indexOf is not a function" and the whole run fails.
    evaluation = run("a", operator, value)
    assert evaluation.result is None
    assert "TypeError" in evaluation.leaves[0].reason


def test_leaf_result_keeps_what_was_compared():
    leaf = run([1, 2], "contains", 2).leaves[0]
    assert (leaf.fact, leaf.operator, leaf.fact_value, leaf.compared_to) == (
        "f",
        "contains",
        [1, 2],
        2,
    )
    assert leaf.result is True


# --- paths -------------------------------------------------------------------------------

OBJECT = {
    "a": {"b": 3, "list": [10, 20, {"c": 30}], "n": None, "a b": 7, "0": "zero", "x-y": 5},
    "s": "abc",
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$.a.b", 3),
        ("a.b", 3),  # jsonpath-plus reads a path without `$` from the root
        ("$.a.list[0]", 10),
        ("$.a.list.1", 20),
        ("$.a.list[2].c", 30),
        ("$.a['a b']", 7),
        ('$.a["a b"]', 7),
        ("$.a[0]", "zero"),  # an index is a property name to an object
        ("$.a.x-y", 5),
        ("$.a.list.length", 3),
        ("$.s.length", 3),
        ("$.s[0]", "a"),
        ("$.a.n", None),
        ("$.a.missing", UNDEFINED),
        ("$.a.list[9]", UNDEFINED),
        ("$.a.list[01]", UNDEFINED),
        ("$.a.b.c", UNDEFINED),
    ],
)
def test_path_reads_one_value_like_jsonpath_plus(path, expected):
    node = parse_conditions({"all": [{"fact": "o", "path": path, "operator": "equal", "value": 0}]})
    assert evaluate(node, {"o": OBJECT}).leaves[0].fact_value == expected


def test_path_into_an_object_fact_compares_the_field():
    node = parse_conditions(
        {
            "all": [
                {
                    "fact": "m",
                    "path": "$.accuracy",
                    "operator": "greaterThanInclusive",
                    "value": 0.8,
                }
            ]
        }
    )
    assert evaluate(node, {"m": {"accuracy": 0.93}}).result is True
    assert evaluate(node, {"m": {"accuracy": 0.5}}).result is False
    # A metric the champion does not have is known to be missing: false, not unknown.
    missing = evaluate(node, {"m": {"f1": 0.9}})
    assert missing.result is False
    assert missing.leaves[0].fact_value is UNDEFINED


@pytest.mark.parametrize("fact_value", [5, "5"])
def test_path_on_a_scalar_fact_uses_the_fact_itself(fact_value):
    # json-rules-engine walks a path only into objects; other values are used whole.
    node = parse_conditions(
        {"all": [{"fact": "s", "path": "$.x", "operator": "equal", "value": 5}]}
    )
    assert evaluate(node, {"s": fact_value}).result is (fact_value == 5)


def test_path_on_an_array_fact_indexes_it():
    node = parse_conditions(
        {"all": [{"fact": "r", "path": "$[1]", "operator": "equal", "value": 2}]}
    )
    assert evaluate(node, {"r": [1, 2]}).result is True


# --- fact-to-fact comparisons -------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "operator", "b", "expected"),
    [
        (1, "equal", 1, True),
        (1, "equal", 2, False),
        (2, "equal", "2", False),
        (3, "lessThan", 5, True),
        ("a", "in", ["a"], True),
        ([1], "equal", [1], False),  # two facts, two arrays
        ([1, 2], "contains", 2, True),
    ],
)
def test_value_can_be_another_fact(a, operator, b, expected):
    node = parse_conditions({"all": [{"fact": "a", "operator": operator, "value": {"fact": "b"}}]})
    evaluation = evaluate(node, {"a": a, "b": b})
    assert evaluation.result is expected
    assert evaluation.leaves[0].compared_to == b


def test_value_fact_with_path_and_the_same_object_compared_to_itself():
    node = parse_conditions(
        {"all": [{"fact": "a", "operator": "equal", "value": {"fact": "o", "path": "$.x.y"}}]}
    )
    assert evaluate(node, {"a": 4, "o": {"x": {"y": 4}}}).result is True
    assert evaluate(node, {"a": 4, "o": {"x": {}}}).result is False
    same = parse_conditions({"all": [{"fact": "o", "operator": "equal", "value": {"fact": "o"}}]})
    assert evaluate(same, {"o": [1]}).result is True  # one array, === to itself


def test_an_object_value_without_fact_is_a_literal():
    node = parse_conditions({"all": [{"fact": "a", "operator": "equal", "value": {"other": 1}}]})
    assert evaluate(node, {"a": 4}).result is False


# --- JavaScript conversions the operators rely on -------------------------------------------


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (0.0, "0"),
        (-0.0, "0"),
        (1.0, "1"),
        (1.5, "1.5"),
        (-2.25, "-2.25"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1.5e-7, "1.5e-7"),
        (0.000001, "0.000001"),
        (123e-20, "1.23e-18"),
        (math.inf, "Infinity"),
        (-math.inf, "-Infinity"),
        (math.nan, "NaN"),
        (0.1 + 0.2, "0.30000000000000004"),
    ],
)
def test_numbers_print_as_javascript_prints_them(number, text):
    assert js_string(number) == text


def test_string_forms_of_other_values():
    assert js_string([1, None, [2, 3], "a"]) == "1,,2,3,a"
    assert js_string({"a": 1}) == "[object Object]"
    assert (js_string(None), js_string(UNDEFINED), js_string(True)) == ("null", "undefined", "true")


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("", 0.0),
        ("  7\n", 7.0),
        ("0x1F", 31.0),
        ("0b11", 3.0),
        ("0o17", 15.0),
        ("-Infinity", -math.inf),
    ],
)
def test_to_number_parses_javascript_numeric_strings(text, number):
    assert to_number(text) == number


@pytest.mark.parametrize(
    "text", ["1_0", "\uff11\uff12", "inf", "nan", "-0x1", "5e", "1,2", "\x1c7"]
)
def test_to_number_refuses_what_python_would_accept(text):
    assert math.isnan(to_number(text))


def test_parse_float_reads_a_leading_number():
    assert parse_float("12abc") == 12
    assert parse_float("\u00a0-1e3x") == -1000
    assert math.isnan(parse_float("x1"))
    assert number_validator([7]) and not number_validator([]) and not number_validator(True)


@given(
    st.one_of(st.integers(-(2**53), 2**53), st.floats(allow_nan=False)), st.floats(allow_nan=False)
)
def test_numeric_operators_agree_with_python_on_numbers(a, b):
    assert run(a, "lessThan", b).result is (a < b)
    assert run(a, "lessThanInclusive", b).result is (a <= b)
    assert run(a, "greaterThan", b).result is (a > b)
    assert run(a, "greaterThanInclusive", b).result is (a >= b)


scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=3))


@given(scalars, st.lists(scalars, max_size=5))
def test_contains_and_in_are_the_same_question_from_both_sides(item, items):
    assert run(items, "contains", item).result is run(item, "in", items).result
    assert run(items, "doesNotContain", item).result is run(item, "notIn", items).result
    assert run(items, "contains", item).result is not run(items, "doesNotContain", item).result


@given(scalars, scalars)
def test_equal_is_strict_equality_and_not_equal_its_negation(a, b):
    same_type = type(a) is type(b)
    assert strict_equal(a, b) is (same_type and a == b)
    assert run(a, "equal", b).result is not run(a, "notEqual", b).result


def test_low_level_helpers_report_javascript_undefined_as_none():
    assert less_than(math.nan, 1) is None
    assert less_than("a", 1) is None
    assert index_of(5, 5) is None
    assert index_of("abc", "c") is True
