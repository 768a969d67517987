"""The platform's own catalog files are valid Backstage entities."""

from __future__ import annotations

from pathlib import Path

import yaml

from support.backstage import validate_entities

CATALOG = Path(__file__).resolve().parents[1] / "catalog"


def _with_text_substituted(entity: dict) -> dict:
    definition = entity.get("spec", {}).get("definition")
    if isinstance(definition, dict) and "$text" in definition:
        entity["spec"]["definition"] = (CATALOG / definition["$text"]).read_text()
    return entity


def test_every_platform_entity_passes_backstage_validation():
    entities = [
        _with_text_substituted(doc)
        for path in sorted(CATALOG.glob("*.yaml"))
        if path.name != "openapi.yaml"
        for doc in yaml.safe_load_all(path.read_text())
    ]
    assert {e["kind"] for e in entities} >= {"Location", "Component", "API", "System"}
    verdicts = validate_entities(entities)
    assert [v for v in verdicts if not v["ok"]] == []


def test_the_location_lists_every_entity_file():
    location = yaml.safe_load((CATALOG / "catalog-info.yaml").read_text())
    targets = {t.removeprefix("./") for t in location["spec"]["targets"]}
    files = {p.name for p in CATALOG.glob("*.yaml")} - {"catalog-info.yaml", "openapi.yaml"}
    assert targets == files
