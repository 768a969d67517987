"""The MLflow model registry, read whole in a handful of paged requests.

Two adapters share one port and one mapper:

* ``RestRegistry`` talks to a tracking server's REST API with an injected ``httpx.Client``
  (every request has the client's timeout);
* ``SqlRegistry`` reads an ``sqlite:`` (or other SQLAlchemy) URI through MLflow's own store,
  for the embedded default; its read runs under a deadline.

Both page through ``registered-models/search`` (1,000 per page, MLflow's maximum) and
``model-versions/search`` (large pages) and never ask per model. Aliases come from the
registered models: version search returns them empty.

Training history is read per run, on demand (one model page needs the champion's and the
candidate's runs): the names of a run's metrics, then each metric's logged values.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from trellis.errors import NotFound, SourceUnavailable
from trellis.model import MetricPoint, ModelVersion, RegisteredModel, Snapshot

__all__ = ["RegistrySource", "RestRegistry", "SqlRegistry", "to_domain"]

log = logging.getLogger(__name__)

SOURCE = "mlflow"
_MODELS_PATH = "/api/2.0/mlflow/registered-models/search"
_VERSIONS_PATH = "/api/2.0/mlflow/model-versions/search"
_RUN_PATH = "/api/2.0/mlflow/runs/get"
_HISTORY_PATH = "/api/2.0/mlflow/metrics/get-history"
#: The server's maximum page of metric history.
HISTORY_PAGE = 25_000
_MISSING = "RESOURCE_DOES_NOT_EXIST"

Json = dict[str, Any]


class RegistrySource(Protocol):
    """Port: one complete, consistent read of a model registry, and runs' training history.

    Every method raises ``SourceUnavailable`` when the registry cannot be read; the run
    methods raise ``NotFound`` for a run that does not exist (deleted, or another store's).
    """

    name: str

    def read(self) -> Snapshot:
        """Read every registered model and version."""
        ...

    def run_metric_keys(self, run_id: str) -> list[str]:
        """The names of the metrics a run logged, sorted."""
        ...

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        """Every value a run logged for one metric, by step then time."""
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
        history_page_size: int = HISTORY_PAGE,
    ) -> None:
        self._client = client
        self._label = label
        self._model_page_size = model_page_size
        self._version_page_size = version_page_size
        self._history_page_size = history_page_size

    def read(self) -> Snapshot:
        """Page through models, then versions; any failure fails the whole read."""
        models = list(self._pages(_MODELS_PATH, "registered_models", self._model_page_size))
        versions = list(self._pages(_VERSIONS_PATH, "model_versions", self._version_page_size))
        return to_domain(models, versions, registry=self._label)

    def run_metric_keys(self, run_id: str) -> list[str]:
        """One ``runs/get``: the run's latest metrics name every metric it logged."""
        run = self._get(_RUN_PATH, {"run_id": run_id}).get("run") or {}
        metrics = (run.get("data") or {}).get("metrics") or ()
        return sorted({str(metric["key"]) for metric in metrics})

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        """``metrics/get-history``, paged at the server's maximum."""
        query = {"run_id": run_id, "metric_key": key}
        return _points(self._pages(_HISTORY_PATH, "metrics", self._history_page_size, query))

    def close(self) -> None:
        """Close the HTTP client's connections."""
        self._client.close()

    def _pages(
        self, path: str, key: str, page_size: int, query: Mapping[str, str] | None = None
    ) -> Iterator[Json]:
        token: str | None = None
        while True:
            params: dict[str, str | int] = {**(query or {}), "max_results": page_size}
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
        if response.status_code == httpx.codes.NOT_FOUND and _error_code(response) == _MISSING:
            raise NotFound(f"{path}: {params.get('run_id') or 'resource'} does not exist")
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
        # Page requests read history beside a running catalog read, never behind it.
        self._runs = ThreadPoolExecutor(max_workers=4, thread_name_prefix="trellis-mlflow-runs")

    def read(self) -> Snapshot:
        """Run the read on a worker thread and give up on it after the timeout."""
        models, versions = self._call(self._pool, self._read)
        return to_domain(models, versions, registry=self._label)

    def run_metric_keys(self, run_id: str) -> list[str]:
        """The run's latest metrics, through MLflow's store."""
        run = self._call(self._runs, lambda: self._client().get_run(run_id))
        return sorted(str(key) for key in run.data.metrics)

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        """The store's whole history of one metric (it pages internally)."""
        history = self._call(self._runs, lambda: self._client().get_metric_history(run_id, key))
        return _points(
            {"step": m.step, "timestamp": m.timestamp, "value": m.value} for m in history
        )

    def close(self) -> None:
        """Let a running read finish in the background; start no new one."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._runs.shutdown(wait=False, cancel_futures=True)

    def _call(self, pool: ThreadPoolExecutor, work: Callable[[], Any]) -> Any:
        future = pool.submit(work)
        try:
            return future.result(timeout=self._timeout)
        except FutureTimeout as exc:
            raise SourceUnavailable(SOURCE, f"no answer within {self._timeout:g} s") from exc
        except (SourceUnavailable, NotFound):
            raise
        except Exception as exc:  # MLflow raises many types; all mean "could not read"
            if getattr(exc, "error_code", None) == _MISSING:
                raise NotFound(str(exc)) from exc
            raise SourceUnavailable(SOURCE, f"{type(exc).__name__}: {exc}") from exc

    def _client(self) -> Any:
        from mlflow.tracking import MlflowClient  # heavy import, only for this adapter

        return MlflowClient(tracking_uri=self._uri, registry_uri=self._uri)

    def _read(self) -> tuple[list[Json], list[Json]]:
        from mlflow.utils.proto_json_utils import message_to_json

        client = self._client()

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


def _points(raw: Iterable[Json]) -> list[MetricPoint]:
    points = [
        MetricPoint(
            step=int(item.get("step") or 0),
            timestamp=_time(item.get("timestamp")),
            value=float(item["value"]),
        )
        for item in raw
    ]
    points.sort(key=lambda p: (p.step, p.timestamp))
    return points


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("error_code") if isinstance(body, dict) else None
    return str(code) if code else None


def _tags(raw: Json) -> dict[str, str]:
    return {str(t["key"]): str(t.get("value") or "") for t in raw.get("tags") or ()}


def _time(millis: object) -> datetime:
    return datetime.fromtimestamp(int(str(millis or 0)) / 1000, tz=UTC)
