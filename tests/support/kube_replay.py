"""A local stand-in for Kubernetes API servers that answers with recorded API objects.

The Kubernetes API server cannot run here, so the tests point the real ``kubernetes`` client
at this server instead: a threaded HTTP/1.1 server on 127.0.0.1 with one path prefix per
cluster (``/clusters/<name>``), answering the list calls the client makes the way
kube-apiserver does:

* ``GET /apis/serving.kserve.io/v1beta1/inferenceservices``, ``/apis/apps/v1/deployments``,
  ``/apis/networking.k8s.io/v1/networkpolicies``, ``/api/v1/pods`` (and their
  ``/namespaces/<ns>/...`` forms) with a ``*List`` object;
* ``labelSelector`` (the full selector grammar), ``limit`` and ``continue`` are honoured;
* a bearer token is required (``401`` with a ``Status`` object otherwise);
* a cluster can be told to answer late (:meth:`KubeReplay.set_fault` with ``delay``) or with
  an error status (``500``, ``401``, ...), as a broken or unreachable cluster would.

The objects are recorded API objects kept as JSON under ``tests/fixtures/kubernetes/<cluster>``
(``inferenceservices.json``, ``deployments.json``, ``networkpolicies.json``, each a list as the
API returns it). :func:`fleet` makes a large, equally realistic fleet for the benchmark from
the same recorded objects.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from support.markers import starting

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kubernetes"
"""Recorded objects: ``<cluster>/<resource>.json``."""

Obj = dict[str, Any]

#: Resource plural → (list path, apiVersion, list kind), as kube-apiserver serves them.
RESOURCES: dict[str, tuple[str, str, str]] = {
    "inferenceservices": (
        "/apis/serving.kserve.io/v1beta1",
        "serving.kserve.io/v1beta1",
        "InferenceServiceList",
    ),
    "deployments": ("/apis/apps/v1", "apps/v1", "DeploymentList"),
    "networkpolicies": ("/apis/networking.k8s.io/v1", "networking.k8s.io/v1", "NetworkPolicyList"),
    "pods": ("/api/v1", "v1", "PodList"),
}

_PATH = re.compile(
    r"^/clusters/(?P<cluster>[^/]+)(?P<group>/apis/[^/]+/[^/]+|/api/v1)"
    r"(?:/namespaces/(?P<namespace>[^/]+))?/(?P<resource>[a-z]+)$"
)


# --------------------------------------------------------------------------- label selectors


@dataclass(frozen=True)
class Requirement:
    """One term of a label selector: ``key op values``."""

    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in {"=", "in"}:
            return present and value in self.values
        return not present or value not in self.values  # "!=" and "notin"


_SET_TERM = re.compile(r"^(?P<key>[^\s!=()]+)\s+(?P<op>in|notin)\s+\((?P<values>[^()]*)\)$")
_EQ_TERM = re.compile(r"^(?P<key>[^\s!=()]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s!=(),]*)$")


def parse_selector(text: str) -> list[Requirement]:
    """Parse a label selector string as kube-apiserver does; ValueError when malformed."""
    terms = [t.strip() for t in _split_terms(text)]
    if text.strip() and not all(terms):
        raise ValueError(f"empty term in selector {text!r}")
    return [_requirement(raw) for raw in terms if raw]


def _split_terms(text: str) -> list[str]:
    """Split on the commas between terms, not those inside ``in (a, b)``."""
    terms, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    return [*terms, current]


def _requirement(raw: str) -> Requirement:
    if match := _SET_TERM.match(raw):
        values = tuple(v.strip() for v in match["values"].split(",") if v.strip())
        return Requirement(match["key"], match["op"], values)
    if match := _EQ_TERM.match(raw):
        op = "=" if match["op"] == "==" else match["op"]
        return Requirement(match["key"], op, (match["value"],))
    if re.fullmatch(r"![^\s!=(),]+", raw):
        return Requirement(raw[1:], "!")
    if re.fullmatch(r"[^\s!=(),]+", raw):
        return Requirement(raw, "exists")
    raise ValueError(f"unable to parse requirement {raw!r}")


# --------------------------------------------------------------------------- the server


@dataclass
class Fault:
    """How a cluster misbehaves: answer after ``delay`` seconds, and/or with ``status``."""

    delay: float = 0.0
    status: int | None = None


@dataclass(frozen=True)
class Recorded:
    """One request the server received."""

    cluster: str
    path: str
    query: dict[str, list[str]]
    authorization: str | None


_STATUS_REASONS = {
    401: ("Unauthorized", "Unauthorized"),
    403: ("Forbidden", 'forbidden: User "system:anonymous" cannot list resource'),
    404: ("NotFound", "the server could not find the requested resource"),
    500: ("InternalError", "Internal error occurred: etcdserver: request timed out"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
}


def status_object(code: int, message: str | None = None) -> Obj:
    """A ``Status`` object as kube-apiserver sends with an error."""
    reason, default = _STATUS_REASONS.get(code, ("InternalError", "error"))
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message or default,
        "reason": reason,
        "code": code,
    }


@dataclass
class Cluster:
    """One replayed cluster: its objects per resource, its token and its fault."""

    objects: dict[str, list[Obj]]
    token: str
    fault: Fault = field(default_factory=Fault)
    resource_version: int = 48_213_077


class KubeReplay:
    """A threaded HTTP server on 127.0.0.1 replaying several clusters, one path prefix each.

    Use it as a context manager::

        with KubeReplay.from_fixtures() as replay:
            kubeconfig = replay.write_kubeconfig(tmp_path / "kubeconfig")
    """

    def __init__(self, clusters: Mapping[str, Mapping[str, Iterable[Obj]]]) -> None:
        self.clusters = {
            name: Cluster(
                objects={kind: [copy.deepcopy(o) for o in objs] for kind, objs in kinds.items()},
                token=f"replay-{name}-" + hashlib.sha256(name.encode()).hexdigest()[:24],
            )
            for name, kinds in clusters.items()
        }
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_fixtures(cls, *clusters: str, root: Path = FIXTURES) -> KubeReplay:
        """The recorded clusters under ``root`` (all of them, or the ones named)."""
        names = clusters or tuple(sorted(p.name for p in root.iterdir() if p.is_dir()))
        return cls({name: load_cluster(root / name) for name in names})

    # -- lifecycle

    def start(self) -> KubeReplay:
        starting("kube_replay")
        replay = self

        class Handler(_Handler):
            server_state = replay

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="kube-replay", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> KubeReplay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- configuration

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the replay server first"
        return int(self._server.server_address[1])

    def url(self, cluster: str) -> str:
        """The API server URL of ``cluster`` (what a kubeconfig's ``server`` holds)."""
        return f"http://127.0.0.1:{self.port}/clusters/{cluster}"

    def set_fault(self, cluster: str, *, delay: float = 0.0, status: int | None = None) -> None:
        """Make ``cluster`` answer after ``delay`` seconds and/or with HTTP ``status``."""
        self.clusters[cluster].fault = Fault(delay=delay, status=status)

    def kubeconfig(self, contexts: Mapping[str, str] | None = None) -> Obj:
        """A kubeconfig with one context per cluster (``contexts`` maps context → cluster)."""
        contexts = dict(contexts or {name: name for name in self.clusters})
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "current-context": next(iter(contexts)),
            "clusters": [
                {"name": cluster, "cluster": {"server": self.url(cluster)}}
                for cluster in dict.fromkeys(contexts.values())
            ],
            "users": [
                {
                    "name": f"trellis-reader@{cluster}",
                    "user": {"token": self.clusters[cluster].token},
                }
                for cluster in dict.fromkeys(contexts.values())
            ],
            "contexts": [
                {
                    "name": context,
                    "context": {"cluster": cluster, "user": f"trellis-reader@{cluster}"},
                }
                for context, cluster in contexts.items()
            ],
        }

    def write_kubeconfig(self, path: Path, contexts: Mapping[str, str] | None = None) -> Path:
        """Write :meth:`kubeconfig` as YAML to ``path`` and return it."""
        path.write_text(yaml.safe_dump(self.kubeconfig(contexts), sort_keys=False))
        return path

    def requests_to(self, cluster: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.cluster == cluster]

    # -- answering

    def _record(self, request: Recorded) -> None:
        with self._lock:
            self.requests.append(request)

    def answer(self, path: str, query: dict[str, list[str]], authorization: str | None):
        """(status, body) for one GET, after the cluster's delay."""
        match = _PATH.match(path)
        if not match:
            return 404, status_object(404)
        cluster = self.clusters.get(match["cluster"])
        if cluster is None:
            return 404, status_object(404)
        self._record(Recorded(match["cluster"], path, query, authorization))
        if cluster.fault.delay:
            self._stopping.wait(cluster.fault.delay)
        if cluster.fault.status:
            return cluster.fault.status, status_object(cluster.fault.status)
        if authorization != f"Bearer {cluster.token}":
            return 401, status_object(401)
        resource = match["resource"]
        if resource not in RESOURCES or RESOURCES[resource][0] != match["group"]:
            return 404, status_object(404)
        if query.get("watch", ["false"])[0] == "true":
            return 400, status_object(400, "watch is not replayed")
        return 200, self._list(cluster, resource, match["namespace"], query)

    def _list(
        self, cluster: Cluster, resource: str, namespace: str | None, query: dict[str, list[str]]
    ) -> Obj:
        items = cluster.objects.get(resource, [])
        if namespace:
            items = [o for o in items if o["metadata"].get("namespace") == namespace]
        selector = query.get("labelSelector", [""])[0]
        if selector:
            requirements = parse_selector(selector)
            items = [
                o
                for o in items
                if all(r.matches(o["metadata"].get("labels") or {}) for r in requirements)
            ]
        start = int(query.get("continue", ["0"])[0] or 0)
        limit = int(query.get("limit", ["0"])[0] or 0)
        end = start + limit if limit else len(items)
        _, api_version, kind = RESOURCES[resource]
        metadata: Obj = {"resourceVersion": str(cluster.resource_version)}
        if end < len(items):
            metadata["continue"] = str(end)
            metadata["remainingItemCount"] = len(items) - end
        return {
            "apiVersion": api_version,
            "kind": kind,
            "metadata": metadata,
            "items": items[start:end],
        }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_state: KubeReplay

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        status, body = self.server_state.answer(
            parts.path, parse_qs(parts.query), self.headers.get("Authorization")
        )
        data = json.dumps(body, separators=(",", ":")).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "no-cache, private")
            self.send_header("Audit-Id", str(uuid.uuid4()))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a delayed cluster): as a real server would see

    def log_message(self, *args: object) -> None:
        pass


