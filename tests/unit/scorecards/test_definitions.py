"""Scorecard definition files: the shipped ones, Tech Insights checks, and clear errors."""

import textwrap
from pathlib import Path

import pytest
import yaml

from trellis.scorecards import (
    DefinitionError,
    Level,
    Unknown,
    evaluate,
    facts_used,
    load_scorecards,
    parse_scorecard,
)
from trellis.scorecards.facts import RETRIEVERS

SHIPPED = Path(__file__).resolve().parents[3] / "scorecards"


@pytest.fixture(scope="module")
def shipped():
    return {scorecard.name: scorecard for scorecard in load_scorecards(SHIPPED)}


def results(scorecard, facts):
    return {check.id: evaluate(check.conditions, facts).result for check in scorecard.checks}


# --- the shipped scorecards -------------------------------------------------------------------


def test_the_shipped_scorecards_load(shipped):
    assert set(shipped) == {
        "ml-model",
        "model-server",
        "governance",
        "blueprint",
        "adapter-residency",
        "open-model",
    }
    for scorecard in shipped.values():
        assert {check.level for check in scorecard.checks} >= {Level.SILVER, Level.GOLD}
        for check in scorecard.checks:
            assert set(check.fact_ids) <= {retriever.id for retriever in RETRIEVERS}
            assert check.type == "json-rules-engine"
            assert check.definition["id"] == check.id
    every_level = {check.level for s in shipped.values() for check in s.checks}
    assert every_level == set(Level)


def test_each_scorecard_applies_to_its_entities(shipped):
    model = {"kind": "Resource", "spec": {"type": "ai-model"}, "metadata": {"name": "m"}}
    server = {"kind": "Component", "spec": {"type": "model-server"}, "metadata": {"name": "s"}}
    generated = {
        "kind": "Component",
        "spec": {"type": "service"},
        "metadata": {"annotations": {"trellis.dev/blueprint": "ml-model"}},
    }
    assert [s.name for s in shipped.values() if s.filter.matches(model)] == [
        "governance",
        "ml-model",
    ]
    for kind, scorecard in (("adapter", "adapter-residency"), ("base", "open-model")):
        lineage = {**model, "metadata": {"annotations": {"trellis.dev/model-kind": kind}}}
        assert [s.name for s in shipped.values() if s.filter.matches(lineage)] == sorted(
            [scorecard, "governance", "ml-model"]
        )
    assert [s.name for s in shipped.values() if s.filter.matches(server)] == ["model-server"]
    assert [s.name for s in shipped.values() if s.filter.matches(generated)] == ["blueprint"]
    assert not any(s.filter.matches({"kind": "Group"}) for s in shipped.values())


GOOD_MODEL = {
    "hasOwner": True,
    "hasDescription": True,
    "dataClassification": "internal",
    "hasModelCard": True,
    "hasSignature": True,
    "hasChampion": True,
    "trainingRegion": "eu-west-1",
    "hasDatasetLineage": True,
    "championAgeDays": 12,
    "championMetrics": {"accuracy": 0.91, "f1": 0.88},
    "servingRegionsAllowed": True,
    "allServersHaveNetworkPolicy": True,
    "blueprint": {"blueprint": "ml-model", "minorVersionsBehind": 1},
}


def test_a_ready_model_passes_every_model_check(shipped):
    assert set(results(shipped["ml-model"], GOOD_MODEL).values()) == {True}


def test_a_model_without_a_champion_fails_the_champion_checks(shipped):
    facts = {**GOOD_MODEL, "hasChampion": False, "championAgeDays": None, "championMetrics": {}}
    outcome = results(shipped["ml-model"], facts)
    failed = {check for check, passed in outcome.items() if passed is False}
    assert failed == {"model-has-champion", "model-champion-fresh", "model-champion-accuracy"}


def test_model_checks_read_their_thresholds(shipped):
    facts = {**GOOD_MODEL, "championAgeDays": 91, "championMetrics": {"accuracy": 0.79}}
    outcome = results(shipped["ml-model"], facts)
    assert outcome["model-champion-fresh"] is False
    assert outcome["model-champion-accuracy"] is False


