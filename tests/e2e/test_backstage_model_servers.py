"""A real Backstage backend ingests model servers as Components and APIs beside their models.

Real parts on 127.0.0.1: a registry seeded through MLflow into an ``sqlite:`` database,
``trellis serve`` as a process reading it and two Kubernetes clusters with the ``kubernetes``
client, and a Backstage backend (catalog plugin) reading Trellis through a ``url`` location.
The clusters are the one stand-in: a Kubernetes API server cannot run here, so
``support.kube_replay`` answers the client's list calls over real HTTP with recorded API
objects (a hub in eu-west-1, an edge in us-east-1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from support.backstage import BackstageBackend, validate_entities
from support.kube_replay import KubeReplay
from support.registry import ModelSpec, seed
from support.services import TrellisServer, free_port, wait_until
from support.timing import scaled

pytestmark = [pytest.mark.backstage, pytest.mark.kube_replay]

MODELS = [
    ModelSpec("fraud-detector", {"owner": "risk-ml", "system": "payments"}, versions=3, champion=2),
    ModelSpec("demand-forecast", {"owner": "supply-ml", "system": "supply-chain"}, 3, champion=3),
    ModelSpec("churn-predictor", {"owner": "growth-ml"}, versions=4, champion=4),
    ModelSpec("support-assistant", {"owner": "cx-ml", "system": "support"}, 7, champion=7),
    ModelSpec("Code Assistant", {"owner": "devx"}, versions=1),
    ModelSpec("unserved-model", {"owner": "risk-ml"}, versions=1),
]
#: Every server's Component and the model Resource it depends on (None: not in the registry).
SERVERS = {
    "churn-predictor-eu-west-1": "resource:default/churn-predictor",
    "code-assistant-eu-west-1": "resource:default/code-assistant",
    "demand-forecast-eu-west-1": "resource:default/demand-forecast",
    "fraud-detector-eu-west-1": "resource:default/fraud-detector",
    "fraud-detector-us-east-1": "resource:default/fraud-detector",
    "support-assistant-us-east-1": "resource:default/support-assistant",
    "ghost-model-us-east-1": None,
}
EDGE = {"fraud-detector-us-east-1", "support-assistant-us-east-1", "ghost-model-us-east-1"}
KINDS = {"Component", "API", "Resource"}


def by_ref(entities: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{e['kind'].lower()}:default/{e['metadata']['name']}": e for e in entities}


def targets(entity: dict[str, Any], relation: str) -> list[str]:
    return sorted(r["targetRef"] for r in entity.get("relations", []) if r["type"] == relation)


def relations_resolved(refs: dict[str, dict[str, Any]]) -> bool:
    """Each server depends on its model and provides its API, seen from both ends."""
    for name, model in SERVERS.items():
        component, api = refs.get(f"component:default/{name}"), refs.get(f"api:default/{name}")
        if component is None or api is None:
            return False
        if targets(component, "dependsOn") != ([model] if model else []):
            return False
        if targets(component, "providesApi") != [f"api:default/{name}"]:
            return False
        if targets(api, "apiProvidedBy") != [f"component:default/{name}"]:
            return False
        if model and f"component:default/{name}" not in targets(refs[model], "dependencyOf"):
            return False
    return True


def served_entities(trellis: TrellisServer) -> list[dict[str, Any]]:
    response = httpx.get(f"{trellis.url}/catalog/entities.yaml")
    response.raise_for_status()
    return [doc for doc in yaml.safe_load_all(response.content) if doc]


def cluster_state(trellis: TrellisServer, cluster: str) -> str | None:
    sources = httpx.get(f"{trellis.url}/readyz").json().get("sources", {})
    return sources.get(f"kubernetes:{cluster}", {}).get("state")


def test_backstage_ingests_model_servers_and_keeps_them_when_a_cluster_fails(
    tmp_path: Path,
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    seed(uri, MODELS)
    with KubeReplay.from_fixtures("hub", "edge") as replay:
        trellis = TrellisServer(
            state_dir=tmp_path / "state",
            port=free_port(),
            env={
                "TRELLIS_MLFLOW__TRACKING_URI": uri,
                "TRELLIS_KUBERNETES__KUBECONFIG": str(
                    replay.write_kubeconfig(tmp_path / "kubeconfig")
                ),
                "TRELLIS_KUBERNETES__CONTEXTS": "hub,edge",
                "TRELLIS_KUBERNETES__REGIONS": "hub=eu-west-1,edge=us-east-1",
                "TRELLIS_KUBERNETES__TIMEOUT_SECONDS": str(scaled(2)),
                "TRELLIS_CATALOG__REFRESH_INTERVAL_SECONDS": "2",
            },
        )
        trellis.state_dir.mkdir()
        try:
            trellis.start()
            served = served_entities(trellis)
            components = {e["metadata"]["name"] for e in served if e["kind"] == "Component"}
            assert components == set(SERVERS)
            assert [r for r in validate_entities(served) if not r["ok"]] == []
            expected = {(e["kind"], e["metadata"]["name"]) for e in served if e["kind"] in KINDS}

            with BackstageBackend.start(
                tmp_path / "backstage",
                locations=[{"type": "url", "target": f"{trellis.url}/catalog/entities.yaml"}],
                reading_allow=[f"127.0.0.1:{trellis.port}"],
            ) as backstage:

                def ingested() -> set[tuple[str, str]]:
                    return {
                        (e["kind"], e["metadata"]["name"])
                        for e in backstage.entities()
                        if e["kind"] in KINDS
                    }

                backstage.wait_for(lambda: ingested() == expected, 120, "every entity")
                backstage.wait_for(
                    lambda: relations_resolved(by_ref(backstage.entities())),
                    60,
                    "dependsOn/dependencyOf and providesApi/apiProvidedBy relations",
                )
                assert backstage.catalog_errors() == []
                refs = by_ref(backstage.entities())
                for name in SERVERS:  # every relation target is an entity of the catalog
                    component = refs[f"component:default/{name}"]
                    for relation in ("dependsOn", "providesApi"):
                        assert set(targets(component, relation)) <= set(refs)

                fraud = refs["resource:default/fraud-detector"]["metadata"]["annotations"]
                assert fraud["trellis.dev/served-regions"] == "eu-west-1,us-east-1"
                assert fraud["trellis.dev/served-versions"] == "2"
                hub = refs["component:default/fraud-detector-eu-west-1"]
                assert (hub["spec"]["owner"], hub["spec"]["system"]) == (
                    "group:default/risk-ml",
                    "system:default/payments",
                )
                annotations = hub["metadata"]["annotations"]
                assert annotations["backstage.io/kubernetes-id"] == "fraud-detector"
                assert annotations["trellis.dev/model-version"] == "2"
                vllm = refs["api:default/support-assistant-us-east-1"]
                assert vllm["spec"]["type"] == "openai"
                assert "/v1/chat/completions" in vllm["spec"]["definition"]

                # The edge cluster breaks: Trellis says so and keeps serving its servers.
                replay.set_fault("edge", status=500)
                wait_until(
                    lambda: cluster_state(trellis, "edge") == "failing",
                    timeout=scaled(30),
                    what="Trellis to report the edge cluster failing",
                )
                assert cluster_state(trellis, "hub") == "ok"
                still = {e["metadata"]["name"] for e in served_entities(trellis)}
                assert still >= EDGE
                trellis.wait_for_rereads(2, timeout=60)
                assert {
                    e["metadata"]["name"] for e in backstage.entities() if e["kind"] == "Component"
                } >= EDGE
                assert backstage.catalog_errors() == []
        finally:
            trellis.stop()
