"""300+ hostile MLflow names and tags: one valid, distinct entity each, byte-stable output."""

from __future__ import annotations

import httpx
import pytest
import yaml

from support.backstage import validate_entities
from support.timing import scaled
from trellis.catalog import CatalogOptions, entity_problems
from trellis.services.catalog_refresh import build_document
from trellis.sources.mlflow import RestRegistry


def test_mlflow_itself_refuses_slashes_and_colons(hostile_registry):
    """Slash-like names are seeded with look-alikes because MLflow refuses the real thing."""
    from support.registry import client

    db, _ = hostile_registry
    for name in ("a/b", "a:b"):
        try:
            client(f"sqlite:///{db}").create_registered_model(name)
        except Exception as exc:  # MlflowException
            assert "cannot contain" in str(exc)
        else:  # pragma: no cover - would mean MLflow changed
            raise AssertionError(f"MLflow accepted {name!r}")


@pytest.mark.backstage
@pytest.mark.mlflow
def test_every_hostile_model_yields_exactly_one_valid_entity(hostile_server, hostile_registry):
    _, specs = hostile_registry
    assert len(specs) >= 300
    with httpx.Client(base_url=hostile_server.url, timeout=scaled(30)) as client:
        registry = RestRegistry(client, label="x")
        options = CatalogOptions(mlflow_ui_url=hostile_server.url)
        document = build_document(registry.read(), options)
        again = build_document(registry.read(), options)
    entities = list(yaml.safe_load_all(document.yaml))
    resources = [e for e in entities if e["kind"] == "Resource"]

    originals = [r["metadata"]["annotations"]["trellis.dev/registered-model"] for r in resources]
    assert sorted(originals) == sorted(s.name.replace("\x00", "") for s in specs)
    assert [p for p in document.problems if p.severity == "error"] == []
    names = [e["metadata"]["name"] for e in entities]
    assert len({(e["kind"], n.lower()) for e, n in zip(entities, names, strict=True)}) == len(
        entities
    )
    assert all(entity_problems(e) == [] for e in entities)
    verdicts = validate_entities(entities)
    assert [v for v in verdicts if not v["ok"]] == []
    assert len(verdicts) == len(entities)
    assert again.yaml == document.yaml
    assert again.yaml_etag == document.yaml_etag