# --------------------------------------------------------------------------- recorded objects


def load_cluster(folder: Path) -> dict[str, list[Obj]]:
    """The recorded objects of one cluster, per resource plural."""
    objects: dict[str, list[Obj]] = {}
    for path in sorted(folder.glob("*.json")):
        document = json.loads(path.read_text())
        objects[path.stem] = list(document["items"])
    return objects


def with_type(resource: str, obj: Obj) -> Obj:
    """``obj`` with ``apiVersion`` and ``kind`` (list items of built-in kinds come without)."""
    _, api_version, list_kind = RESOURCES[resource]
    return {"apiVersion": api_version, "kind": list_kind.removesuffix("List"), **obj}


# --------------------------------------------------------------------------- the benchmark fleet

FLEET_REGIONS = ("eu-west-1", "us-east-1", "ap-southeast-1", "sa-east-1")


def _uid(*parts: object) -> str:
    return str(uuid.UUID(hashlib.md5("/".join(map(str, parts)).encode()).hexdigest()))


def _retarget(obj: Obj, old: str, new: str, region: str, old_region: str, serial: int) -> Obj:
    """A copy of a recorded object renamed from ``old`` to ``new`` and moved to ``region``."""
    text = json.dumps(obj).replace(old, new).replace(old_region, region)
    copied: Obj = json.loads(text)
    metadata = copied["metadata"]
    metadata["uid"] = _uid(region, metadata.get("namespace"), metadata["name"], copied.get("kind"))
    metadata["resourceVersion"] = str(40_000_000 + serial)
    return copied