def test_a_governed_model_passes_and_each_rule_can_fail(shipped):
    governance = shipped["governance"]
    assert set(results(governance, GOOD_MODEL).values()) == {True}
    bad = {
        **GOOD_MODEL,
        "dataClassification": "secret-ish",
        "trainingRegion": "",
        "servingRegionsAllowed": False,
        "allServersHaveNetworkPolicy": False,
        "blueprint": {"blueprint": "ml-model", "minorVersionsBehind": 2},
    }
    assert set(results(governance, bad).values()) == {False}
    unknown_behind = {**GOOD_MODEL, "blueprint": {"minorVersionsBehind": Unknown("not read")}}
    assert results(governance, unknown_behind)["governance-blueprint-current"] is None


GOOD_ADAPTER = {
    "trainedInDataRegion": True,
    "servedWhereAllowed": True,
    "hasLineage": True,
    "championGatePassed": True,
}
GOOD_BASE = {"licenseAllowed": True, "upstreamPinned": True, "hasChecksum": True}


@pytest.mark.parametrize(
    ("scorecard", "good"), [("adapter-residency", GOOD_ADAPTER), ("open-model", GOOD_BASE)]
)
def test_lineage_checks_pass_for_a_good_model_and_each_can_fail_alone(shipped, scorecard, good):
    assert set(results(shipped[scorecard], good).values()) == {True}
    for fact in good:
        outcome = results(shipped[scorecard], {**good, fact: False})
        assert sorted(outcome.values(), key=str) == [False] + [True] * (len(good) - 1)
    unknown = results(shipped[scorecard], {fact: Unknown("not read") for fact in good})
    assert set(unknown.values()) == {None}


GOOD_SERVER = {
    "runsAsNonRoot": True,
    "gpuRequests": 1,
    "gpuLimits": 1,
    "latencySeconds": {"p50": 0.05, "p95": 0.2, "p99": 0.6},
    "errorRatio": 0.001,
    "availability": 0.999,
    "gpuUtilization": 0.55,
    "environment": "production",
    "readyReplicas": 2,
}
SERVING = ("latencySeconds", "errorRatio", "availability", "gpuUtilization")


def test_a_healthy_server_passes_and_prometheus_down_turns_no_check_red(shipped):
    scorecard = shipped["model-server"]
    assert set(results(scorecard, GOOD_SERVER).values()) == {True}
    without_prometheus = {k: v for k, v in GOOD_SERVER.items() if k not in SERVING}
    outcome = results(scorecard, without_prometheus)
    assert False not in outcome.values()
    serving = {c.id for c in scorecard.checks if "prometheus-serving" in c.fact_ids}
    assert {check for check, passed in outcome.items() if passed is None} == serving


def test_server_thresholds_and_the_production_replica_rule(shipped):
    scorecard = shipped["model-server"]
    outcome = results(
        scorecard,
        {**GOOD_SERVER, "gpuLimits": 2, "gpuUtilization": 0.95, "readyReplicas": 1},
    )
    assert outcome["server-gpu-requests-limits"] is False
    assert outcome["server-gpu-utilisation"] is False
    assert outcome["server-production-replicas"] is False
    staging = results(scorecard, {**GOOD_SERVER, "environment": "staging", "readyReplicas": 1})
    assert staging["server-production-replicas"] is True


def test_a_cpu_server_passes_the_gpu_checks_whatever_prometheus_says(shipped):
    cpu = {**GOOD_SERVER, "gpuRequests": 0, "gpuLimits": 0}
    del cpu["gpuUtilization"]
    outcome = results(shipped["model-server"], cpu)
    assert outcome["server-gpu-requests-limits"] is True
    assert outcome["server-gpu-utilisation"] is True


@pytest.mark.parametrize(
    ("behind", "expected"),
    [
        (0, (True, True)),
        (1, (True, False)),
        (2, (False, False)),
        (Unknown("latest not read"), (None, None)),
    ],
)
def test_blueprint_currency(shipped, behind, expected):
    fact = {
        "blueprint": "ml-model",
        "version": "1.2.0",
        "latestVersion": "1.4.0",
        "versionsBehind": behind,
        "minorVersionsBehind": behind,
    }
    outcome = results(shipped["blueprint"], {"blueprint": fact})
    assert (outcome["blueprint-at-most-one-behind"], outcome["blueprint-up-to-date"]) == expected


def test_every_shipped_condition_reads_facts_its_check_declares(shipped):
    # Each fact a condition reads is in the schema of a retriever its factIds name.
    families = {retriever.id: set(retriever.schema) for retriever in RETRIEVERS}
    for scorecard in shipped.values():
        for check in scorecard.checks:
            declared = set().union(*(families[f] for f in check.fact_ids))
            assert facts_used(check.conditions) <= declared, check.id


