"""The registry source against a real MLflow server and the embedded SQLite store."""

from __future__ import annotations

import math
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from support.services import free_port
from support.timing import scaled
from trellis.catalog import CatalogOptions
from trellis.errors import SourceUnavailable
from trellis.services.catalog_refresh import build_document
from trellis.sources.mlflow import RestRegistry, SqlRegistry


@contextmanager
def rest(
    url: str,
    *,
    timeout: float = scaled(30),
    page: int = 1000,
    version_page: int = 10_000,
    requests: list[str] | None = None,
) -> Iterator[RestRegistry]:
    hooks = {"request": [lambda r: requests.append(r.url.path)]} if requests is not None else {}
    with httpx.Client(base_url=url, timeout=timeout, event_hooks=hooks) as client:
        yield RestRegistry(client, label=url, model_page_size=page, version_page_size=version_page)


@pytest.mark.mlflow
def test_the_server_is_read_in_pages_never_per_model(hostile_server, hostile_registry):
    _, specs = hostile_registry
    requests: list[str] = []
    with rest(hostile_server.url, page=100, version_page=200, requests=requests) as registry:
        snapshot = registry.read()

    versions = sum(s.versions for s in specs)
    assert requests.count("/api/2.0/mlflow/registered-models/search") == math.ceil(
        len(specs) / 100
    ) + (len(specs) % 100 == 0)
    assert requests.count("/api/2.0/mlflow/model-versions/search") == math.ceil(versions / 200) + (
        versions % 200 == 0
    )
    assert len(requests) < 10
    assert sorted(m.name for m in snapshot.models) == sorted(s.name for s in specs)
    by_name = {m.name: m for m in snapshot.models}
    for spec in specs:
        found = by_name[spec.name]
        assert [v.version for v in found.versions] == list(range(1, spec.versions + 1))
        assert found.version_for_alias("champion") == spec.champion
        assert dict(found.tags) == spec.tags
        assert found.description == spec.description
        assert all(v.source.startswith("s3://models/") for v in found.versions)
        assert all(v.tags["git_commit"] for v in found.versions)


@pytest.mark.mlflow
def test_rest_and_sqlite_give_the_same_catalog_bytes(hostile_server, hostile_registry):
    db, _ = hostile_registry
    options = CatalogOptions(mlflow_ui_url="http://mlflow.example")
    with rest(hostile_server.url) as registry:
        over_http = build_document(registry.read(), options)
    direct = SqlRegistry(f"sqlite:///{db}", label="x", timeout_seconds=scaled(60)).read()
    assert build_document(direct, options).yaml == over_http.yaml


@pytest.mark.mlflow
def test_models_read_by_name_are_the_full_reads_on_both_adapters(hostile_server, hostile_registry):
    """Hostile names too: each one a filter can say reads back exactly as the full read has it."""
    db, _ = hostile_registry
    with rest(hostile_server.url) as registry:
        full = registry.read()
        sayable = [
            m for m in full.models if not set(m.name) & set("'\\\"") and m.name.isprintable()
        ]
        sample = sayable[:: max(1, len(sayable) // 40)]
        names = [m.name for m in sample] + ["no such model"]
        assert registry.read_models(names) == tuple(sample)
        quoted = next(m.name for m in full.models if "'" in m.name)
        assert registry.read_models([quoted]) is None
    direct = SqlRegistry(f"sqlite:///{db}", label="x", timeout_seconds=scaled(60))
    assert direct.read_models(names) == tuple(sample)
    direct.close()


def test_a_closed_port_is_unavailable_not_empty():
    with (
        rest(f"http://127.0.0.1:{free_port()}") as registry,
        pytest.raises(SourceUnavailable, match="ConnectError"),
    ):
        registry.read()


def test_a_server_that_never_answers_times_out():
    """A real listening socket that accepts and then says nothing."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with (
            rest(f"http://127.0.0.1:{port}", timeout=0.5) as registry,
            pytest.raises(SourceUnavailable, match="timed out"),
        ):
            registry.read()
