"""Checks run per entity, levels reached, the fleet roll-up, and Tech Insights' shapes."""

from datetime import UTC, datetime

import pytest

from trellis.entity_refs import parse_ref, stringify_ref
from trellis.scorecards import Unknown, parse_scorecard
from trellis.scorecards.scoring import Outcome, fleet_rollup, run_checks, view
from trellis.scorecards.techinsights import check_json, check_result, fact_row


def check(check_id, level, fact, value, retriever="r", **extra):
    return {
        "id": check_id,
        "type": "json-rules-engine",
        "name": check_id.title(),
        "description": f"{fact} is {value}",
        "factIds": [retriever],
        "level": level,
        "rule": {"conditions": {"all": [{"fact": fact, "operator": "equal", "value": value}]}},
        **extra,
    }


SCORECARD = parse_scorecard(
    {
        "name": "demo",
        "title": "Demo",
        "filter": {"kind": "Resource"},
        "checks": [
            check("a", "bronze", "a", True, metadata={"team": "ml"}),
            check("b", "silver", "b", True, successMetadata={"yay": 1}),
            check("c", "gold", "c", True, failureMetadata={"fix": "do c"}),
        ],
    },
    "demo.yaml",
)
RESOURCE = {"kind": "Resource", "metadata": {"name": "m"}, "spec": {"owner": "team-a"}}


def outcomes(facts, entity=RESOURCE):
    return {o.check_id: o for o in run_checks([SCORECARD], entity, {"r": facts})}


def test_outcomes_are_passed_failed_or_unknown_with_reasons():
    result = outcomes({"a": True, "b": False, "c": Unknown("Prometheus down")})
    assert result["a"].outcome is Outcome.PASSED and result["a"].reasons == ()
    assert result["b"].outcome is Outcome.FAILED
    assert result["b"].reasons == ("b is false; wanted equal true",)
    assert result["c"].outcome is Outcome.UNKNOWN
    assert result["c"].reasons == ("Prometheus down",)
    assert result["c"].facts == {"c": None}  # an unknown is null in JSON, its reason beside


def test_a_retriever_that_gave_nothing_leaves_its_checks_unknown():
    result = {o.check_id: o for o in run_checks([SCORECARD], RESOURCE, {})}
    assert {o.outcome for o in result.values()} == {Outcome.UNKNOWN}
    assert result["a"].reasons == ("fact 'a' was not read",)


def test_a_scorecard_does_not_apply_to_entities_its_filter_does_not_match():
    assert run_checks([SCORECARD], {"kind": "Component"}, {"r": {"a": True}}) == []


@pytest.mark.parametrize(
    ("facts", "level"),
    [
        ({"a": True, "b": True, "c": True}, "gold"),
        ({"a": True, "b": True, "c": False}, "silver"),
        ({"a": True, "b": Unknown("x"), "c": True}, "bronze"),  # unknown holds a level back
        ({"a": False, "b": True, "c": True}, None),  # levels are reached in order
    ],
)
def test_the_level_reached(facts, level):
    scored = view(SCORECARD, outcomes(facts))
    assert (scored.level.value if scored.level else None) == level
    shown = scored.as_json()
    assert shown["level"] == level
    assert sum(shown["counts"].values()) == 3


def test_a_check_not_yet_evaluated_is_pending_and_holds_its_level():
    partial = {k: v for k, v in outcomes({"a": True, "b": True, "c": True}).items() if k != "b"}
    shown = view(SCORECARD, partial).as_json()
    assert shown["level"] == "bronze"
    assert [c["outcome"] for c in shown["checks"]] == ["passed", "pending", "passed"]


def test_the_fleet_rollup_counts_levels_by_owner_and_system():
    entities = {
        "resource:default/m1": {**RESOURCE, "spec": {"owner": "team-a", "system": "fraud"}},
        "resource:default/m2": {**RESOURCE, "spec": {"owner": "team-a"}},
        "resource:default/m3": {**RESOURCE, "spec": {"owner": "team-b", "system": "fraud"}},
        "component:default/s": {"kind": "Component", "spec": {"owner": "team-b"}},
    }
    kept = {
        "resource:default/m1": outcomes({"a": True, "b": True, "c": True}),
        "resource:default/m2": outcomes({"a": True, "b": False, "c": True}),
        # m3 has no results yet: it reached no level
    }
    (rollup,) = fleet_rollup([SCORECARD], entities, kept)
    assert rollup["entities"] == 3
    assert rollup["levels"] == {"none": 1, "bronze": 1, "silver": 0, "gold": 1}
    assert rollup["byOwner"]["team-a"] == {"none": 0, "bronze": 1, "silver": 0, "gold": 1}
    assert rollup["byOwner"]["team-b"] == {"none": 1, "bronze": 0, "silver": 0, "gold": 0}
    assert rollup["bySystem"] == {"fraud": {"none": 1, "bronze": 0, "silver": 0, "gold": 1}}


def test_tech_insights_check_results_and_metadata():
    result = outcomes({"a": True, "b": True, "c": False})
    by_id = {c.id: c for c in SCORECARD.checks}
    passed = check_result(by_id["b"], result["b"])
    assert passed == {
        "facts": {"b": {"id": "b", "type": "boolean", "description": "", "value": True}},
        "check": {
            "id": "b",
            "type": "json-rules-engine",
            "name": "B",
            "description": "b is True",
            "factIds": ["r"],
            "rule": {"conditions": {"all": [{"fact": "b", "operator": "equal", "value": True}]}},
            "metadata": {"level": "silver", "scorecard": "demo", "yay": 1},
        },
        "result": True,
    }
    failed = check_result(by_id["c"], result["c"])
    assert failed["result"] is False and failed["check"]["metadata"]["fix"] == "do c"
    assert check_json(by_id["a"])["metadata"] == {
        "team": "ml",
        "level": "bronze",
        "scorecard": "demo",
    }
    unknown = outcomes({"a": Unknown("x"), "b": True, "c": True})["a"]
    assert check_result(by_id["a"], unknown) is None  # Tech Insights has no unknown


def test_fact_rows_and_entity_refs():
    at = datetime(2026, 1, 1, 12, tzinfo=UTC)
    row = fact_row("mlflow-registry", "resource:default/Fraud", "1.0.0", at, {"hasOwner": True})
    assert row == {
        "id": "mlflow-registry",
        "entity": {"namespace": "default", "kind": "resource", "name": "Fraud"},
        "timestamp": "2026-01-01T12:00:00Z",
        "version": "1.0.0",
        "facts": {"hasOwner": True},
    }
    assert stringify_ref("Resource", "Default", "Fraud") == "resource:default/Fraud"
    assert parse_ref("fraud") == ("component", "default", "fraud")
    assert parse_ref("Resource:ml/x") == ("resource", "ml", "x")
    with pytest.raises(ValueError, match="not an entity ref"):
        parse_ref("resource:/x")
