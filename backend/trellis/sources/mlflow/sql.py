"""``SqlRegistry``: a registry database read directly through MLflow's own store.

For the embedded default (an ``sqlite:`` URI, or any SQLAlchemy one): no server is needed.
MLflow's store cannot time out on its own, so every read runs on a worker thread under a
deadline. Entities are converted to the REST API's JSON shape, so the one mapper
(``trellis.sources.mlflow.mapping``) serves both adapters.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from functools import partial
from pathlib import Path
from typing import Any

from trellis.errors import NotFound, SourceUnavailable
from trellis.model import ChampionDetails, MetricPoint, ModelVersion, RegisteredModel, Snapshot
from trellis.sources.mlflow.details import (
    EXPERIMENT_PAGE,
    MLMODEL,
    RUN_BATCH,
    RUN_ID,
    DetailsReader,
    Unreadable,
    run_filter,
)
from trellis.sources.mlflow.mapping import (
    MISSING,
    SOURCE,
    Json,
    log_read,
    points,
    to_domain,
    version_filter,
)

__all__ = ["SqlRegistry"]

_IMPORTING = threading.Lock()


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
        self._details = DetailsReader(run_batch_size, deadline=timeout_seconds)
        # A server's log is no place for a progress bar per downloaded MLmodel file.
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    def read(self) -> Snapshot:
        """Run the read on a worker thread and give up on it after the timeout."""
        models, versions = self._call(self._pool, self._read)
        log_read(self._label, models, versions)
        return to_domain(models, versions, registry=self._label)

    def read_models(self, names: Collection[str]) -> tuple[RegisteredModel, ...] | None:
        """The named models through the store, as ``RestRegistry.read_models`` reads them."""
        filters = {name: version_filter(name) for name in sorted(set(names))}
        if not all(filters.values()):
            return None

        def work() -> tuple[list[Json], list[Json]]:
            client = self._client()
            models: list[Json] = []
            versions: list[Json] = []
            for name, where in filters.items():
                try:
                    model = client.get_registered_model(name)
                except Exception as exc:  # MLflow raises many types; a missing one is left out
                    if getattr(exc, "error_code", None) == MISSING:
                        continue
                    raise
                models.append(_as_json(model))
                search = partial(client.search_model_versions, filter_string=where)
                versions += [_as_json(v) for v in _paged(search, self._version_page_size)]
            return models, versions

        models, versions = self._call(self._pool, work)
        log_read(self._label, models, versions)
        return to_domain(models, versions, registry=self._label).models

    def run_metric_keys(self, run_id: str) -> list[str]:
        """The run's latest metrics, through MLflow's store."""
        run = self._call(self._runs, lambda: self._client().get_run(run_id))
        return sorted(str(key) for key in run.data.metrics)

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        """The store's whole history of one metric (it pages internally)."""
        history = self._call(self._runs, lambda: self._client().get_metric_history(run_id, key))
        return points({"step": m.step, "timestamp": m.timestamp, "value": m.value} for m in history)

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
                experiment_ids, filter_string=run_filter(run_ids), max_results=len(run_ids)
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
                path = repository.download_artifacts(MLMODEL, dst_path=folder)
                return Path(path).read_text(encoding="utf-8")
        except Unreadable:
            raise
        except Exception as exc:  # MLflow and its storage clients raise many types
            reason = str(exc).splitlines()[0][:200] if str(exc) else ""
            # No such file is the version's own problem; anything else is the storage's.
            code = getattr(exc, "error_code", None)
            missing = isinstance(exc, FileNotFoundError) or code == MISSING
            raise Unreadable(
                f"{type(exc).__name__}: {reason}".rstrip(": "), storage=not missing
            ) from exc

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
        if scheme == "runs" and RUN_ID.match(parts[0]):
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
            raise Unreadable(f"its source {where} names no stored model")
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
            if getattr(exc, "error_code", None) == MISSING:
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
