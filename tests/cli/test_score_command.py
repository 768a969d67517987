"""``trellis score``, in-process, over a real embedded registry and a scratch blueprint source.

The clusters are not read here, so the entities are the models; serving checks are proven
with a real Prometheus in ``tests/integration/test_scorecards.py``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from support.gitrepos import blueprint_source
from support.services import free_port
from support.training import RunSpec, curve, seed_trained
from trellis.cli.app import app

runner = CliRunner()


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return blueprint_source(tmp_path_factory.mktemp("score-source") / "trellis")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One embedded registry for the module: scoring only reads it."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('score-registry') / 'mlflow.db'}"
    seed_trained(uri, "Fraud Detector", {1: RunSpec({"accuracy": curve(5, 0.5, 0.9)})}, {})
    return uri


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seeded: str, source: Path) -> Path:
    monkeypatch.setenv("TRELLIS_MLFLOW__TRACKING_URI", seeded)
    monkeypatch.setenv("TRELLIS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("TRELLIS_BLUEPRINTS__SOURCE", str(source))
    monkeypatch.delenv("TRELLIS_PROMETHEUS__URL", raising=False)
    monkeypatch.setenv("COLUMNS", "300")  # Rich wraps at the terminal's width
    return tmp_path / "state"


def test_one_entity_as_a_table_with_why_each_check_did_not_pass(registry):
    result = runner.invoke(app, ["score", "Resource:Default/fraud-detector"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Scorecards of resource:default/fraud-detector" in out
    assert "Model readiness: no level" in out  # no description: not even bronze
    assert "✔" in out and "Has an owner" in out
    assert "✘" in out and "hasChampion is false; wanted equal true" in out
    assert "?" in out and "no version carries the `champion` alias" in out


def test_one_entity_as_json_is_the_routes_answer(registry):
    result = runner.invoke(app, ["score", "resource:default/fraud-detector", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["entity"] == "resource:default/fraud-detector"
    checks = {c["id"]: c["outcome"] for s in report["scorecards"] for c in s["checks"]}
    assert checks["model-has-owner"] == "passed"
    assert checks["model-has-champion"] == "failed"
    assert checks["model-champion-accuracy"] == "unknown"
    assert not (registry / "scorecards.db").exists()  # a one-off run keeps nothing


def test_the_fleet_by_owner(registry):
    result = runner.invoke(app, ["score"])
    assert result.exit_code == 0, result.output
    assert "1 entities scored" in result.stdout and "group:default/ml" in result.stdout
    fleet = json.loads(runner.invoke(app, ["score", "-f", "json"]).stdout)
    readiness = next(s for s in fleet["scorecards"] if s["name"] == "ml-model")
    assert readiness["levels"]["none"] == 1


def test_a_dead_prometheus_exits_3_with_serving_facts_unknown(registry, monkeypatch):
    monkeypatch.setenv("TRELLIS_PROMETHEUS__URL", f"http://127.0.0.1:{free_port()}")
    result = runner.invoke(app, ["score", "resource:default/fraud-detector"])
    assert result.exit_code == 3, result.output
    assert "warning: prometheus-serving facts are unknown: Prometheus could not be read" in (
        result.stderr
    )
    assert "Has an owner" in result.stdout  # registry checks were still worked out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["score", "resource:default/no-such-model"], 1, "no scorecard applies"),
        (["score", "resource:/x"], 2, "is not an entity ref"),
        (["score", "--format", "xml"], 2, "xml"),
    ],
)
def test_bad_input_gets_a_clear_error(registry, args, code, message):
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    assert message in result.output


def test_bad_definitions_exit_2_naming_the_file(registry, monkeypatch, tmp_path):
    broken = tmp_path / "scorecards"
    broken.mkdir()
    (broken / "oops.yaml").write_text("name: oops\ntitle: [unclosed\n")
    monkeypatch.setenv("TRELLIS_SCORECARDS__DIRECTORY", str(broken))
    result = runner.invoke(app, ["score"])
    assert result.exit_code == 2, result.output
    assert "oops.yaml" in result.output and "not valid YAML" in result.output


@pytest.mark.parametrize(
    ("code", "cause"),
    [
        (0, "shown"),
        (1, "an unknown entity"),  # test_bad_input_gets_a_clear_error
        (2, "a bad option"),  # --format xml, ibid.
        (2, "a malformed ENTITY_REF"),  # resource:/x, ibid.
        (2, "scorecard definition"),  # test_bad_definitions_exit_2_naming_the_file
        (3, "a source could not be read"),  # test_a_dead_prometheus_exits_3_...
    ],
)
def test_the_help_names_each_exit_code_with_its_causes(code, cause):
    result = runner.invoke(app, ["score", "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.replace("│", " ").split())
    codes = text.partition("Exit codes:")[2]
    assert re.search(rf"\b{code} [^0-9]*{re.escape(cause)}", codes), codes
