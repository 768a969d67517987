"""Hub to region to users, through the generated code of both open-model blueprints.

An open model (tiny, random weights, built here) is registered in a real MLflow server as the
hub's import registers it. A generated `edge-finetune` repository tunes it on its regional
sample with LoRA and registers the adapter with its lineage; a generated `llm-service`
repository, told to serve that registry model with that adapter, pulls both from the
registry into its CPU dev server (LitServe's OpenAI spec) and answers for each by name.
Trellis then reads the same registry and shows the lineage: the adapter's Resource depends on
the hub model's, and both pass Backstage's validators.

Both generated projects need torch: they run with this suite's interpreter, once the
environment is checked to meet what each ``pyproject.toml`` declares.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml

from support.backstage import validate_entities
from support.blueprints import FINETUNE_VARIANTS, LLM_VARIANTS, render
from support.edge_finetune import answers_of, finetune, rows_of, texts_of, write_params
from support.llm_service import dev_server
from support.open_models import register_base_model, tiny_causal_lm
from support.requirements import assert_requirements_met
from support.services import mlflow_server
from support.timing import scaled
from trellis.catalog import CatalogOptions
from trellis.model import ModelTags
from trellis.services.catalog_refresh import build_document
from trellis.sources.mlflow import RestRegistry

HUB = "support-assistant"
REGION = "eu-central-1"


@pytest.fixture(scope="module")
def journey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The registry after the hub import and a regional fine-tune, and a server of both."""
    from mlflow import MlflowClient

    work = tmp_path_factory.mktemp("hub-to-region")
    spoke = render(
        {**FINETUNE_VARIANTS["lora-github-aws"], "hub_model": HUB, "data_region": REGION},
        work / "spoke",
        blueprint="edge-finetune",
    )
    adapter = answers_of(spoke)["adapter_name"]
    service = render(
        {
            **LLM_VARIANTS["kserve-github-aws"],
            "model_source": "registry",
            "registered_model": HUB,
            "lora_adapters": [adapter],
            "regions": [REGION],
        },
        work / "service",
        blueprint="llm-service",
    )
    assert_requirements_met(spoke, ("test",))
    assert_requirements_met(service, ("test", "dev-server"))
    base = tiny_causal_lm(work / "base", texts_of(rows_of(spoke)))
    with mlflow_server(work / "mlflow.db") as registry:
        client = MlflowClient(tracking_uri=registry.url, registry_uri=registry.url)
        register_base_model(client, HUB, base, alias=ModelTags.CHAMPION)
        tuned = finetune(spoke, registry.url, write_params(spoke, work / "params.yaml", 0.0))
        assert tuned.returncode == 0, tuned.stdout + tuned.stderr[-4000:]

        answers = yaml.safe_load((service / ".copier-answers.yml").read_text())
        package = answers["service_slug"].replace("-", "_")
        with dev_server(service, package, registry.url, work / "dev-server.log") as base_url:
            with httpx.Client(base_url=registry.url, timeout=scaled(30)) as http:
                snapshot = RestRegistry(http, label=registry.url).read()
            yield {
                "service": service,
                "package": package,
                "base_url": base_url,
                "served": answers["served_model_name"],
                "adapter": adapter,
                "snapshot": snapshot,
            }


@pytest.mark.mlflow
def test_the_region_s_adapter_is_served_beside_the_hub_model(journey, monkeypatch):
    monkeypatch.syspath_prepend(str(journey["service"] / "src"))
    client_module = __import__(f"{journey['package']}.client", fromlist=["Client"])
    question = [{"role": "user", "content": "Where is my invoice?"}]
    with client_module.Client(journey["base_url"], timeout=scaled(60)) as client:
        hub = client.chat(question, model=journey["served"], max_tokens=8)
        regional = client.chat(question, model=journey["adapter"], max_tokens=8)
    assert hub.model == journey["served"] and hub.text.strip()
    assert regional.model == journey["adapter"] and regional.text.strip()


@pytest.mark.backstage
@pytest.mark.mlflow
def test_trellis_shows_the_lineage_the_generated_jobs_wrote(journey):
    document = build_document(journey["snapshot"], CatalogOptions())
    entities = list(yaml.safe_load_all(document.yaml))
    resources = {e["metadata"]["title"]: e for e in entities if e["kind"] == "Resource"}
    hub, regional = resources[HUB], resources[journey["adapter"]]
    hub_ref = f"resource:default/{hub['metadata']['name']}"
    regional_ref = f"resource:default/{regional['metadata']['name']}"
    assert hub_ref in regional["spec"]["dependsOn"]
    annotations = regional["metadata"]["annotations"]
    assert annotations["trellis.dev/region"] == REGION
    assert annotations["trellis.dev/model-kind"] == "adapter"
    assert annotations["trellis.dev/parent-model"] == HUB
    assert regional_ref in hub["metadata"]["annotations"]["trellis.dev/adapters"].split(",")
    assert [p for p in document.problems if p.severity != "info"] == []
    verdicts = validate_entities(entities)
    assert all(v["ok"] for v in verdicts), verdicts
