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

Champion details (signature, dataset lineage, metrics) are read for many versions at once and
kept, since a version's run and logged model do not change: the runs in batches of
``attributes.run_id IN (...)`` searches, and each version's ``MLmodel`` file (the only place
MLflow 3 keeps a signature) through the artifact repository that holds the version, a few in
parallel. Over REST that is the tracking server's ``/model-versions/get-artifact`` route, the
one its own UI downloads a version's files with: the server resolves every kind of version
source (``models:/m-<id>`` logged models, ``runs:/<run>/<path>``, plain artifact URIs).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import tempfile
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import httpx
import yaml
from cachetools import LRUCache, TTLCache

from trellis.errors import NotFound, SourceUnavailable
from trellis.model import ChampionDetails, MetricPoint, ModelVersion, RegisteredModel, Snapshot

__all__ = ["RegistrySource", "RestRegistry", "SqlRegistry", "to_domain"]

log = logging.getLogger(__name__)

SOURCE = "mlflow"
_MODELS_PATH = "/api/2.0/mlflow/registered-models/search"
_VERSIONS_PATH = "/api/2.0/mlflow/model-versions/search"
_RUN_PATH = "/api/2.0/mlflow/runs/get"
_HISTORY_PATH = "/api/2.0/mlflow/metrics/get-history"
_EXPERIMENTS_PATH = "/api/2.0/mlflow/experiments/search"
_RUNS_PATH = "/api/2.0/mlflow/runs/search"
#: Not under ``/api``: the tracking server's own route for a version's files (its UI uses it).
_VERSION_ARTIFACT_PATH = "/model-versions/get-artifact"
#: The server's maximum page of metric history.
HISTORY_PAGE = 25_000
#: Experiments per ``experiments/search`` page (the server takes up to 50,000).
EXPERIMENT_PAGE = 10_000
#: Run ids per ``runs/search``: one ``IN`` list, far below any database's bound-parameter limit.
RUN_BATCH = 100
#: Experiment ids per ``runs/search``; a registry with more experiments costs more searches.
_EXPERIMENTS_PER_SEARCH = 10_000
#: Versions whose details are kept; one entry is a few hundred bytes.
DETAILS_KEPT = 100_000
#: ``MLmodel`` files read at once.
ARTIFACT_READS = 8
#: How long an ``MLmodel`` that could not be read is not asked for again.
MLMODEL_RETRY_SECONDS = 3_600.0
_MLMODEL = "MLmodel"
_MISSING = "RESOURCE_DOES_NOT_EXIST"
#: MLflow's own rule for run ids; anything else cannot be quoted into a search filter.
_RUN_ID = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")
#: Run states after which a run's metrics and inputs no longer change.
_FINISHED = frozenset({"FINISHED", "FAILED", "KILLED"})
_IMPORTING = threading.Lock()

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

    def version_details(
        self, versions: Sequence[ModelVersion]
    ) -> dict[tuple[str, int], ChampionDetails]:
        """Signature, dataset lineage and metrics of each version, read in batches and kept.

        Keyed by ``(model name, version)``. What could not be read for one version is None
        in its details with the reason in ``problems``, and is read again next time.
        """
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
        run_batch_size: int = RUN_BATCH,
    ) -> None:
        self._client = client
        self._label = label
        self._model_page_size = model_page_size
        self._version_page_size = version_page_size
        self._history_page_size = history_page_size
        # Each artifact read is bounded by the client's own timeout.
        self._details = _DetailsReader(run_batch_size, deadline=None)

    def read(self) -> Snapshot:
        """Page through models, then versions; any failure fails the whole read."""
        models = list(self._pages(_MODELS_PATH, "registered_models", self._model_page_size))
        versions = list(self._pages(_VERSIONS_PATH, "model_versions", self._version_page_size))
        _log_read(self._label, models, versions)
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

    def version_details(
        self, versions: Sequence[ModelVersion]
    ) -> dict[tuple[str, int], ChampionDetails]:
        """Runs through ``runs/search`` in batches, ``MLmodel`` files from the server."""
        return self._details.read(versions, self._experiment_ids, self._search_runs, self._mlmodel)

    def close(self) -> None:
        """Close the HTTP client's connections and stop the artifact readers."""
        self._details.close()
        self._client.close()

    def _experiment_ids(self) -> list[str]:
        query = {"view_type": "ACTIVE_ONLY"}
        pages = self._pages(_EXPERIMENTS_PATH, "experiments", EXPERIMENT_PAGE, query)
        return [str(experiment["experiment_id"]) for experiment in pages]

    def _search_runs(self, experiment_ids: list[str], run_ids: list[str]) -> list[Json]:
        body = {
            "experiment_ids": experiment_ids,
            "filter": _run_filter(run_ids),
            "run_view_type": "ACTIVE_ONLY",
            # Distinct ids match at most this many runs: one page, no token to follow.
            "max_results": len(run_ids),
        }
        runs = _body(_RUNS_PATH, self._send("POST", _RUNS_PATH, json=body)).get("runs") or []
        return list(runs)

    def _mlmodel(self, version: ModelVersion) -> str:
        params = {"name": version.model_name, "version": str(version.version), "path": _MLMODEL}
        try:
            response = self._send("GET", _VERSION_ARTIFACT_PATH, params=params)
        except SourceUnavailable as exc:
            if isinstance(exc.__cause__, httpx.TimeoutException):
                raise _Unreadable("no answer within the client's timeout") from exc
            raise  # the server itself cannot be reached
        if response.status_code != httpx.codes.OK:
            code = _error_code(response)
            raise _Unreadable(f"HTTP {response.status_code}" + (f" ({code})" if code else ""))
        return response.text

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
        response = self._send("GET", path, params=params)
        if response.status_code == httpx.codes.NOT_FOUND and _error_code(response) == _MISSING:
            raise NotFound(f"{path}: {params.get('run_id') or 'resource'} does not exist")
        return _body(path, response)

    def _send(self, method: str, path: str, **request: Any) -> httpx.Response:
        try:
            return self._client.request(method, path, **request)
        except httpx.TimeoutException as exc:
            raise SourceUnavailable(SOURCE, f"timed out reading {path}") from exc
        except httpx.HTTPError as exc:
            raise SourceUnavailable(SOURCE, f"{type(exc).__name__} reading {path}") from exc


