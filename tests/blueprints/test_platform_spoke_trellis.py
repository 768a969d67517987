"""Adding a spoke adds its cluster to Trellis through configuration only.

Two spokes are rendered (eu-west on AWS, ap-south on Google Cloud). Their generated
``trellis/kubeconfig-context.yaml`` files are filled in the way their README tells an
operator to (``kubectl config set-cluster`` with the cluster's endpoint, the reader's token in
the file beside it), listed in ``KUBECONFIG``, and named in ``TRELLIS_KUBERNETES__CONTEXTS``;
then a real ``trellis serve`` starts from that environment. Nothing else is changed: no code,
no merged kubeconfig. A Kubernetes API server cannot run here, so ``support.kube_replay``
stands in for the two API servers: it answers the real ``kubernetes`` client's list calls over
HTTP with recorded objects, and only with the token of its own cluster.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from support.blueprints import Renders
from support.kube_replay import KubeReplay, fleet
from support.manifests import render_overlay
from support.services import TrellisServer, free_port
from support.timing import scaled
from support.tools import kubectl

pytestmark = [pytest.mark.kube_replay, pytest.mark.tools]

#: The two spokes: variant → (context name, region), as their answers give them.
SPOKES = ("aws-eu-west", "gcp-ap-south")


def answers_of(repo: Path) -> dict[str, Any]:
    return yaml.safe_load((repo / ".copier-answers.yml").read_text())


def add_context(repo: Path, clusters: Path, server: str, token: str) -> Path:
    """Hand one spoke's generated context to Trellis, as the spoke's README says."""
    name = answers_of(repo)["spoke_name"]
    context = clusters / f"{name}.yaml"
    shutil.copy(repo / "trellis" / "kubeconfig-context.yaml", context)
    subprocess.run(
        [kubectl(), "--kubeconfig", str(context), "config", "set-cluster", name,
         f"--server={server}"],
        check=True, capture_output=True, timeout=scaled(30),
    )  # fmt: skip
    (clusters / f"{name}.token").write_text(token)
    return context


def collection(path: str) -> tuple[str, str]:
    """(API group, resource) of a list call's path under ``/clusters/<name>``."""
    parts = path.split("/")[3:]
    return ("", parts[-1]) if parts[0] == "api" else (parts[1], parts[-1])


def test_two_spokes_join_trellis_by_configuration_only(renders: Renders, tmp_path: Path) -> None:
    repos = {variant: renders.get("platform-spoke", variant)[2] for variant in SPOKES}
    spokes = {
        answers_of(repo)["spoke_name"]: answers_of(repo)["spoke_region"] for repo in repos.values()
    }
    assert list(spokes) == ["eu-west", "ap-south"]
    recorded = fleet(servers=8, regions=tuple(spokes.values()), noise=3)
    clusters = tmp_path / "clusters"
    clusters.mkdir()
    with KubeReplay({name: recorded[region] for name, region in spokes.items()}) as replay:
        contexts = [
            add_context(repo, clusters, replay.url(name), replay.clusters[name].token)
            for name, repo in zip(spokes, repos.values(), strict=True)
        ]
        trellis = TrellisServer(
            state_dir=tmp_path / "state",
            port=free_port(),
            env={
                "KUBECONFIG": ":".join(map(str, contexts)),
                "TRELLIS_KUBERNETES__CONTEXTS": ",".join(spokes),
                "TRELLIS_KUBERNETES__REGIONS": ",".join(f"{c}={r}" for c, r in spokes.items()),
                "TRELLIS_KUBERNETES__TIMEOUT_SECONDS": str(scaled(5)),
            },
        )
        trellis.state_dir.mkdir()
        try:
            trellis.start()
            ready = httpx.get(f"{trellis.url}/readyz", timeout=scaled(10)).json()
            response = httpx.get(f"{trellis.url}/catalog/entities.yaml", timeout=scaled(10))
        finally:
            trellis.stop()
        requests = list(replay.requests)

    states = {name: ready["sources"][f"kubernetes:{name}"]["state"] for name in spokes}
    assert states == {"eu-west": "ok", "ap-south": "ok"}
    response.raise_for_status()
    servers = [
        doc
        for doc in yaml.safe_load_all(response.content)
        if doc and doc["kind"] == "Component" and doc["spec"]["type"] == "model-server"
    ]
    names = sorted(s["metadata"]["name"] for s in servers)
    by_region = {region: [n for n in names if n.endswith(region)] for region in spokes.values()}
    assert all(len(names) == 4 for names in by_region.values()), by_region
    assert len(servers) == 8

    # Each spoke was read with its own token, and with calls its reader role allows: the
    # generated ClusterRole grants exactly the collections Trellis lists, nothing more.
    for name, repo in zip(spokes, repos.values(), strict=True):
        mine = [r for r in requests if r.cluster == name]
        assert mine and {r.authorization for r in mine} == {f"Bearer {replay.clusters[name].token}"}
        assert not [r for r in mine if r.query.get("watch")]
        listed = {collection(urlsplit(r.path).path) for r in mine}
        (role,) = [
            o
            for o in render_overlay(repo / "deploy")
            if o["kind"] == "ClusterRole" and o["metadata"]["name"] == "trellis-reader"
        ]
        granted = {
            (group, resource)
            for rule in role["rules"]
            if rule["verbs"] == ["list"]
            for group in rule["apiGroups"]
            for resource in rule["resources"]
        }
        assert listed == granted
