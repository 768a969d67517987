"""A real Backstage backend ingests hub-to-region lineage: open model, adapters, their server.

Real parts on 127.0.0.1: a registry seeded through MLflow into an ``sqlite:`` database with
an open model (under a name Backstage would refuse) and two regional adapters tagged as the
import and fine-tune jobs tag them, ``trellis serve`` reading it and one cluster, and a
Backstage backend (catalog plugin) reading Trellis through a ``url`` location. The cluster
is the recorded edge cluster (``support.kube_replay``) whose vLLM server is told to serve
the open model with both adapters (``trellis.dev/lora-adapters``).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from support.backstage import BackstageBackend
from support.kube_replay import FIXTURES, KubeReplay, load_cluster
from support.registry import seed_lineage
from support.services import TrellisServer, free_port
from support.timing import scaled

pytestmark = [pytest.mark.backstage, pytest.mark.kube_replay]

BASE = "Qwen2 0.5B · Instruct (hub) ✨"
ADAPTERS = {f"{BASE} eu-west-1": "eu-west-1", "qwen2-us-east-1": "us-east-1"}


def edge_cluster() -> dict[str, list[dict[str, Any]]]:
    """The recorded edge cluster, its vLLM server serving the open model and both adapters."""
    cluster = copy.deepcopy(load_cluster(FIXTURES / "edge"))
    server = next(d for d in cluster["deployments"] if d["metadata"]["name"] == "support-assistant")
    server["metadata"]["annotations"].update(
        {
            "trellis.dev/registered-model": BASE,
            "trellis.dev/lora-adapters": ",".join(ADAPTERS),
            "trellis.dev/model-version": "1",
        }
    )
    return cluster


def targets(entity: dict[str, Any], relation: str) -> set[str]:
    return {r["targetRef"] for r in entity.get("relations", []) if r["type"] == relation}


def test_backstage_resolves_open_model_to_adapter_lineage(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    seed_lineage(uri, BASE, ADAPTERS)
    with KubeReplay({"edge": edge_cluster()}) as replay:
        trellis = TrellisServer(
            state_dir=tmp_path / "state",
            port=free_port(),
            env={
                "TRELLIS_MLFLOW__TRACKING_URI": uri,
                "TRELLIS_KUBERNETES__KUBECONFIG": str(
                    replay.write_kubeconfig(tmp_path / "kubeconfig")
                ),
                "TRELLIS_KUBERNETES__CONTEXTS": "edge",
                "TRELLIS_KUBERNETES__REGIONS": "edge=us-east-1",
                "TRELLIS_KUBERNETES__TIMEOUT_SECONDS": str(scaled(2)),
            },
        )
        trellis.state_dir.mkdir()
        try:
            trellis.start()
            response = httpx.get(f"{trellis.url}/catalog/entities.yaml")
            served = [doc for doc in yaml.safe_load_all(response.content) if doc]
            by_title = {e["metadata"]["title"]: e for e in served if e["kind"] == "Resource"}
            base_ref = f"resource:default/{by_title[BASE]['metadata']['name']}"
            adapter_refs = {f"resource:default/{by_title[a]['metadata']['name']}" for a in ADAPTERS}
            server = next(
                e for e in served
                if e["kind"] == "Component" and e["metadata"]["title"].startswith(BASE)
            )  # fmt: skip
            server_ref = f"component:default/{server['metadata']['name']}"

            with BackstageBackend.start(
                tmp_path / "backstage",
                locations=[{"type": "url", "target": f"{trellis.url}/catalog/entities.yaml"}],
                reading_allow=[f"127.0.0.1:{trellis.port}"],
            ) as backstage:

                def refs() -> dict[str, dict[str, Any]]:
                    return {
                        f"{e['kind'].lower()}:default/{e['metadata']['name']}": e
                        for e in backstage.entities()
                    }

                def resolved() -> bool:
                    found = refs()
                    base = found.get(base_ref)
                    return base is not None and targets(base, "dependencyOf") >= {
                        *adapter_refs,
                        server_ref,
                    }

                backstage.wait_for(resolved, 120, "the base model's dependencyOf relations")
                found = refs()
                for adapter in adapter_refs:
                    assert targets(found[adapter], "dependsOn") == {base_ref}
                    # The server that loads it depends on it too, seen from both ends.
                    assert server_ref in targets(found[adapter], "dependencyOf")
                assert targets(found[server_ref], "dependsOn") == {base_ref, *adapter_refs}
                base = found[base_ref]["metadata"]["annotations"]
                assert base["trellis.dev/adapters"] == ",".join(sorted(adapter_refs))
                assert base["trellis.dev/model-kind"] == "base"
                us = found[f"resource:default/{by_title['qwen2-us-east-1']['metadata']['name']}"]
                assert us["metadata"]["annotations"]["trellis.dev/region"] == "us-east-1"
                assert us["metadata"]["annotations"]["trellis.dev/served-regions"] == "us-east-1"
                assert backstage.catalog_errors() == []
        finally:
            trellis.stop()