def _body(path: str, response: httpx.Response) -> Json:
    """The JSON object of a successful answer; anything else means the server cannot be read."""
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
    """Reads a registry database directly through MLflow's store (no server needed).

    MLflow creates a missing SQLite file, silently, as an empty registry: a mistyped path, or
    a file that went away, would read as "no models". So a missing file is an error, unless
    ``create_missing`` says this registry is Trellis's own embedded one.
    """

    name = SOURCE

    def __init__(
        self,
        uri: str,
        *,
        label: str,
        timeout_seconds: float,
        model_page_size: int = 1000,
        version_page_size: int = 10_000,
        run_batch_size: int = RUN_BATCH,
        create_missing: bool = False,
    ) -> None:
        self._uri = uri
        self._label = label
        self._database = None if create_missing else _sqlite_file(uri)
        self._timeout = timeout_seconds
        self._model_page_size = model_page_size
        self._version_page_size = version_page_size
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trellis-mlflow-sql")
        # Page requests read history beside a running catalog read, never behind it.
        self._runs = ThreadPoolExecutor(max_workers=4, thread_name_prefix="trellis-mlflow-runs")
        self._details = _DetailsReader(run_batch_size, deadline=timeout_seconds)
        # A server's log is no place for a progress bar per downloaded MLmodel file.
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    def read(self) -> Snapshot:
        """Run the read on a worker thread and give up on it after the timeout."""
        models, versions = self._call(self._pool, self._read)
        _log_read(self._label, models, versions)
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

    def version_details(
        self, versions: Sequence[ModelVersion]
    ) -> dict[tuple[str, int], ChampionDetails]:
        """Runs through the store's search, ``MLmodel`` files through MLflow's artifact repository.

        The repository is the one for the version's download location, as the tracking server
        itself resolves it.
        """
        _import_mlflow()  # before the parallel reads need it
        return self._details.read(versions, self._experiment_ids, self._search_runs, self._mlmodel)

    def close(self) -> None:
        """Let a running read finish in the background; start no new one."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._runs.shutdown(wait=False, cancel_futures=True)
        self._details.close()

    def _experiment_ids(self) -> list[str]:
        def work() -> list[str]:
            search = self._client().search_experiments  # active ones by default
            return [str(e.experiment_id) for e in _paged(search, EXPERIMENT_PAGE)]

        result: list[str] = self._call(self._runs, work)
        return result

    def _search_runs(self, experiment_ids: list[str], run_ids: list[str]) -> list[Json]:
        def work() -> list[Json]:
            runs = self._client().search_runs(
                experiment_ids, filter_string=_run_filter(run_ids), max_results=len(run_ids)
            )
            return [_as_json(run) for run in runs]

        result: list[Json] = self._call(self._runs, work)
        return result

    def _mlmodel(self, version: ModelVersion) -> str:
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        try:
            where = self._location(version.model_name, str(version.version))
            repository: Any = get_artifact_repository(where, tracking_uri=self._uri)
            with tempfile.TemporaryDirectory(prefix="trellis-mlmodel-") as folder:
                path = repository.download_artifacts(_MLMODEL, dst_path=folder)
                return Path(path).read_text(encoding="utf-8")
        except _Unreadable:
            raise
        except Exception as exc:  # MLflow and its storage clients raise many types
            reason = str(exc).splitlines()[0][:200] if str(exc) else ""
            raise _Unreadable(f"{type(exc).__name__}: {reason}".rstrip(": ")) from exc

    def _location(self, name: str, version: str) -> str:
        """Where a version's files are stored, resolved as the tracking server resolves it.

        ``models:/`` and ``runs:/`` sources are resolved here, with this adapter's store:
        MLflow's own repositories for them look logged models up through the process-wide
        tracking URI, whatever URI they are given.
        """
        client = self._client()
        where = str(client.get_model_version_download_uri(name, version))
        scheme, _, rest = where.partition(":/")
        parts = rest.strip("/").split("/")
        if scheme == "models" and len(parts) == 1 and "@" not in parts[0]:
            return str(client.get_logged_model(parts[0]).artifact_location)
        if scheme == "runs" and _RUN_ID.match(parts[0]):
            run = client.get_run(parts[0])
            path = "/".join(parts[1:])
            # MLflow 3 logs a run's model as a logged model named after the path.
            found = client.search_logged_models(
                [run.info.experiment_id], filter_string=f"source_run_id = '{parts[0]}'"
            )
            for model in found:
                if model.name == path:
                    return str(model.artifact_location)
            return f"{str(run.info.artifact_uri).rstrip('/')}/{path}"
        if scheme in ("models", "runs"):
            raise _Unreadable(f"its source {where} names no stored model")
        return where

    def _call(self, pool: ThreadPoolExecutor, work: Callable[[], Any]) -> Any:
        _import_mlflow()
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

        if self._database is not None and not self._database.is_file():
            raise SourceUnavailable(
                SOURCE,
                f"the SQLite registry {self._database} does not exist (MLflow would "
                "create an empty one); check TRELLIS_MLFLOW__TRACKING_URI",
            )
        return MlflowClient(tracking_uri=self._uri, registry_uri=self._uri)

    def _read(self) -> tuple[list[Json], list[Json]]:
        client = self._client()
        models = [
            _as_json(m) for m in _paged(client.search_registered_models, self._model_page_size)
        ]
        versions = [
            _as_json(v) for v in _paged(client.search_model_versions, self._version_page_size)
        ]
        return models, versions


def _sqlite_file(uri: str) -> Path | None:
    """The file an ``sqlite:`` URI names, made absolute; None for in-memory or other URIs."""
    from sqlalchemy.engine import make_url

    url = make_url(uri)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).absolute()


def _import_mlflow() -> None:
    """Import the MLflow modules this adapter uses, one thread at a time.

    MLflow's modules import each other in cycles: two threads importing them for the first
    time at once can deadlock (Python then raises ``_DeadlockError`` in one of them).
    """
    with _IMPORTING:
        import mlflow.store.artifact.artifact_repository_registry
        import mlflow.tracking
        import mlflow.utils.proto_json_utils  # noqa: F401


def _as_json(entity: Any) -> Json:
    """An MLflow entity as the REST API answers with it, so one mapper serves both adapters."""
    from mlflow.utils.proto_json_utils import message_to_json

    result: Json = json.loads(message_to_json(entity.to_proto()))
    return result


def _paged(search: Callable[..., Any], page_size: int) -> Iterator[Any]:
    token = None
    while True:
        page = search(max_results=page_size, page_token=token)
        yield from page
        token = page.token
        if not token:
            return


class _Unreadable(Exception):
    """One version's ``MLmodel`` file could not be read; the text says why."""


