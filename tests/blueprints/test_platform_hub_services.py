"""The hub's MLflow and Trellis start from exactly what the Deployments render.

The registry's container command, arguments and environment start a real ``mlflow server``
with only what must be local substituted: the tracking store becomes SQLite, the bucket a
local folder, the listen address and port local ones (and, in the allowed hosts, the local
address the port is reached at), and one worker instead of the fleet's count. Its basic-auth
app answers /health to the probes, refuses an anonymous API call and lets the admin in; a
Host header that is not allowed is refused.

Trellis's container command and the environment its ConfigMap and ExternalSecret give it
start a real ``trellis serve`` with only the fact store (SQLite), the state folder, the
listen address, the kubeconfig file and the addresses of the registry and Prometheus made
local. It reads the registry above as its own MLflow user, through the basic-auth app, and
answers /healthz and /readyz with the hub's and the spoke's clusters among its sources, and
its catalog (token required) holds the seeded model.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from support.blueprints import Renders
from support.manifests import Manifest, render_overlay
from support.markers import starting
from support.registry import ModelSpec, seed
from support.services import (
    Process,
    TrellisServer,
    free_port,
    mlflow_executable,
    start_process,
    wait_http,
)
from support.timing import scaled

pytestmark = [pytest.mark.mlflow, pytest.mark.tools]

VARIANT = "create-github-aws"
ADMIN_PASSWORD = "admin-" + "a" * 24
TRELLIS_PASSWORD = "trellis-" + "p" * 24
API_TOKEN = "hub-token-" + "t" * 24
MODEL = "fraud-detector"
#: Values of the secret-manager entries the ExternalSecrets' templates read.
REMOTE = {
    "adminPassword": ADMIN_PASSWORD,
    "flaskSecretKey": "f" * 32,
    "apiTokens": API_TOKEN,
    "mlflowPassword": TRELLIS_PASSWORD,
    "databaseHost": "postgres.invalid",
    "databasePassword": "unused",
    "host": "postgres.invalid",
    "password": "unused",
}


def spoke_kubeconfig(name: str, server: str, folder: Path) -> dict[str, Any]:
    """A spoke's kubeconfig file as platform-spoke writes it: a token file beside it."""
    (folder / f"{name}.token").write_text("unused")
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": f"https://{server}"}}],
        "users": [{"name": name, "user": {"tokenFile": str(folder / f"{name}.token")}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }


def one(objects: list[Manifest], kind: str, name: str) -> Manifest:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def external_secret(objects: list[Manifest], name: str) -> dict[str, str]:
    """The Secret an ExternalSecret writes, its Go templates filled with ``REMOTE``."""
    template = one(objects, "ExternalSecret", name)["spec"]["target"]["template"]["data"]

    def fill(match: re.Match[str]) -> str:
        return REMOTE[match.group(1)]

    return {
        key: re.sub(r"\{\{ \.(\w+)(?: \| urlquery)? \}\}", fill, value)
        for key, value in template.items()
    }


@pytest.fixture(scope="module")
def objects(renders: Renders) -> list[Manifest]:
    return render_overlay(renders.get("platform-hub", VARIANT)[2] / "deploy")


@pytest.fixture(scope="module")
def registry(objects: list[Manifest], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The rendered MLflow, running locally; yields the address Trellis is told to use."""
    folder = tmp_path_factory.mktemp("registry")
    store = f"sqlite:///{folder / 'mlflow.db'}"
    seed(store, [ModelSpec(MODEL, {"owner": "risk"}, 1, 1)])
    (container,) = one(objects, "Deployment", "mlflow")["spec"]["template"]["spec"]["containers"]
    port = free_port()
    args = list(container["args"])
    local = {
        "--host": "127.0.0.1",
        "--port": str(port),
        "--workers": "1",
        "--artifacts-destination": (folder / "artifacts").as_uri(),
        "--allowed-hosts": args[args.index("--allowed-hosts") + 1].replace(
            "localhost:5000", f"127.0.0.1:{port}"
        ),
    }
    for flag, value in local.items():
        args[args.index(flag) + 1] = value
    secret = external_secret(objects, "mlflow")
    ini = secret["basic_auth.ini"]
    (database,) = re.findall(r"^database_uri = (.+)$", ini, re.M)
    (folder / "basic_auth.ini").write_text(ini.replace(database, store))
    env: dict[str, str] = {}
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            env[item["name"]] = secret[item["valueFrom"]["secretKeyRef"]["key"]]
    env |= {
        "MLFLOW_BACKEND_STORE_URI": store,
        "MLFLOW_AUTH_CONFIG_PATH": str(folder / "basic_auth.ini"),
        "HOME": str(folder),
    }
    assert container["command"] == ["mlflow"]
    starting("mlflow")
    process: Process = start_process(
        [mlflow_executable(), *args], log=folder / "mlflow.log", env=env
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(process, f"{url}/health", timeout=scaled(90), what="the hub's MLflow")
        yield url
    finally:
        process.stop()


def test_mlflow_answers_its_probes_and_authenticates_every_api_call(
    objects: list[Manifest], registry: str
) -> None:
    deployment = one(objects, "Deployment", "mlflow")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    probe = container["readinessProbe"]["httpGet"]["path"]
    assert httpx.get(f"{registry}{probe}", timeout=scaled(10)).text == "OK"
    search = f"{registry}/api/2.0/mlflow/registered-models/search"
    assert httpx.get(search, timeout=scaled(10)).status_code == 401
    admin = ("admin", ADMIN_PASSWORD)
    found = httpx.get(search, auth=admin, timeout=scaled(10))
    assert found.status_code == 200, found.text
    assert [m["name"] for m in found.json()["registered_models"]] == [MODEL]
    # The in-cluster name is an allowed host; an address that is not is refused.
    inside = {"Host": "mlflow.mlflow.svc.cluster.local:5000"}
    assert httpx.get(search, auth=admin, headers=inside, timeout=scaled(10)).status_code == 200
    other = {"Host": "attacker.example.com"}
    assert httpx.get(search, auth=admin, headers=other, timeout=scaled(10)).status_code == 403
    # Trellis's own user, as the operations page says to create it.
    created = httpx.post(
        f"{registry}/api/2.0/mlflow/users/create",
        json={"username": "trellis", "password": TRELLIS_PASSWORD},
        auth=admin,
        timeout=scaled(10),
    )
    assert created.status_code == 200, created.text


def test_trellis_starts_from_its_deployment_and_reads_the_registry_as_its_user(
    objects: list[Manifest], registry: str, tmp_path: Path
) -> None:
    deployment = one(objects, "Deployment", "trellis")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["trellis"] and container["args"] == ["serve"]
    env: dict[str, Any] = dict(one(objects, "ConfigMap", "trellis")["data"])
    env |= external_secret(objects, "trellis")
    # The kubeconfig files the pod mounts, written locally: the hub's as rendered, its API
    # server, token and CA moved to local paths; each spoke's as platform-spoke hands it over.
    unreachable = f"127.0.0.1:{free_port()}"
    (tmp_path / "token").write_text("unused")
    (tmp_path / "ca.crt").write_text("")
    hub = one(objects, "ConfigMap", "trellis-hub-kubeconfig")["data"]["kubeconfig.yaml"]
    hub = hub.replace("https://kubernetes.default.svc", f"https://{unreachable}")
    hub = hub.replace("/var/run/secrets/kubernetes.io/serviceaccount", str(tmp_path))
    files = {}
    for path in env["KUBECONFIG"].split(":"):
        local = tmp_path / Path(path).name
        if Path(path).name == "kubeconfig.yaml":
            local.write_text(hub)
        else:
            spoke = Path(path).stem
            local.write_text(yaml.safe_dump(spoke_kubeconfig(spoke, unreachable, tmp_path)))
        files[path] = str(local)
    contexts = env["TRELLIS_KUBERNETES__CONTEXTS"].split(",")
    assert contexts == ["hub", *(Path(p).stem for p in list(files)[1:])]
    env["KUBECONFIG"] = ":".join(files.values())
    tracking = env["TRELLIS_MLFLOW__TRACKING_URI"]
    assert tracking == f"http://trellis:{TRELLIS_PASSWORD}@mlflow.mlflow.svc.cluster.local:5000"
    env |= {
        "TRELLIS_MLFLOW__TRACKING_URI": tracking.replace(
            "mlflow.mlflow.svc.cluster.local:5000", registry.removeprefix("http://")
        ),
        "TRELLIS_SCORECARDS__DATABASE_URL": f"sqlite:///{tmp_path / 'facts.db'}",
        "TRELLIS_PROMETHEUS__URL": f"http://{unreachable}",
    }
    state = tmp_path / "state"
    state.mkdir()
    port = free_port()
    assert env["TRELLIS_PORT"] == str(container["ports"][0]["containerPort"])
    env |= {"TRELLIS_HOST": "127.0.0.1", "TRELLIS_PORT": str(port), "TRELLIS_STATE_DIR": str(state)}
    trellis = TrellisServer(state_dir=state, env=env, port=port)
    try:
        trellis.start()  # waits for /readyz to answer 200
        health = container["livenessProbe"]["httpGet"]["path"]
        assert httpx.get(f"{trellis.url}{health}", timeout=scaled(10)).json() == {"status": "ok"}
        catalog = f"{trellis.url}/catalog/entities.yaml"
        assert httpx.get(catalog, timeout=scaled(10)).status_code == 401
        entities = httpx.get(catalog, params={"token": API_TOKEN}, timeout=scaled(30))
        assert entities.status_code == 200, entities.text
        names = [e["metadata"]["name"] for e in yaml.safe_load_all(entities.text) if e]
        assert MODEL in names
        sources = httpx.get(f"{trellis.url}/readyz", timeout=scaled(10)).json()["sources"]
        assert {f"kubernetes:{context}" for context in contexts} <= set(sources), sources
    finally:
        trellis.stop()
    assert TRELLIS_PASSWORD not in trellis.process_log.read_text()
