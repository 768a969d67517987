"""Replay answers recorded from real servers (``scripts/record-payloads``) through httpx.

Each recording is one exchange: the request an adapter sends and the server's answer.
``Replay`` is an ``httpx.MockTransport`` handler that answers a request with the recording
whose method, path and parameters match it, and keeps every request it saw, so a test can
check what the adapter asked for as well as what it made of the answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx

from trellis.model import Snapshot
from trellis.sources.mlflow import to_domain

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "recorded"


def recording(server: str, name: str) -> dict[str, Any]:
    """One recorded exchange, e.g. ``recording("mlflow", "runs-get")``."""
    exchange: dict[str, Any] = json.loads((RECORDED / server / f"{name}.json").read_text("utf-8"))
    return exchange


def answer(exchange: Mapping[str, Any]) -> httpx.Response:
    """The recorded answer, as the server sent it (JSON bodies re-encoded, texts as they were)."""
    body = exchange["body"]
    content = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    return httpx.Response(
        exchange["status"],
        content=content.encode(),
        headers={"content-type": exchange["content_type"]},
    )


def _sent(request: httpx.Request) -> dict[str, str]:
    """The request's parameters: its query, or its form or JSON body."""
    found = dict(request.url.params)
    if request.content and request.headers.get("content-type", "").startswith("application/x-"):
        found.update(parse_qsl(request.content.decode()))
    elif request.content:
        found.update({key: json.dumps(value) for key, value in json.loads(request.content).items()})
    return found


def _wanted(exchange: Mapping[str, Any]) -> dict[str, str]:
    request = exchange["request"]
    found = {key: str(value) for key, value in (request.get("params") or {}).items()}
    found.update({key: str(value) for key, value in (request.get("data") or {}).items()})
    found.update({key: json.dumps(value) for key, value in (request.get("json") or {}).items()})
    return found


@dataclass
class Replay:
    """Answers each request with the first recording it matches; 599 when none does.

    A recording matches a request with the same method, path and parameters, leaving out those
    named in ``loose`` (a paging size, a timeout) on both sides.
    """

    exchanges: list[Mapping[str, Any]]
    loose: frozenset[str] = frozenset()
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        """The recorded answer to ``request``."""
        self.requests.append(request)
        sent = _sent(request)
        for exchange in self.exchanges:
            wanted = exchange["request"]
            if (wanted["method"], wanted["path"]) != (request.method, request.url.path):
                continue
            wanted_params = {k: v for k, v in _wanted(exchange).items() if k not in self.loose}
            if wanted_params == {k: v for k, v in sent.items() if k not in self.loose}:
                return answer(exchange)
        return httpx.Response(599, text=f"no recording for {request.method} {request.url}")

    def paths(self) -> list[str]:
        """The path of every request seen, in order."""
        return [request.url.path for request in self.requests]


def client(
    handler: Callable[[httpx.Request], httpx.Response], *, base_url: str = "http://recorded"
) -> httpx.Client:
    """An ``httpx.Client`` whose every request goes to ``handler``."""
    return httpx.Client(base_url=base_url, transport=httpx.MockTransport(handler), timeout=5)


def replay(server: str, names: Iterable[str], *, loose: Iterable[str] = ()) -> Replay:
    """A ``Replay`` of some recordings of one server."""
    return Replay([recording(server, name) for name in names], loose=frozenset(loose))


def mlflow_snapshot() -> Snapshot:
    """The recorded registry (both pages of models and of versions) as the domain sees it."""
    pages = ("page-1", "page-2")
    models = [
        model
        for page in pages
        for model in recording("mlflow", f"registered-models-search.{page}")["body"][
            "registered_models"
        ]
    ]
    versions = [
        version
        for page in pages
        for version in recording("mlflow", f"model-versions-search.{page}")["body"][
            "model_versions"
        ]
    ]
    return to_domain(models, versions, registry="recorded")