_Key = tuple[str, int]
_Identity = tuple[str, str | None]


@dataclass(frozen=True, slots=True)
class _RunFacts:
    datasets: tuple[str, ...]
    metrics: Mapping[str, float]
    finished: bool


class _DetailsReader:
    """Champion details for one adapter: the ones kept, and how the others are read.

    The adapter lends its I/O: the active experiments' ids, a run search for some run ids in
    some experiments (REST-shaped JSON), and one version's ``MLmodel`` text. Details are kept
    only when read whole from a run that has ended (a running run may log more); whatever
    failed is read again, and only that: a signature read while the run could not be is kept
    on its own. An ``MLmodel`` that could not be read is tried again only after
    ``MLMODEL_RETRY_SECONDS`` (an hour), so artifacts Trellis cannot reach (a bucket it has no
    credentials for) do not cost a request per champion on every run. ``deadline`` bounds
    each ``MLmodel`` read for adapters whose reads cannot time out on their own.
    """

    def __init__(self, run_batch: int, *, deadline: float | None) -> None:
        self._run_batch = run_batch
        self._deadline = deadline
        self._kept: LRUCache[_Key, tuple[_Identity, ChampionDetails]] = LRUCache(DETAILS_KEPT)
        self._signed: LRUCache[_Key, tuple[_Identity, bool]] = LRUCache(DETAILS_KEPT)
        self._unreadable: TTLCache[_Key, tuple[_Identity, str]] = TTLCache(
            DETAILS_KEPT, ttl=MLMODEL_RETRY_SECONDS
        )
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(ARTIFACT_READS, thread_name_prefix="trellis-mlmodel")

    def read(
        self,
        versions: Sequence[ModelVersion],
        experiment_ids: Callable[[], list[str]],
        search_runs: Callable[[list[str], list[str]], list[Json]],
        mlmodel: Callable[[ModelVersion], str],
    ) -> dict[_Key, ChampionDetails]:
        """Kept details, and the others read: runs in batches, ``MLmodel`` files in parallel."""
        result, todo, signatures = self._known(versions)
        if not todo:
            return result
        # The MLmodel files are read while the runs are searched.
        futures: dict[_Key, Future[bool | str]] = {
            key: self._pool.submit(_signature, version, mlmodel)
            for key, version in todo.items()
            if key not in signatures
        }
        try:
            runs = self._runs(list(todo.values()), experiment_ids, search_runs)
        except BaseException:
            _cancel(futures.values())
            raise
        read = self._signatures(todo, futures)
        signatures.update(read)
        with self._lock:
            for key, problem in read.items():
                if isinstance(problem, str):
                    self._unreadable[key] = (_identity(todo[key]), problem)
            for key, version in todo.items():
                details, keep = _details(version, runs, signatures[key])
                result[key] = details
                if keep:
                    self._kept[key] = (_identity(version), details)
                    self._signed.pop(key, None)
                elif details.has_signature is not None:
                    self._signed[key] = (_identity(version), details.has_signature)
        return result

    def _known(
        self, versions: Sequence[ModelVersion]
    ) -> tuple[dict[_Key, ChampionDetails], dict[_Key, ModelVersion], dict[_Key, bool | str]]:
        """Details kept whole; the versions to read; signatures (or problems) kept alone."""
        result: dict[_Key, ChampionDetails] = {}
        todo: dict[_Key, ModelVersion] = {}
        signatures: dict[_Key, bool | str] = {}
        with self._lock:
            for version in versions:
                key, identity = (version.model_name, version.version), _identity(version)
                kept = self._kept.get(key)
                if kept is not None and kept[0] == identity:
                    result[key] = kept[1]
                    continue
                todo[key] = version
                for cache in (self._signed, self._unreadable):
                    alone = cache.get(key)
                    if alone is not None and alone[0] == identity:
                        signatures[key] = alone[1]
                        break
        return result, todo, signatures

    def close(self) -> None:
        """Start no new read; running ones end on their own."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _runs(
        self,
        versions: list[ModelVersion],
        experiment_ids: Callable[[], list[str]],
        search_runs: Callable[[list[str], list[str]], list[Json]],
    ) -> dict[str, _RunFacts]:
        wanted = sorted({v.run_id for v in versions if v.run_id and _RUN_ID.match(v.run_id)})
        if not wanted:
            return {}
        found: dict[str, _RunFacts] = {}
        try:
            experiments = experiment_ids()
            for start in range(0, len(wanted), self._run_batch):
                batch = wanted[start : start + self._run_batch]
                for first in range(0, len(experiments), _EXPERIMENTS_PER_SEARCH):
                    within = experiments[first : first + _EXPERIMENTS_PER_SEARCH]
                    for run in search_runs(within, batch):
                        info = run.get("info") or {}
                        found[str(info.get("run_id") or info.get("run_uuid"))] = _run_facts(run)
        except NotFound as exc:  # a search does not name one thing: the registry misbehaved
            raise SourceUnavailable(SOURCE, str(exc)) from exc
        return found

    def _signatures(
        self, versions: Mapping[_Key, ModelVersion], futures: Mapping[_Key, Future[bool | str]]
    ) -> dict[_Key, bool | str]:
        """Each version's ``has_signature``, or the problem that kept it from being read."""
        rounds = math.ceil(len(futures) / ARTIFACT_READS)
        timeout = None if self._deadline is None else self._deadline * rounds
        done, pending = wait(futures.values(), timeout=timeout, return_when=FIRST_EXCEPTION)
        _cancel(pending)
        for future in done:
            if future.exception() is not None:  # the registry itself could not be reached
                _cancel(futures.values())
                future.result()
        return {
            key: (
                future.result()
                if future in done
                else _mlmodel_problem(versions[key], f"no answer within {self._deadline:g} s")
            )
            for key, future in futures.items()
        }


