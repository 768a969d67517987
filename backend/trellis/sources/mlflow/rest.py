"""``RestRegistry``: an MLflow tracking server read over its REST API.

Every request goes through the injected ``httpx.Client`` and carries its timeout. Models and
versions are paged through ``registered-models/search`` (1,000 per page, MLflow's maximum)
and ``model-versions/search`` (large pages), never asked for per model; aliases come from the
registered models, since version search returns them empty. A version's ``MLmodel`` file is
read through the server's ``/model-versions/get-artifact`` route, the one its own UI
downloads a version's files with: the server resolves every kind of version source
(``models:/m-<id>`` logged models, ``runs:/<run>/<path>``, plain artifact URIs). Every
failure of the server is one ``SourceUnavailable`` naming the route, never the URL's
credentials.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

import httpx

from trellis.errors import NotFound, SourceUnavailable
from trellis.model import ChampionDetails, MetricPoint, ModelVersion, RegisteredModel, Snapshot
from trellis.sources.mlflow.details import (
    EXPERIMENT_PAGE,
    MLMODEL,
    RUN_BATCH,
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

__all__ = ["HISTORY_PAGE", "RestRegistry"]

_MODELS_PATH = "/api/2.0/mlflow/registered-models/search"
_MODEL_PATH = "/api/2.0/mlflow/registered-models/get"
_VERSIONS_PATH = "/api/2.0/mlflow/model-versions/search"
_RUN_PATH = "/api/2.0/mlflow/runs/get"
_HISTORY_PATH = "/api/2.0/mlflow/metrics/get-history"
_EXPERIMENTS_PATH = "/api/2.0/mlflow/experiments/search"
_RUNS_PATH = "/api/2.0/mlflow/runs/search"
#: Not under ``/api``: the tracking server's own route for a version's files (its UI uses it).
_VERSION_ARTIFACT_PATH = "/model-versions/get-artifact"
#: The server's maximum page of metric history.
HISTORY_PAGE = 25_000


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
        self._details = DetailsReader(run_batch_size, deadline=None)

    def read(self) -> Snapshot:
        """Page through models, then versions; any failure fails the whole read."""
        models = list(self._pages(_MODELS_PATH, "registered_models", self._model_page_size))
        versions = list(self._pages(_VERSIONS_PATH, "model_versions", self._version_page_size))
        log_read(self._label, models, versions)
        return to_domain(models, versions, registry=self._label)

    def read_models(self, names: Collection[str]) -> tuple[RegisteredModel, ...] | None:
        """Per name, ``registered-models/get`` and a search of its versions.

        None when a name cannot be put in a version filter; a model that does not exist is
        left out.
        """
        filters = {name: version_filter(name) for name in sorted(set(names))}
        if not all(filters.values()):
            return None
        models: list[Json] = []
        versions: list[Json] = []
        for name, where in filters.items():
            try:
                model = self._get(_MODEL_PATH, {"name": name}).get("registered_model")
            except NotFound:
                continue
            if not isinstance(model, dict) or model.get("name") != name:
                raise SourceUnavailable(SOURCE, f"{_MODEL_PATH} answered with an unexpected shape")
            query = {"filter": str(where)}
            found = self._pages(_VERSIONS_PATH, "model_versions", self._version_page_size, query)
            models.append(model)
            versions += (version for version in found if version.get("name") == name)
        log_read(self._label, models, versions)
        return to_domain(models, versions, registry=self._label).models

    def run_metric_keys(self, run_id: str) -> list[str]:
        """One ``runs/get``: the run's latest metrics name every metric it logged."""
        run = self._get(_RUN_PATH, {"run_id": run_id}).get("run") or {}
        metrics = (run.get("data") or {}).get("metrics") or ()
        return sorted({str(metric["key"]) for metric in metrics})

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        """``metrics/get-history``, paged at the server's maximum."""
        query = {"run_id": run_id, "metric_key": key}
        return points(self._pages(_HISTORY_PATH, "metrics", self._history_page_size, query))

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
            "filter": run_filter(run_ids),
            "run_view_type": "ACTIVE_ONLY",
            # Distinct ids match at most this many runs: one page, no token to follow.
            "max_results": len(run_ids),
        }
        runs = _body(_RUNS_PATH, self._send("POST", _RUNS_PATH, json=body)).get("runs") or []
        return list(runs)

    def _mlmodel(self, version: ModelVersion) -> str:
        params = {"name": version.model_name, "version": str(version.version), "path": MLMODEL}
        try:
            response = self._send("GET", _VERSION_ARTIFACT_PATH, params=params)
        except SourceUnavailable as exc:
            if isinstance(exc.__cause__, httpx.TimeoutException):
                raise Unreadable("no answer within the client's timeout", storage=True) from exc
            raise  # the server itself cannot be reached
        if response.status_code != httpx.codes.OK:
            code = _error_code(response)
            raise Unreadable(
                f"HTTP {response.status_code}" + (f" ({code})" if code else ""),
                storage=response.status_code >= httpx.codes.INTERNAL_SERVER_ERROR,
            )
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
        if response.status_code == httpx.codes.NOT_FOUND and _error_code(response) == MISSING:
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


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("error_code") if isinstance(body, dict) else None
    return str(code) if code else None
