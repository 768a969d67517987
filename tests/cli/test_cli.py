"""The ``trellis`` command, driven in-process."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from support.registry import ModelSpec, seed
from support.services import free_port
from trellis import __version__
from trellis.cli.app import app

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedded registry for the module: the catalog only reads it."""
    path = tmp_path_factory.mktemp("registry") / "mlflow.db"
    seed(
        f"sqlite:///{path}",
        [ModelSpec("Fraud Detector", {"owner": "risk", "system": "payments"}, 2, 2)],
    )
    return path


@pytest.fixture
def registry(seeded, tmp_path, monkeypatch) -> Path:
    """The seeded registry's file, set as the tracking URI with a state folder of the test's."""
    monkeypatch.setenv("TRELLIS_MLFLOW__TRACKING_URI", f"sqlite:///{seeded}")
    monkeypatch.setenv("TRELLIS_STATE_DIR", str(tmp_path / "state"))
    return seeded


def test_help_explains_every_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "catalog", "openapi", "demo", "new", "blueprints"):
        assert command in result.output
    blueprints = runner.invoke(app, ["blueprints", "--help"])
    assert "backstage" in blueprints.output and "list" in blueprints.output
    assert "TRELLIS_" in result.output
    assert runner.invoke(app, ["--version"]).output.strip() == f"trellis {__version__}"


def test_catalog_prints_the_entities_without_a_server(registry):
    result = runner.invoke(app, ["catalog"])
    assert result.exit_code == 0, result.output
    docs = list(yaml.safe_load_all(result.stdout))
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [
        ("System", "payments"),
        ("Resource", "fraud-detector"),
    ]
    assert "2 entities from 1 models" in result.stderr


def test_catalog_writes_a_file(registry, tmp_path):
    out = tmp_path / "entities.yaml"
    assert runner.invoke(app, ["catalog", "-o", str(out)]).exit_code == 0
    assert out.read_text().startswith("---\napiVersion: backstage.io/v1alpha1\n")


def test_a_bad_setting_exits_2_naming_the_variable(monkeypatch):
    monkeypatch.setenv("TRELLIS_MLFLOW__TRACKING_URI", "ftp://registry")
    result = runner.invoke(app, ["catalog"])
    assert result.exit_code == 2
    assert "TRELLIS_MLFLOW__TRACKING_URI" in result.stderr
    assert "Traceback" not in result.output


def test_an_unreachable_registry_exits_3(monkeypatch, tmp_path):
    monkeypatch.setenv("TRELLIS_MLFLOW__TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("TRELLIS_STATE_DIR", str(tmp_path))
    result = runner.invoke(app, ["catalog"])
    assert result.exit_code == 3
    assert "mlflow unavailable" in result.stderr


def test_the_checked_in_openapi_document_is_current():
    result = runner.invoke(app, ["openapi"])
    assert result.exit_code == 0
    checked_in = (REPO / "catalog" / "openapi.yaml").read_text()
    assert result.stdout == checked_in, (
        "catalog/openapi.yaml is stale: run `trellis openapi -o catalog/openapi.yaml`"
    )


def test_blueprints_list_names_each_blueprint_and_its_questions():
    result = runner.invoke(app, ["blueprints", "list"])
    assert result.exit_code == 0, result.output
    assert "ml-model: ML model" in result.output
    assert "project_name" in result.output and "edge_regions" in result.output


def test_an_unknown_blueprint_version_exits_3_naming_it(tmp_path):
    result = runner.invoke(
        app, ["new", "ml-model", str(tmp_path / "x"), "--defaults", "--vcs-ref", "99.0.0"]
    )
    assert result.exit_code == 3
    assert "99.0.0" in result.stderr
    assert not (tmp_path / "x" / "catalog-info.yaml").exists()


def test_a_mistyped_sqlite_path_exits_3_naming_it(registry, monkeypatch, tmp_path):
    mistyped = registry.parent / "mlfow.db"  # beside the real one
    monkeypatch.setenv("TRELLIS_MLFLOW__TRACKING_URI", f"sqlite:///{mistyped}")
    result = runner.invoke(app, ["catalog"])
    assert result.exit_code == 3, result.output
    message = " ".join(result.stderr.split())  # the console wraps long lines
    assert f"{mistyped} does not exist" in message
    assert result.stdout == ""
    assert not mistyped.exists()


def test_the_embedded_default_registry_may_start_empty(monkeypatch, tmp_path):
    monkeypatch.delenv("TRELLIS_MLFLOW__TRACKING_URI", raising=False)
    monkeypatch.setenv("TRELLIS_STATE_DIR", str(tmp_path / "state"))
    result = runner.invoke(app, ["catalog"])
    assert result.exit_code == 0, result.output
    assert "0 entities from 0 models" in result.stderr