def _cancel(futures: Iterable[Future[Any]]) -> None:
    """Drop the reads that have not started; running ones end on their own."""
    for future in futures:
        future.cancel()


def _identity(version: ModelVersion) -> _Identity:
    """What a kept entry must match: a model deleted and made again reuses version numbers."""
    return version.source, version.run_id


def _run_filter(run_ids: Sequence[str]) -> str:
    """A search filter for these runs; the ids match ``_RUN_ID``, so none holds a quote."""
    return "attributes.run_id IN (" + ", ".join(f"'{run_id}'" for run_id in run_ids) + ")"


def _run_facts(run: Json) -> _RunFacts:
    metrics = MappingProxyType(
        {
            str(metric["key"]): float(metric["value"])
            for metric in (run.get("data") or {}).get("metrics") or ()
            if metric.get("value") is not None
        }
    )
    datasets: list[str] = []
    for item in (run.get("inputs") or {}).get("dataset_inputs") or ():
        name = _dataset_name(item.get("dataset") or {})
        if name and name not in datasets:
            datasets.append(name)
    status = str((run.get("info") or {}).get("status") or "")
    return _RunFacts(tuple(datasets), metrics, status in _FINISHED)


def _dataset_name(dataset: Json) -> str:
    """A logged dataset's name, else the URI its source names, else its source as it is.

    MLflow stores a dataset's source as JSON text, e.g. ``{"uri": "s3://bucket/train.csv"}``.
    """
    name = str(dataset.get("name") or "").strip()
    if name:
        return name
    source = str(dataset.get("source") or "").strip()
    try:
        parsed = json.loads(source)
    except ValueError:
        return source
    if isinstance(parsed, dict):
        for key in ("uri", "url", "path"):
            if parsed.get(key):
                return str(parsed[key])
    return source


