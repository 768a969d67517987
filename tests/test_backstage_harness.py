"""End-to-end checks of the real-Backstage test harness (tests/support/backstage.py)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from support.backstage import BackstageBackend, ensure_harness, validate_entities
from support.timing import scaled

pytestmark = pytest.mark.backstage

MODEL: dict[str, Any] = {
    "apiVersion": "backstage.io/v1alpha1",
    "kind": "Resource",
    "metadata": {
        "name": "churn-classifier",
        "title": "Churn classifier",
        "description": "Registered model churn-classifier",
        "tags": ["mlflow", "ai-model"],
    },
    "spec": {
        "type": "ai-model",
        "owner": "group:default/ml-platform",
        "system": "churn",
        "lifecycle": "production",
    },
}

SERVICE: dict[str, Any] = {
    "apiVersion": "backstage.io/v1alpha1",
    "kind": "Component",
    "metadata": {"name": "churn-api", "description": "Serves the churn classifier"},
    "spec": {
        "type": "service",
        "lifecycle": "production",
        "owner": "group:default/ml-platform",
        "dependsOn": ["resource:default/churn-classifier"],
    },
}

# Passes the envelope and the policies, fails the Resource kind validator (no spec.owner).
UNOWNED_MODEL: dict[str, Any] = {
    "apiVersion": "backstage.io/v1alpha1",
    "kind": "Resource",
    "metadata": {"name": "unowned-model"},
    "spec": {"type": "ai-model"},
}

GOOD_YAML = """\
# Two valid entities in one multi-document file.
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata:
  name: churn-classifier
  title: Churn classifier
  description: Registered model churn-classifier
  tags: [mlflow, ai-model]
spec:
  type: ai-model
  owner: group:default/ml-platform
  system: churn
  lifecycle: production
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: churn-api
  description: Serves the churn classifier
spec:
  type: service
  lifecycle: production
  owner: group:default/ml-platform
  dependsOn:
    - resource:default/churn-classifier
"""

# Kept in its own location: an invalid entity must not hide the valid ones.
BAD_YAML = """\
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata:
  name: unowned-model
spec:
  type: ai-model
"""


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """Serve a folder of catalog files over HTTP on 127.0.0.1; yield (base URL, folder)."""
    root = tmp_path_factory.mktemp("site")
    (root / "good.yaml").write_text(GOOD_YAML, encoding="utf-8")
    (root / "bad.yaml").write_text(BAD_YAML, encoding="utf-8")
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=scaled(10))


@pytest.fixture(scope="module")
def backend(
    site: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BackstageBackend]:
    base, _ = site
    host = base.removeprefix("http://")
    with BackstageBackend.start(
        tmp_path_factory.mktemp("backstage"),
        locations=[
            {"type": "url", "target": f"{base}/good.yaml"},
            {"type": "url", "target": f"{base}/bad.yaml"},
        ],
        reading_allow=[host],
        # Longer than any wait below: a change seen in time must come from refresh().
        extra_config={"catalog": {"processingInterval": {"seconds": 120}}},
    ) as running:
        yield running


def _names(backend: BackstageBackend, filter: str | None = None) -> set[str]:
    return {entity["metadata"]["name"] for entity in backend.entities(filter)}


def test_harness_is_installed() -> None:
    assert (ensure_harness() / "node_modules").is_dir()


def test_valid_entities_are_ingested(backend: BackstageBackend) -> None:
    backend.wait_for(
        lambda: {"churn-classifier", "churn-api"} <= _names(backend),
        timeout=scaled(60),
        what="churn-classifier and churn-api in the catalog",
    )
    models = backend.entities("kind=resource,spec.type=ai-model")
    assert [m["metadata"]["name"] for m in models] == ["churn-classifier"]
    assert models[0]["spec"]["owner"] == "group:default/ml-platform"
    relations = {(r["type"], r["targetRef"]) for r in models[0].get("relations", [])}
    assert ("ownedBy", "group:default/ml-platform") in relations
    assert _names(backend, "kind=component") == {"churn-api"}


def test_invalid_entity_is_reported_as_catalog_error(
    backend: BackstageBackend, site: tuple[str, Path]
) -> None:
    base, _ = site

    def unowned_errors() -> list[dict[str, Any]]:
        return [
            e
            for e in backend.catalog_errors()
            if e.get("entity") == "resource:default/unowned-model"
        ]

    backend.wait_for(lambda: bool(unowned_errors()), timeout=60, what="an error for unowned-model")
    event = unowned_errors()[0]
    assert event["location"] == f"url:{base}/bad.yaml"
    messages = " ".join(
        str(error.get("message")) + str((error.get("cause") or {}).get("message"))
        for error in event["errors"]
    )
    assert "owner" in messages
    assert "unowned-model" not in _names(backend)


def test_refresh_rereads_the_location(backend: BackstageBackend, site: tuple[str, Path]) -> None:
    _, root = site
    backend.wait_for(lambda: "churn-api" in _names(backend), timeout=60, what="churn-api")
    good = root / "good.yaml"
    good.write_text(
        GOOD_YAML.replace("Serves the churn classifier", "Serves churn predictions"),
        encoding="utf-8",
    )
    try:
        backend.refresh("component:default/churn-api")

        def description() -> str:
            entities = backend.entities("kind=component,metadata.name=churn-api")
            return str(entities[0]["metadata"].get("description")) if entities else ""

        backend.wait_for(
            lambda: description() == "Serves churn predictions",
            timeout=scaled(30),
            what="the new description of churn-api",
        )
    finally:
        good.write_text(GOOD_YAML, encoding="utf-8")


def test_validate_entity_endpoint(backend: BackstageBackend, site: tuple[str, Path]) -> None:
    base, _ = site
    location = f"url:{base}/good.yaml"
    assert backend.validate_entity(MODEL, location).status_code == 200
    rejected = backend.validate_entity(UNOWNED_MODEL, location)
    assert rejected.status_code == 400
    assert "owner" in rejected.text


def test_validate_entities_matches_the_catalog() -> None:
    bad_name = {**MODEL, "metadata": {**MODEL["metadata"], "name": "bad name!"}}
    unknown_kind = {**MODEL, "kind": "Widget"}
    results = validate_entities([MODEL, SERVICE, bad_name, UNOWNED_MODEL, unknown_kind])

    assert [r["ref"] for r in results] == [
        "resource:default/churn-classifier",
        "component:default/churn-api",
        "resource:default/bad name!",
        "resource:default/unowned-model",
        "widget:default/churn-classifier",
    ]
    assert [r["ok"] for r in results] == [True, True, False, False, False]
    assert results[0]["errors"] == [] and results[1]["errors"] == []
    assert any("metadata.name" in e for e in results[2]["errors"])
    assert any("owner" in e for e in results[3]["errors"])
    assert any("Widget" in e for e in results[4]["errors"])
