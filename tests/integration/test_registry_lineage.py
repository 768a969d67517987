"""Lineage read from a real MLflow registry: open model to regional adapters, hostile names too.

The registry is written by MLflow's own client and read through its SQLite store: that a
server's REST answers give the same catalog bytes is proven once, over 300+ hostile models,
in ``test_registry_source.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from support.backstage import validate_entities
from support.registry import seed_lineage
from support.timing import scaled
from trellis.catalog import CatalogOptions
from trellis.scorecards.facts import lineage_facts
from trellis.services.catalog_refresh import build_document
from trellis.sources.mlflow import SqlRegistry

pytestmark = pytest.mark.backstage

#: A base model name MLflow accepts but Backstage does not: spaces, case, symbols, non-ASCII.
HOSTILE = "Qwen2 0.5B · Instruct (hub) ✨"
ADAPTERS = {f"{HOSTILE} eu-west-1": "eu-west-1", "qwen2-ap-south-1": "ap-south-1"}


def test_adapters_read_from_the_registry_depend_on_their_hostile_named_base(
    tmp_path: Path,
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    seed_lineage(uri, HOSTILE, ADAPTERS)
    seed_lineage(uri, HOSTILE.lower(), {})  # folds to the same entity name
    registry = SqlRegistry(uri, label="x", timeout_seconds=scaled(30))
    try:
        snapshot = registry.read()
    finally:
        registry.close()
    document = build_document(snapshot, CatalogOptions())
    entities = list(yaml.safe_load_all(document.yaml))
    resources = {
        e["metadata"]["annotations"]["trellis.dev/registered-model"]: e
        for e in entities
        if e["kind"] == "Resource"
    }
    base_ref = f"resource:default/{resources[HOSTILE]['metadata']['name']}"
    other = f"resource:default/{resources[HOSTILE.lower()]['metadata']['name']}"
    assert base_ref != other
    adapter_refs = []
    for name, region in ADAPTERS.items():
        adapter = resources[name]
        adapter_refs.append(f"resource:default/{adapter['metadata']['name']}")
        assert adapter["spec"]["dependsOn"] == [base_ref]
        annotations = adapter["metadata"]["annotations"]
        assert annotations["trellis.dev/region"] == region
        assert annotations["trellis.dev/parent-model"] == HOSTILE
        # Per-version tags come from the champion (version 1), not the newer failed version.
        assert annotations["trellis.dev/parent-version"] == "1"
        assert annotations["trellis.dev/dataset-fingerprint"] == f"{1:064x}"
    base = resources[HOSTILE]["metadata"]["annotations"]
    assert base["trellis.dev/adapters"] == ",".join(sorted(adapter_refs))
    assert base["trellis.dev/upstream-revision"] == "a" * 40
    assert "trellis.dev/adapters" not in resources[HOSTILE.lower()]["metadata"]["annotations"]
    assert [p for p in document.problems if p.severity == "error"] == []
    assert [v for v in validate_entities(entities) if not v["ok"]] == []

    # The facts the lineage scorecards read, from the same snapshot.
    models = {m.name: m for m in snapshot.models}
    base_facts = lineage_facts(models[HOSTILE], [], {}, {}, ["apache-2.0"])
    assert (base_facts["licenseAllowed"], base_facts["hasChecksum"]) == (True, True)
    adapter_facts = lineage_facts(models["qwen2-ap-south-1"], [], {}, {}, [])
    assert adapter_facts["trainedInDataRegion"] is True
    assert adapter_facts["championGatePassed"] is True
    assert adapter_facts["hasLineage"] is True
