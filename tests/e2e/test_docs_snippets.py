"""The app-config snippets in docs/backstage.md work, verbatim, against a real Backstage.

Both catalog snippets (an open Trellis and one that requires a token) are checked by one
Backstage backend: each snippet points at its own Trellis, and the backend's config holds
every key and list entry of both, so each location is read exactly as documented.

The same backend also loads the app-config fragment a rendered platform-hub repository
generates (``backstage/app-config.trellis.yaml``), with the in-cluster Trellis address and
Backstage's base URL replaced by the test's, pointed at a third Trellis that requires a token
(so that no two readers claim the same entities): its `trellis` block is the provider
snippet's plus ``confirmEmptyAfter``, so the entity provider reads that Trellis with the token
(every second instead of every five) and brings its models in, and starts the scaffolder
module, whose action then exists; its proxy and Tech Insights discovery reach the same
Trellis.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from support.backstage import BackstageBackend
from support.blueprints import HUB_VARIANTS, render
from support.doc_snippets import holds, snippet
from support.registry import ModelSpec, seed
from support.services import TrellisServer, free_port

pytestmark = pytest.mark.backstage

TOKEN = "docs-token-" + "z" * 24
VARIANTS = ("open", "token")
HUB = "hub"
"""The Trellis the platform-hub fragment reads, through the entity provider."""
#: Where the hub's fragment reaches Trellis and Backstage, as rendered by default.
HUB_TRELLIS = "trellis.trellis.svc.cluster.local:8080"
HUB_BACKSTAGE = "https://backstage.example.com"


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


def hub_fragment(folder: Path, trellis: str, backstage: str) -> dict[str, Any]:
    """The platform-hub repository's Backstage fragment, pointed at the test's addresses."""
    repo = render(HUB_VARIANTS["create-github-aws"], folder, blueprint="platform-hub")
    text = (repo / "backstage" / "app-config.trellis.yaml").read_text()
    assert f"http://{HUB_TRELLIS}" in text and HUB_BACKSTAGE in text
    config: dict[str, Any] = yaml.safe_load(
        text.replace(HUB_TRELLIS, trellis).replace(HUB_BACKSTAGE, backstage)
    )
    return config


def test_the_documented_app_configs_bring_every_model_in(tmp_path, monkeypatch):
    monkeypatch.setenv("TRELLIS_CATALOG_TOKEN", TOKEN)
    monkeypatch.setenv("TRELLIS_API_TOKEN", TOKEN)
    servers: dict[str, TrellisServer] = {}
    try:
        for variant in (*VARIANTS, HUB):
            uri = f"sqlite:///{tmp_path / variant / 'mlflow.db'}"
            (tmp_path / variant).mkdir()
            seed(uri, models(variant))
            env = {"TRELLIS_MLFLOW__TRACKING_URI": uri, "TRELLIS_API_TOKENS": TOKEN}
            if variant != "open":
                env["TRELLIS_CATALOG__REQUIRES_TOKEN"] = "true"
            trellis = TrellisServer(
                state_dir=tmp_path / variant / "state", env=env, port=free_port()
            )
            trellis.state_dir.mkdir()
            servers[variant] = trellis.start()
            unauthenticated = httpx.get(f"{trellis.url}/catalog/entities.yaml")
            assert unauthenticated.status_code == (200 if variant == "open" else 401)

        documented = {v: snippet(v, f"127.0.0.1:{servers[v].port}") for v in VARIANTS}
        config = combined(documented["open"], documented["token"])
        assert all(holds(config, documented[v], lists_may_grow=True) for v in VARIANTS)

        def with_hub(port: int) -> dict[str, Any]:
            hub = hub_fragment(
                tmp_path / f"hub-{port}",
                f"127.0.0.1:{servers[HUB].port}",
                f"http://127.0.0.1:{port}",
            )
            merged = combined(config, hub)
            assert holds(merged, hub, lists_may_grow=True) and all(
                holds(merged, documented[v], lists_may_grow=True) for v in VARIANTS
            )
            loaded.update(merged)
            catalog = {k: v for k, v in merged["catalog"].items() if k != "locations"}
            # As rendered, but read every second instead of every five: the test waits on
            # reads, not on time (the provider's own test does the same).
            trellis = merged["trellis"] | {
                "catalog": merged["trellis"]["catalog"]
                | {"schedule": {"frequency": {"seconds": 1}, "timeout": {"seconds": 30}}}
            }
            rest = {k: v for k, v in merged.items() if k not in ("backend", "trellis")}
            return rest | {"catalog": catalog, "trellis": trellis}

        loaded: dict[str, Any] = {}
        with BackstageBackend.start(
            tmp_path / "backstage",
            locations=config["catalog"]["locations"],
            reading_allow=[entry["host"] for entry in config["backend"]["reading"]["allow"]],
            extra_config=with_hub,
        ) as backstage:
            # The hub's fragment adds no location and no host to read: the provider reads.
            assert loaded["catalog"]["locations"] == config["catalog"]["locations"]
            assert loaded["backend"] == config["backend"]
            provider = snippet("provider", f"127.0.0.1:{servers[HUB].port}")
            assert holds(loaded, provider, lists_may_grow=True)
            assert loaded["trellis"]["catalog"] == {
                **provider["trellis"]["catalog"],
                "confirmEmptyAfter": {"hours": 1},
            }
            base = backstage.base_url
            discovered = backstage.client.get("/api/discovery-probe/tech-insights")
            assert discovered.status_code == 200, discovered.text
            tech_insights = discovered.json()["externalBaseUrl"]
            assert tech_insights == f"{base}/api/proxy/trellis/api/tech-insights"
            checks = backstage.client.get(f"{tech_insights}/checks")
            assert checks.status_code == 200, checks.text
            assert checks.json() and all("id" in check for check in checks.json())
            actions = backstage.client.get("/api/scaffolder/v2/actions")
            assert actions.status_code == 200, actions.text
            assert "trellis:blueprint:render" in {a["id"] for a in actions.json()}

            def titles_by_location() -> dict[str, set[str]]:
                found: dict[str, set[str]] = {}
                for entity in backstage.entities("kind=resource"):
                    location = entity["metadata"]["annotations"]["backstage.io/managed-by-location"]
                    found.setdefault(location.split("/catalog/")[0], set()).add(
                        entity["metadata"]["title"]
                    )
                return found

            # The provider's location is url:<baseUrl>/catalog/entities.
            expected = {
                f"url:{servers[v].url}": {m.name for m in models(v)} for v in (*VARIANTS, HUB)
            }
            backstage.wait_for(
                lambda: titles_by_location() == expected,
                60,
                "each snippet's location and the hub's provider to deliver their two models",
            )
            assert backstage.catalog_errors() == []
    finally:
        for trellis in servers.values():
            trellis.stop()
    # The token rode in query strings and headers; it never reaches Trellis's log.
    for trellis in servers.values():
        assert TOKEN not in trellis.process_log.read_text()