def fleet(servers: int = 1000, regions: tuple[str, ...] = FLEET_REGIONS, *, noise: int = 50):
    """``servers`` model servers spread over one cluster per region, from the recorded objects.

    Three in five are MLServer InferenceServices, one in four Triton ones (each with the
    Deployment KServe makes for it and the blueprint's NetworkPolicy), the rest vLLM
    Deployments. Each cluster also holds ``noise`` Deployments of other software, which
    the label selector must filter out. Returns ``{cluster: {resource: [objects]}}``, the
    cluster named after its region.
    """
    hub = load_cluster(FIXTURES / "hub")
    edge = load_cluster(FIXTURES / "edge")
    mlserver = _by_name(hub, "fraud-detector")
    triton = _by_name(hub, "demand-forecast")
    vllm = _by_name(edge, "support-assistant")
    other = next(
        o for o in hub["deployments"] if o["metadata"]["name"] == "kserve-controller-manager"
    )
    clusters: dict[str, dict[str, list[Obj]]] = {
        region: {"inferenceservices": [], "deployments": [], "networkpolicies": []}
        for region in regions
    }
    for serial in range(servers):
        region = regions[serial % len(regions)]
        kind = serial % 20
        template, old, old_region = (
            (mlserver, "fraud-detector", "eu-west-1")
            if kind < 12
            else (triton, "demand-forecast", "eu-west-1")
            if kind < 17
            else (vllm, "support-assistant", "us-east-1")
        )
        new = f"model-{serial // len(regions):05d}"
        for resource, objs in template.items():
            clusters[region][resource].extend(
                _retarget(o, old, new, region, old_region, serial) for o in objs
            )
    for region in regions:
        for index in range(noise):
            copied = _retarget(other, "kserve-controller-manager", f"service-{index:03d}", region,
                               "eu-west-1", index)  # fmt: skip
            copied["metadata"]["namespace"] = f"team-{index % 10}"
            clusters[region]["deployments"].append(copied)
    return clusters


def _by_name(cluster: Mapping[str, list[Obj]], name: str) -> dict[str, list[Obj]]:
    """Every recorded object of one server: named ``name`` or ``name-predictor``."""
    return {
        resource: [o for o in objs if o["metadata"]["name"] in {name, f"{name}-predictor"}]
        for resource, objs in cluster.items()
    }


def iter_objects(cluster: Mapping[str, list[Obj]]) -> Iterator[tuple[str, Obj]]:
    """(resource, object) for every object of a cluster."""
    for resource, objs in cluster.items():
        for obj in objs:
            yield resource, obj
