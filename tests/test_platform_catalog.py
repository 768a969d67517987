"""The platform's own catalog files are valid Backstage entities."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from support.backstage import validate_entities
from trellis.cli.app import app

CATALOG = Path(__file__).resolve().parents[1] / "catalog"
TEMPLATES = CATALOG / "templates"


def _with_text_substituted(entity: dict) -> dict:
    definition = entity.get("spec", {}).get("definition")
    if isinstance(definition, dict) and "$text" in definition:
        entity["spec"]["definition"] = (CATALOG / definition["$text"]).read_text()
    return entity


@pytest.mark.backstage
def test_every_platform_entity_passes_backstage_validation():
    entities = [
        _with_text_substituted(doc)
        for path in sorted(CATALOG.rglob("*.yaml"))
        if path.name != "openapi.yaml"
        for doc in yaml.safe_load_all(path.read_text())
    ]
    assert {e["kind"] for e in entities} >= {"Location", "Component", "API", "System", "Template"}
    verdicts = validate_entities(entities)
    assert [v for v in verdicts if not v["ok"]] == []


def test_the_locations_list_every_entity_file():
    listed = set()
    for path in (CATALOG / "catalog-info.yaml", CATALOG / "templates" / "location.yaml"):
        location = yaml.safe_load(path.read_text())
        listed |= {(path.parent / t).resolve() for t in location["spec"]["targets"]}
    files = {p.resolve() for p in CATALOG.rglob("*.yaml")}
    assert listed == files - {(CATALOG / "catalog-info.yaml").resolve(), CATALOG / "openapi.yaml"}


def test_every_blueprint_has_a_current_template(tmp_path):
    """The checked-in templates are exactly what `trellis blueprints backstage` writes."""
    result = CliRunner().invoke(app, ["blueprints", "backstage", "--check", "-o", str(TEMPLATES)])
    assert result.exit_code == 0, result.output
    blueprints = {p.parent.name for p in (CATALOG.parent / "blueprints").glob("*/copier.yml")}
    assert {p.stem for p in TEMPLATES.glob("*.yaml")} == blueprints | {"location"}
    fresh = tmp_path / "templates"
    assert CliRunner().invoke(app, ["blueprints", "backstage", "-o", str(fresh)]).exit_code == 0
    assert sorted(p.name for p in fresh.iterdir()) == sorted(p.name for p in TEMPLATES.iterdir())


def test_check_reports_a_stale_template(tmp_path):
    stale = tmp_path / "templates"
    shutil.copytree(TEMPLATES, stale)
    (stale / "ml-model.yaml").write_text("# edited by hand\n")
    (stale / "gone.yaml").write_text("kind: Template\n")
    result = CliRunner().invoke(app, ["blueprints", "backstage", "--check", "-o", str(stale)])
    assert result.exit_code == 1
    assert "ml-model.yaml" in result.stderr and "gone.yaml" in result.stderr
    assert (stale / "ml-model.yaml").read_text() == "# edited by hand\n"  # --check writes nothing
