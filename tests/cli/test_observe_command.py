"""``trellis observe``, in-process, over a real embedded registry (and no or a dead Prometheus).

The clusters are not read here, so a model has no servers: the golden-signal lines come from
the same page rendering that ``tests/integration/test_observability.py`` drives with a real
Prometheus.
"""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from support.services import free_port
from support.training import RunSpec, curve, seed_trained
from trellis.cli.app import app

runner = CliRunner()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One embedded registry for the module: observing only reads it."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('observe-registry') / 'mlflow.db'}"
    runs = {1: RunSpec({"loss": curve(30, 2.0, 0.3), "accuracy": curve(30, 0.5, 0.9)})}
    seed_trained(uri, "Fraud Detector", runs, {"champion": 1})
    return uri


@pytest.fixture
def registry(seeded, tmp_path, monkeypatch) -> str:
    monkeypatch.setenv("TRELLIS_MLFLOW__TRACKING_URI", seeded)
    monkeypatch.setenv("TRELLIS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("TRELLIS_PROMETHEUS__URL", raising=False)
    return seeded


def test_observe_shows_the_training_history_without_prometheus(registry):
    result = runner.invoke(app, ["observe", "resource:default/fraud-detector", "--range", "6h"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "resource:default/fraud-detector  last 6h, every 6m" in out
    assert "TRELLIS_PROMETHEUS__URL is not set" in out and "mlflow ✓" in out
    assert "training  champion v1" in out and "no servers" in out
    assert "accuracy" in out and "loss" in out and "at step 29" in out
    assert "▁" in out and "█" in out


def test_a_dead_prometheus_exits_3_after_showing_what_could_be_read(registry, monkeypatch):
    monkeypatch.setenv("TRELLIS_PROMETHEUS__URL", f"http://127.0.0.1:{free_port()}")
    result = runner.invoke(app, ["observe", "Resource:Default/fraud-detector"])
    # No server, no query: Prometheus is not asked, so it cannot be found down either.
    assert result.exit_code == 0, result.output
    assert "prometheus ✓" in result.stdout and "loss" in result.stdout


def test_an_unreachable_registry_exits_3(monkeypatch, tmp_path):
    monkeypatch.setenv("TRELLIS_MLFLOW__TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("TRELLIS_STATE_DIR", str(tmp_path))
    result = runner.invoke(app, ["observe", "resource:default/x"])
    assert result.exit_code == 3
    assert "mlflow unavailable" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["resource:default/nope"], "no entity 'resource:default/nope'"),
        (["resource:default/fraud-detector", "--range", "365d", "--step", "1s"],
         "TRELLIS_PROMETHEUS__MAX_POINTS"),
        (["resource:default/fraud-detector", "--step", "soon"], "step 'soon' is not a duration"),
    ],
)  # fmt: skip
def test_an_unknown_entity_or_a_bad_window_exits_1_saying_why(registry, args, message):
    result = runner.invoke(app, ["observe", *args])
    assert result.exit_code == 1, result.output
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.output


def test_observe_is_listed_in_the_help():
    assert "observe" in runner.invoke(app, ["--help"]).output
    text = runner.invoke(app, ["observe", "--help"]).output
    assert "--range" in text and "--step" in text and "Exit codes" in text


def test_a_setting_that_cannot_work_exits_2_naming_it(monkeypatch):
    monkeypatch.setenv("TRELLIS_MLFLOW__TRACKING_URI", "ftp://registry")
    result = runner.invoke(app, ["observe", "resource:default/x"])
    assert result.exit_code == 2, result.output
    assert "TRELLIS_MLFLOW__TRACKING_URI" in result.stderr


@pytest.mark.parametrize(
    ("code", "cause"),
    [
        (0, "shown"),
        (1, "an unknown entity"),  # test_an_unknown_entity_or_a_bad_window_exits_1_saying_why
        (1, "a bad range"),  # ibid.
        (2, "a bad option"),  # Typer's own usage errors
        (2, "a setting that cannot work"),  # test_a_setting_that_cannot_work_exits_2_naming_it
        (3, "a source could not be read"),  # test_an_unreachable_registry_exits_3
    ],
)
def test_the_help_names_each_exit_code_with_its_causes(code, cause):
    result = runner.invoke(app, ["observe", "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.replace("│", " ").split())
    codes = text.partition("Exit codes:")[2]
    assert re.search(rf"\b{code} [^0-9]*{re.escape(cause)}", codes), codes