def _signature(version: ModelVersion, mlmodel: Callable[[ModelVersion], str]) -> bool | str:
    """Whether the version's logged model has a signature, or why that could not be read."""
    try:
        text = mlmodel(version)
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise _Unreadable("not valid YAML") from exc
        if not isinstance(document, dict):
            raise _Unreadable("not an MLmodel file")
    except _Unreadable as exc:
        return _mlmodel_problem(version, str(exc))
    return bool(document.get("signature"))


def _mlmodel_problem(version: ModelVersion, reason: str) -> str:
    return f"MLmodel of {version.model_name} version {version.version} could not be read: {reason}"


def _details(
    version: ModelVersion, runs: Mapping[str, _RunFacts], signature: bool | str
) -> tuple[ChampionDetails, bool]:
    """The version's details, and whether they are complete and final (worth keeping)."""
    problems: list[str] = []
    if isinstance(signature, str):
        problems.append(signature)
    # A version without a run logged no inputs and no metrics: that is known, not unknown.
    datasets: tuple[str, ...] | None = ()
    metrics: Mapping[str, float] | None = MappingProxyType({})
    finished = True
    if version.run_id:
        facts = runs.get(version.run_id)
        if facts is None:
            datasets = metrics = None
            finished = False
            problems.append(_run_problem(version, version.run_id))
        else:
            datasets, metrics, finished = facts.datasets, facts.metrics, facts.finished
    details = ChampionDetails(
        model_name=version.model_name,
        version=version.version,
        has_signature=signature if isinstance(signature, bool) else None,
        datasets=datasets,
        metrics=metrics,
        problems=tuple(problems),
    )
    return details, finished and not problems


def _run_problem(version: ModelVersion, run_id: str) -> str:
    what = f"{version.model_name} version {version.version}"
    if not _RUN_ID.match(run_id):
        return f"the run id of {what} is not an MLflow run id"
    return f"run {run_id} of {what} is not among the active runs of active experiments"


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


def _log_read(label: str, models: Sequence[object], versions: Sequence[object]) -> None:
    """What each read found, for an operator who runs at debug level."""
    log.debug("registry %s: read %d models, %d versions", label, len(models), len(versions))