# --- Tech Insights checks pasted as they are ------------------------------------------------

APP_CONFIG = """
techInsights:
  factChecker:
    checks:
      groupOwnerCheck:
        type: json-rules-engine
        name: Group Owner Check
        description: Verifies that a Group has been set as the spec.owner for this entity
        factIds:
          - entityOwnershipFactRetriever
        rule:
          conditions:
            all:
              - fact: hasGroupOwner
                operator: equal
                value: true
"""


def test_a_check_pasted_from_a_tech_insights_app_config_evaluates_the_same():
    checks = yaml.safe_load(APP_CONFIG)["techInsights"]["factChecker"]["checks"]
    for key in checks:
        checks[key]["level"] = "bronze"  # the one field Trellis adds
    scorecard = parse_scorecard(
        {
            "name": "ownership",
            "title": "Ownership",
            "filter": {"kind": "Component"},
            "checks": checks,
        },
        "pasted.yaml",
    )
    (check,) = scorecard.checks
    assert (check.id, check.name, check.fact_ids) == (
        "groupOwnerCheck",
        "Group Owner Check",
        ("entityOwnershipFactRetriever",),
    )
    assert evaluate(check.conditions, {"hasGroupOwner": True}).result is True
    assert evaluate(check.conditions, {"hasGroupOwner": False}).result is False


def test_a_shipped_check_is_a_valid_tech_insights_check_once_level_is_removed(shipped):
    check = shipped["ml-model"].checks[0]
    written = dict(check.definition)
    assert set(written) - {"level"} <= {
        "id", "type", "name", "description", "factIds", "rule", "metadata", "links",
        "successMetadata", "failureMetadata",
    }  # fmt: skip
    assert written["rule"]["conditions"] == {
        "all": [{"fact": "hasOwner", "operator": "equal", "value": True}]
    }


# --- filters ----------------------------------------------------------------------------------


def scorecard_with_filter(filter_):
    return parse_scorecard(
        {
            "name": "f",
            "title": "F",
            "filter": filter_,
            "checks": [
                {
                    "id": "c",
                    "type": "json-rules-engine",
                    "name": "C",
                    "description": "",
                    "factIds": ["x"],
                    "level": "gold",
                    "rule": {
                        "conditions": {"all": [{"fact": "a", "operator": "equal", "value": 1}]}
                    },
                }
            ],
        },
        "f.yaml",
    )


def test_filter_fields_all_match_case_insensitively():
    entity = {
        "kind": "Component",
        "spec": {"type": "model-server"},
        "metadata": {"tags": ["gpu", "llm"], "annotations": {"trellis.dev/regions": "eu-west-1"}},
    }
    match = scorecard_with_filter
    assert match({"kind": ["resource", "component"], "spec.type": "Model-Server"}).filter.matches(
        entity
    )
    assert match({"tags": ["llm", "cpu"]}).filter.matches(entity)
    assert not match({"tags": "cpu"}).filter.matches(entity)
    assert match({"annotations": {"trellis.dev/regions": "EU-WEST-1"}}).filter.matches(entity)
    assert not match({"annotations": {"trellis.dev/regions": "us-east-1"}}).filter.matches(entity)
    assert not match({"annotations": ["trellis.dev/blueprint"]}).filter.matches(entity)
    assert not match({"kind": "Component", "spec.type": "service"}).filter.matches(entity)


# --- errors -----------------------------------------------------------------------------------

VALID = textwrap.dedent(
    """\
    name: {name}
    title: T
    filter: {{kind: Resource}}
    checks:
      - id: {check_id}
        type: json-rules-engine
        name: N
        description: D
        factIds: [mlflow-registry]
        level: bronze
        rule:
          conditions:
            all:
              - fact: hasOwner
                operator: equal
                value: true
    """
)


def write(directory, name, text):
    (directory / f"{name}.yaml").write_text(text, encoding="utf-8")


def problems(directory):
    with pytest.raises(DefinitionError) as caught:
        load_scorecards(directory)
    return caught.value.problems


def test_bad_yaml_names_the_file_and_line(tmp_path):
    write(tmp_path, "bad", "name: x\nchecks: [\n  - id: a\n")
    (problem,) = problems(tmp_path)
    assert problem.file.endswith("bad.yaml")
    assert "not valid YAML" in problem.message
    assert "line" in problem.message


