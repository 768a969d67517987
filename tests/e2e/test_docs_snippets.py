"""The app-config snippets in docs/backstage.md work, verbatim, against a real Backstage."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
import yaml

from support.backstage import BackstageBackend
from support.registry import ModelSpec, seed
from support.services import TrellisServer, free_port

pytestmark = pytest.mark.backstage

REPO = Path(__file__).resolve().parents[2]
TOKEN = "docs-token-" + "z" * 24
MODELS = [
    ModelSpec("fraud-detector", {"owner": "risk", "system": "payments"}, 1, 1),
    ModelSpec("Churn Model", {"owner": "growth"}),
]


def snippet(name: str, address: str) -> dict:
    text = (REPO / "docs" / "backstage.md").read_text()
    match = re.search(rf"<!-- snippet: {name} -->\n```yaml\n(.*?)```", text, re.S)
    assert match, f"docs/backstage.md has no snippet {name!r}"
    return yaml.safe_load(match.group(1).replace("trellis.internal:8080", address))


@pytest.mark.parametrize("variant", ["open", "token"])
def test_the_documented_app_config_brings_every_model_in(variant, tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    seed(uri, MODELS)
    env = {"TRELLIS_MLFLOW__TRACKING_URI": uri, "TRELLIS_API_TOKENS": TOKEN}
    if variant == "token":
        env["TRELLIS_CATALOG__REQUIRES_TOKEN"] = "true"
        monkeypatch.setenv("TRELLIS_CATALOG_TOKEN", TOKEN)
    trellis = TrellisServer(state_dir=tmp_path / "state", env=env, port=free_port())
    trellis.state_dir.mkdir()
    trellis.start()
    try:
        unauthenticated = httpx.get(f"{trellis.url}/catalog/entities.yaml")
        assert unauthenticated.status_code == (401 if variant == "token" else 200)
        config = snippet(variant, f"127.0.0.1:{trellis.port}")
        catalog = config["catalog"]
        with BackstageBackend.start(
            tmp_path / "backstage",
            locations=catalog.pop("locations"),
            reading_allow=[entry["host"] for entry in config["backend"]["reading"]["allow"]],
            extra_config={"catalog": catalog},
        ) as backstage:
            backstage.wait_for(
                lambda: (
                    {e["metadata"]["title"] for e in backstage.entities("kind=resource")}
                    == {"fraud-detector", "Churn Model"}
                ),
                60,
                f"the {variant} snippet's location to deliver both models",
            )
            assert backstage.catalog_errors() == []
    finally:
        trellis.stop()
    # The token rode in query strings and headers; it never reaches Trellis's log.
    assert TOKEN not in trellis.process_log.read_text()
