"""The MLflow model registry, read whole in a handful of paged requests.

Two adapters share one port and one mapper:

* ``RestRegistry`` talks to a tracking server's REST API with an injected ``httpx.Client``
  (every request has the client's timeout);
* ``SqlRegistry`` reads an ``sqlite:`` (or other SQLAlchemy) URI through MLflow's own store,
  for the embedded default; its read runs under a deadline.

Both page through ``registered-models/search`` (1,000 per page, MLflow's maximum) and
``model-versions/search`` (large pages) and never ask per model. Aliases come from the
registered models: version search returns them empty.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from trellis.errors import SourceUnavailable
from trellis.model import ModelVersion, RegisteredModel, Snapshot

__all__ = ["RegistrySource", "RestRegistry", "SqlRegistry", "to_domain"]

log = logging.getLogger(__name__)

SOURCE = "mlflow"
_MODELS_PATH = "/api/2.0/mlflow/registered-models/search"
_VERSIONS_PATH = "/api/2.0/mlflow/model-versions/search"

Json = dict[str, Any]


class RegistrySource(Protocol):
    """Port: one complete, consistent read of a model registry."""

    name: str

    def read(self) -> Snapshot:
        """Read every registered model and version, or raise ``SourceUnavailable``."""
        ...

    def close(self) -> None:
        """Release connections and threads."""
        ...


class RestRegistry:
    """Reads an MLflow tracking server over its REST API."""

    name = SOURCE

    def __init__(
        self,
        client: httpx.Client,
        *,
        label: str,
        model_page_size: int = 1000,
        version_page_size: int = 10_000,
    ) -> None:
        self._client = client
        self._label = label
        self._model_page_size = model_page_size
        self._version_page_size = version_page_size

    def read(self) -> Snapshot:
        """Page through models, then versions; any failure fails the whole read."""
        models = list(self._pages(_MODELS_PATH, "registered_models", self._model_page_size))
        versions = list(self._pages(_VERSIONS_PATH, "model_versions", self._version_page_size))
        return to_domain(models, versions, registry=self._label)

    def close(self) -> None:
        """Close the HTTP client's connections."""
        self._client.close()

    def _pages(self, path: str, key: str, page_size: int) -> Iterator[Json]:
        token: str | None = None
        while True:
            params: dict[str, str | int] = {"max_results": page_size}
            if token:
                params["page_token"] = token
            page = self._get(path, params)
            yield from page.get(key, ())
            token = page.get("next_page_token")
            if not token:
                return

    def _get(self, path: str, params: Mapping[str, str | int]) -> Json:
        try:
            response = self._client.get(path, params=params)
        except httpx.TimeoutException as exc:
            raise SourceUnavailable(SOURCE, f"timed out reading {path}") from exc
        except httpx.HTTPError as exc:
            raise SourceUnavailable(SOURCE, f"{type(exc).__name__} reading {path}") from exc
        if response.status_code != httpx.codes.OK:
            raise SourceUnavailable(SOURCE, f"HTTP {response.status_code} from {path}")
        try:
            body = response.json()
        except ValueError as exc:
            raise SourceUnavailable(SOURCE, f"{path} answered with something not JSON") from exc
        if not isinstance(body, dict):
            raise SourceUnavailable(SOURCE, f"{path} answered with an unexpected shape")
        return body


class SqlRegistry:
    """Reads a registry database directly through MLflow's store (no server needed)."""

    name = SOURCE

    def __init__(
        self,
        uri: str,
        *,
        label: str,
        timeout_seconds: float,
        model_page_size: int = 1000,
        version_page_size: int = 10_000,
    ) -> None:
        self._uri = uri
        self._label = label
        self._timeout = timeout_seconds
        self._model_page_size = model_page_size
        self._version_page_size = version_page_size
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trellis-mlflow-sql")

    def read(self) -> Snapshot:
        """Run the read on a worker thread and give up on it after the timeout."""
        future = self._pool.submit(self._read)
        try:
            models, versions = future.result(timeout=self._timeout)
        except FutureTimeout as exc:
            raise SourceUnavailable(SOURCE, f"no answer within {self._timeout:g} s") from exc
        except SourceUnavailable:
            raise
        except Exception as exc:  # MLflow raises many types; all mean "could not read"
            raise SourceUnavailable(SOURCE, f"{type(exc).__name__}: {exc}") from exc
        return to_domain(models, versions, registry=self._label)

    def close(self) -> None:
        """Let a running read finish in the background; start no new one."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _read(self) -> tuple[list[Json], list[Json]]:
        from mlflow.tracking import MlflowClient  # heavy import, only for this adapter
        from mlflow.utils.proto_json_utils import message_to_json

        client = MlflowClient(tracking_uri=self._uri, registry_uri=self._uri)

        def as_json(entity: Any) -> Json:
            # The same JSON the REST API answers with, so one mapper serves both adapters.
            result: Json = json.loads(message_to_json(entity.to_proto()))
            return result

        models = [
            as_json(m) for m in _paged(client.search_registered_models, self._model_page_size)
        ]
        versions = [
            as_json(v) for v in _paged(client.search_model_versions, self._version_page_size)
        ]
        return models, versions


def _paged(search: Callable[..., Any], page_size: int) -> Iterator[Any]:
    token = None
    while True:
        page = search(max_results=page_size, page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def to_domain(models: list[Json], versions: list[Json], *, registry: str) -> Snapshot:
    """Map registry JSON (REST shape) to a ``Snapshot``; versions of unknown models are dropped.

    A model created between the two paged reads has versions but no model entry yet; it
    appears whole on the next read instead of half now.
    """
    by_model: dict[str, list[ModelVersion]] = defaultdict(list)
    for raw in versions:
        version = _version(raw)
        by_model[version.model_name].append(version)
    result = []
    for raw in models:
        name = str(raw["name"])
        own = sorted(by_model.get(name, ()), key=lambda v: v.version)
        result.append(
            RegisteredModel(
                name=name,
                description=str(raw.get("description") or ""),
                tags=_tags(raw),
                aliases={str(a["alias"]): int(a["version"]) for a in raw.get("aliases") or ()},
                created_at=_time(raw.get("creation_timestamp")),
                updated_at=_time(raw.get("last_updated_timestamp")),
                versions=tuple(own),
            )
        )
    result.sort(key=lambda m: m.name)
    return Snapshot(models=tuple(result), taken_at=datetime.now(UTC), registry=registry)


def _version(raw: Json) -> ModelVersion:
    return ModelVersion(
        model_name=str(raw["name"]),
        version=int(raw["version"]),
        status=str(raw.get("status") or "READY"),
        source=str(raw.get("source") or ""),
        run_id=str(raw["run_id"]) if raw.get("run_id") else None,
        description=str(raw.get("description") or ""),
        tags=_tags(raw),
        created_at=_time(raw.get("creation_timestamp")),
        updated_at=_time(raw.get("last_updated_timestamp")),
    )


def _tags(raw: Json) -> dict[str, str]:
    return {str(t["key"]): str(t.get("value") or "") for t in raw.get("tags") or ()}


def _time(millis: object) -> datetime:
    return datetime.fromtimestamp(int(str(millis or 0)) / 1000, tz=UTC)
