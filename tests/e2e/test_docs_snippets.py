"""The app-config snippets in docs/backstage.md work, verbatim, against a real Backstage.

Both catalog snippets (an open Trellis and one that requires a token) are checked by one
Backstage backend: each snippet points at its own Trellis, and the backend's config holds
every key and list entry of both, so each location is read exactly as documented.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from support.backstage import BackstageBackend
from support.doc_snippets import snippet
from support.registry import ModelSpec, seed
from support.services import TrellisServer, free_port

pytestmark = pytest.mark.backstage

TOKEN = "docs-token-" + "z" * 24
VARIANTS = ("open", "token")


def models(variant: str) -> list[ModelSpec]:
    """Two models per snippet, named apart: both locations feed the same catalog."""
    return [
        ModelSpec(f"fraud-detector-{variant}", {"owner": "risk", "system": "payments"}, 1, 1),
        ModelSpec(f"Churn Model {variant}", {"owner": "growth"}),
    ]


def combined(first: Mapping[str, Any], second: Mapping[str, Any]) -> dict[str, Any]:
    """Both snippets in one config: mappings merge, lists keep the entries of both once."""
    merged = dict(first)
    for key, value in second.items():
        if key not in merged:
            merged[key] = value
        elif isinstance(value, Mapping):
            merged[key] = combined(merged[key], value)
        elif isinstance(value, list):
            merged[key] = merged[key] + [item for item in value if item not in merged[key]]
        else:
            assert merged[key] == value, f"the snippets disagree on {key!r}"
    return merged


def holds(config: Any, documented: Any) -> bool:
    """Whether ``config`` has every key, list entry and value of ``documented``."""
    if isinstance(documented, Mapping):
        return isinstance(config, Mapping) and all(
            key in config and holds(config[key], value) for key, value in documented.items()
        )
    if isinstance(documented, list):
        return isinstance(config, list) and all(item in config for item in documented)
    return bool(config == documented)


def test_the_documented_app_configs_bring_every_model_in(tmp_path, monkeypatch):
    monkeypatch.setenv("TRELLIS_CATALOG_TOKEN", TOKEN)
    servers: dict[str, TrellisServer] = {}
    try:
        for variant in VARIANTS:
            uri = f"sqlite:///{tmp_path / variant / 'mlflow.db'}"
            (tmp_path / variant).mkdir()
            seed(uri, models(variant))
            env = {"TRELLIS_MLFLOW__TRACKING_URI": uri, "TRELLIS_API_TOKENS": TOKEN}
            if variant == "token":
                env["TRELLIS_CATALOG__REQUIRES_TOKEN"] = "true"
            trellis = TrellisServer(
                state_dir=tmp_path / variant / "state", env=env, port=free_port()
            )
            trellis.state_dir.mkdir()
            servers[variant] = trellis.start()
            unauthenticated = httpx.get(f"{trellis.url}/catalog/entities.yaml")
            assert unauthenticated.status_code == (401 if variant == "token" else 200)

        documented = {v: snippet(v, f"127.0.0.1:{servers[v].port}") for v in VARIANTS}
        config = combined(documented["open"], documented["token"])
        assert all(holds(config, documented[v]) for v in VARIANTS)
        catalog = config["catalog"]
        with BackstageBackend.start(
            tmp_path / "backstage",
            locations=catalog.pop("locations"),
            reading_allow=[entry["host"] for entry in config["backend"]["reading"]["allow"]],
            extra_config={"catalog": catalog},
        ) as backstage:

            def titles_by_location() -> dict[str, set[str]]:
                found: dict[str, set[str]] = {}
                for entity in backstage.entities("kind=resource"):
                    location = entity["metadata"]["annotations"]["backstage.io/managed-by-location"]
                    found.setdefault(location.split("/catalog/")[0], set()).add(
                        entity["metadata"]["title"]
                    )
                return found

            expected = {f"url:{servers[v].url}": {m.name for m in models(v)} for v in VARIANTS}
            backstage.wait_for(
                lambda: titles_by_location() == expected,
                60,
                "each snippet's location to deliver its two models",
            )
            assert backstage.catalog_errors() == []
    finally:
        for trellis in servers.values():
            trellis.stop()
    # The token rode in query strings and headers; it never reaches Trellis's log.
    for trellis in servers.values():
        assert TOKEN not in trellis.process_log.read_text()