def test_a_key_written_twice_is_an_error_not_a_silent_override(tmp_path):
    write(
        tmp_path,
        "twice",
        VALID.format(name="a", check_id="c").replace(
            "level: bronze", "level: bronze\n    level: gold"
        ),
    )
    (problem,) = problems(tmp_path)
    assert "duplicate key 'level'" in problem.message


@pytest.mark.parametrize(
    ("edit", "field", "words"),
    [
        (
            ("operator: equal", "operator: equals"),
            "$.checks[0].rule.conditions.all[0].operator",
            "'equals' is not one of",
        ),
        (
            ("    factIds: [mlflow-registry]\n", ""),
            "$.checks[0]",
            "'factIds' is a required property",
        ),
        (("level: bronze", "level: platinum"), "$.checks[0].level", "'platinum' is not one of"),
        (("type: json-rules-engine", "type: boolean"), "$.checks[0].type", "json-rules-engine"),
        (
            ("operator: equal", "operator: equal\n            path: $..x"),
            "$.checks[0].rule.conditions.all[0].path",
            "JSONPath",
        ),
        (("value: true", "value: null"), "$.checks[0].rule.conditions.all[0].value", "null"),
        (
            ("operator: equal", "operator: in"),
            "$.checks[0].rule.conditions.all[0].value",
            "TypeError",
        ),
        (("        all:\n", "        every:\n"), "$.checks[0].rule.conditions", "root"),
        (("filter: {kind: Resource}", "filter: {}"), "$.filter", "empty"),
        (("filter: {kind: Resource}", "filter: {owner: x}"), "$.filter", "'owner' was unexpected"),
    ],
)
def test_schema_violations_name_file_check_and_field(tmp_path, edit, field, words):
    text = VALID.format(name="a", check_id="the-check")
    assert edit[0] in text
    write(tmp_path, "a", text.replace(*edit))
    found = problems(tmp_path)
    assert any(p.field == field and words in p.message for p in found), found
    problem = next(p for p in found if p.field == field)
    assert problem.file.endswith("a.yaml")
    if field.startswith("$.checks"):
        assert problem.check == "the-check"
        assert "check 'the-check'" in str(problem)


def test_duplicate_check_ids_across_files_name_both(tmp_path):
    write(tmp_path, "one", VALID.format(name="one", check_id="same"))
    write(tmp_path, "two", VALID.format(name="two", check_id="same"))
    (problem,) = problems(tmp_path)
    assert problem.check == "same"
    assert problem.file.endswith("two.yaml")
    assert "one.yaml" in problem.message


def test_duplicate_scorecard_names_and_ids_within_a_file(tmp_path):
    write(tmp_path, "one", VALID.format(name="dup", check_id="a"))
    write(tmp_path, "two", VALID.format(name="dup", check_id="b"))
    assert [p.field for p in problems(tmp_path)] == ["$.name"]
    doubled = yaml.safe_load(VALID.format(name="x", check_id="c"))
    doubled["checks"].append(doubled["checks"][0])
    with pytest.raises(DefinitionError, match="check id used twice"):
        parse_scorecard(doubled, "x.yaml")


def test_every_problem_in_every_file_is_reported_together(tmp_path):
    write(
        tmp_path, "a", VALID.format(name="a", check_id="c1").replace("level: bronze", "level: tin")
    )
    write(
        tmp_path,
        "b",
        VALID.format(name="b", check_id="c2").replace("operator: equal", "operator: is"),
    )
    write(tmp_path, "c", VALID.format(name="c", check_id="c3"))
    found = problems(tmp_path)
    assert [(Path(p.file).name, p.check) for p in found] == [("a.yaml", "c1"), ("b.yaml", "c2")]
    assert len(str(DefinitionError(found)).splitlines()) == 2


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path):
    write(tmp_path, "list", "- just\n- a list\n")
    (problem,) = problems(tmp_path)
    assert (problem.field, problem.check) == ("$", None)
    assert "is not of type 'object'" in problem.message


def test_map_form_errors_name_the_check_by_its_key():
    data = yaml.safe_load(APP_CONFIG)["techInsights"]["factChecker"]
    card = {"name": "x", "title": "X", "filter": {"kind": "Component"}, "checks": data["checks"]}
    with pytest.raises(DefinitionError) as caught:
        parse_scorecard(card, "x.yaml")
    (problem,) = caught.value.problems
    assert (problem.check, problem.field) == ("groupOwnerCheck", "$.checks.groupOwnerCheck")
    assert "'level' is a required property" in problem.message


def test_an_empty_directory_has_no_scorecards(tmp_path):
    assert load_scorecards(tmp_path) == ()
