"""The composition root: builds sources, services and the FastAPI app from ``Settings``."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trellis import __version__
from trellis.api import blueprints, catalog, health, observability, scorecards, tech_insights
from trellis.api.deps import Detail, FieldProblem, RequestError
from trellis.catalog import CatalogOptions
from trellis.config import Settings
from trellis.errors import (
    AnswerError,
    Busy,
    ConfigError,
    NotFound,
    NotReady,
    SourceUnavailable,
    TrellisError,
    reported,
)
from trellis.metrics import Metrics
from trellis.model import Snapshot
from trellis.ports import RegistrySource
from trellis.redact import Redactor, install_log_redaction
from trellis.services.catalog_refresh import CatalogService, merge_clusters
from trellis.services.drop_guard import DropPolicy
from trellis.services.observability import Observer, build_prometheus
from trellis.services.scaffolding import Scaffolder
from trellis.services.scoring import CatalogView, Scorer, default_directory
from trellis.sources.blueprints import BlueprintSource, find_checkout
from trellis.sources.fact_store import FactStore
from trellis.sources.http_read import ReadLimits
from trellis.sources.kubernetes import KubernetesSource, kubeconfig_secrets
from trellis.sources.mlflow import RestRegistry, SqlRegistry
from trellis.sources.snapshot_file import SnapshotFile

__all__ = [
    "build_blueprints",
    "build_catalog_service",
    "build_deployments",
    "build_registry",
    "build_scaffolder",
    "build_scorer",
    "catalog_options",
    "create_app",
    "read_once",
    "redactor",
]

log = logging.getLogger("trellis")

MAX_BODY_BYTES = 1_000_000
"""Largest request body taken; answers to a blueprint are a few kilobytes."""

DESCRIPTION = """\
Trellis serves an MLflow model registry to Backstage: catalog entities
(`/catalog/entities.yaml` for a Backstage url location), the problems met building them,
and its own health. `/api/*` routes need `Authorization: Bearer <token>`.
"""


def redactor(settings: Settings) -> Redactor:
    """The scrubber of logs: URL credentials, and every secret the settings point at."""
    secrets = settings.secret_values()
    if settings.kubernetes.contexts:
        secrets += kubeconfig_secrets(settings.kubernetes.kubeconfig)
    return Redactor(secrets)


def build_registry(settings: Settings) -> RegistrySource:
    """The registry adapter for the configured tracking URI."""
    mlflow = settings.mlflow
    uri = settings.tracking_uri
    if uri.startswith("http"):
        headers = {"User-Agent": f"trellis/{__version__}"}
        if mlflow.token:
            headers["Authorization"] = f"Bearer {mlflow.token.get_secret_value()}"
        client = httpx.Client(
            base_url=uri, timeout=mlflow.timeout_seconds, headers=headers, follow_redirects=False
        )
        return RestRegistry(
            client,
            label=settings.registry_label,
            model_page_size=mlflow.model_page_size,
            version_page_size=mlflow.version_page_size,
        )
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    return SqlRegistry(
        uri,
        label=settings.registry_label,
        timeout_seconds=mlflow.timeout_seconds,
        model_page_size=mlflow.model_page_size,
        version_page_size=mlflow.version_page_size,
        # Only the embedded default may start empty; a configured file must exist.
        create_missing=mlflow.tracking_uri is None,
    )


def build_blueprints(settings: Settings) -> BlueprintSource:
    """The blueprint source: configured, or the checkout Trellis runs from."""
    config = settings.blueprints
    checkout = find_checkout()
    source = config.source
    root: Path | None
    if source is None:
        if checkout is None:
            raise ConfigError(
                "TRELLIS_BLUEPRINTS__SOURCE is not set and Trellis does not run from a "
                "checkout with blueprints/; set it to the Trellis git repository"
            )
        source, root = str(checkout), checkout
    else:
        root = Path(source) if Path(source).is_dir() else checkout
    return BlueprintSource(
        source,
        local_root=root,
        repository_url=config.repository_url,
        max_bytes=config.max_render_bytes,
    )


def build_scaffolder(settings: Settings) -> Scaffolder:
    """Checks and renders blueprints at the configured version; surveys generated repos."""
    config = settings.blueprints
    client = None
    if any(location.startswith(("http://", "https://")) for location in config.repositories):
        # Redirects are followed by the bounded reader itself, to the same host only.
        client = httpx.Client(
            follow_redirects=False, headers={"User-Agent": f"trellis/{__version__}"}
        )
    return Scaffolder(
        build_blueprints(settings),
        vcs_ref=config.vcs_ref,
        repositories=config.repositories,
        client=client,
        cache_seconds=settings.catalog.refresh_interval_seconds,
        read_limits=ReadLimits(
            max_bytes=config.max_read_bytes, deadline_seconds=config.read_deadline_seconds
        ),
        render_workers=config.render_workers,
        render_queue=config.render_queue,
        render_timeout_seconds=config.render_timeout_seconds,
    )


def catalog_options(settings: Settings) -> CatalogOptions:
    """The catalog view's options from settings."""
    return CatalogOptions(
        namespace=settings.catalog.namespace,
        fallback_owner=settings.catalog.fallback_owner,
        emit_systems=settings.catalog.emit_systems,
        mlflow_ui_url=settings.mlflow_ui_url,
    )


def build_deployments(settings: Settings) -> KubernetesSource | None:
    """The clusters' model servers, when kubeconfig contexts are configured."""
    config = settings.kubernetes
    if not config.contexts:
        return None
    return KubernetesSource(
        config.contexts,
        kubeconfig=config.kubeconfig,
        timeout_seconds=config.timeout_seconds,
        region_of=config.regions,
    )


def read_once(settings: Settings, registry: RegistrySource) -> Snapshot:
    """One read of the registry and every cluster, for commands that run without a server.

    A cluster that fails has no servers in the result (nothing was kept to fall back on);
    its ``ClusterRead`` in ``snapshot.clusters`` says why.
    """
    snapshot = registry.read()
    clusters = build_deployments(settings)
    if clusters is None:
        return snapshot
    try:
        deployments, reads = merge_clusters(None, clusters.read())
    finally:
        clusters.close()
    return replace(snapshot, deployments=deployments, clusters=reads)


def build_catalog_service(
    settings: Settings, *, registry: RegistrySource | None = None, metrics: Metrics | None = None
) -> CatalogService:
    """The catalog service with its registry, its clusters and its snapshot file."""
    return CatalogService(
        registry=registry or build_registry(settings),
        store=SnapshotFile(settings.state_dir / "snapshot.json"),
        options=catalog_options(settings),
        interval_seconds=settings.catalog.refresh_interval_seconds,
        metrics=metrics or Metrics(),
        deployments=build_deployments(settings),
        drop_policy=DropPolicy(
            max_share=settings.catalog.drop_max_share,
            confirm_seconds=settings.catalog.drop_confirm_seconds,
        ),
    )


def build_scorer(settings: Settings, catalog: CatalogView, scaffolder: Scaffolder | None) -> Scorer:
    """Scorecards over the catalog's models and servers, kept in the fact store."""
    return Scorer(
        catalog=catalog,
        store=FactStore(
            settings.scorecard_database_url, history_days=settings.scorecards.history_days
        ),
        directory=settings.scorecards.directory or default_directory(),
        settings=settings,
        prometheus=build_prometheus(
            settings, timeout_seconds=settings.scorecards.query_timeout_seconds
        ),
        scaffolder=scaffolder,
    )


def create_app(settings: Settings, *, registry: RegistrySource | None = None) -> FastAPI:
    """The API, with the catalog refreshed in the background while it runs."""
    # Before anything logs: no handler configured now ever prints a configured secret.
    install_log_redaction(redactor(settings))
    metrics = Metrics()
    service = build_catalog_service(settings, registry=registry, metrics=metrics)
    # Training history is read through the catalog's registry: one client for both.
    observer = Observer.from_settings(settings, registry=service.registry, metrics=metrics)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if not settings.api_tokens:
            log.warning("TRELLIS_API_TOKENS is empty: every /api/* request will get 401")
        service.start()
        scorer.start()
        try:
            yield
        finally:
            scorer.stop()
            service.stop()
            observer.close()
            if app.state.scaffolder is not None:
                app.state.scaffolder.close()

    app = FastAPI(
        title="Trellis",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.catalog_service = service
    app.state.metrics = metrics
    app.include_router(health.router)
    app.include_router(catalog.files)
    app.include_router(catalog.problems)
    app.include_router(blueprints.router)
    app.state.observer = observer
    app.include_router(observability.router)
    try:
        app.state.scaffolder = build_scaffolder(settings)
        app.state.scaffolder_error = None
        renders = app.state.scaffolder.renders
        metrics.renders_running.set_function(lambda: renders.running)
        metrics.renders_queued.set_function(lambda: renders.waiting)
    except ConfigError as exc:
        log.warning("blueprints are not available: %s", exc)
        app.state.scaffolder, app.state.scaffolder_error = None, str(exc)
    scorer = build_scorer(settings, service, app.state.scaffolder)
    app.state.scorer = scorer
    app.include_router(scorecards.router)
    app.include_router(tech_insights.router)
    _add_error_handlers(app)
    _document_errors(app)
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    """Map the error tree to HTTP statuses in one place."""

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [(_field(error["loc"]), str(error["msg"])) for error in exc.errors()]
        errors = [
            {"field": field, "message": message}
            for field, message in reported(problems, rest="request")
        ]
        return JSONResponse(
            {"detail": "invalid request: " + _summary(errors), "errors": errors}, status_code=400
        )

    @app.exception_handler(TrellisError)
    async def trellis_error(_: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, AnswerError):
            errors = [{"field": field, "message": message} for field, message in exc.reported]
            return JSONResponse({"detail": str(exc), "errors": errors}, status_code=400)
        if isinstance(exc, NotFound):
            return JSONResponse({"detail": str(exc)}, status_code=404)
        if isinstance(exc, NotReady):
            return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "5"})
        if isinstance(exc, SourceUnavailable):
            return JSONResponse({"detail": str(exc)}, status_code=503)
        if isinstance(exc, Busy):
            return JSONResponse(
                {"detail": str(exc)},
                status_code=429,
                headers={"Retry-After": str(exc.retry_after)},
            )
        return JSONResponse({"detail": str(exc)}, status_code=500)


_JSON = "application/json"


def _document_errors(app: FastAPI) -> None:
    """Make the OpenAPI document state the errors the handlers and middleware really give.

    FastAPI documents a ``422`` it never sends here (validation errors are ``400``) and
    knows nothing of ``401`` (token checks) and ``413`` (``BodyLimit``).
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                schemas.pop(name, None)
            for model in (Detail, FieldProblem, RequestError):
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                schema.pop("$defs", None)  # each is a component of its own
                schemas[model.__name__] = schema
            for operations in document.get("paths", {}).values():
                for operation in operations.values():
                    _operation_errors(operation)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _operation_errors(operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})

    def answer(description: str, schema: str) -> dict[str, Any]:
        ref = {"$ref": f"#/components/schemas/{schema}"}
        return {"description": description, "content": {_JSON: {"schema": ref}}}

    default = responses.get("422", {}).get("content", {}).get(_JSON, {}).get("schema", {})
    if default.get("$ref", "").endswith("/HTTPValidationError"):
        del responses["422"]
    if "parameters" in operation or "requestBody" in operation:
        responses.setdefault(
            "400", answer("A request that does not fit the route.", "RequestError")
        )
    if operation.get("security"):
        responses.setdefault("401", answer("No valid bearer token.", "Detail"))
    if "requestBody" in operation:
        responses.setdefault("413", answer("The request body is too large.", "Detail"))


def _field(location: Sequence[object]) -> str:
    """A validation error's location without FastAPI's ``body``/``query``/... prefix."""
    parts = [str(part) for part in location]
    if len(parts) > 1 and parts[0] in {"body", "query", "path", "header"}:
        parts.pop(0)
    return ".".join(parts) or "body"


def _summary(errors: list[dict[str, str]]) -> str:
    return "; ".join(f"{error['field']}: {error['message']}" for error in errors)


class BodyLimit:
    """Pure ASGI middleware refusing request bodies over ``max_bytes`` with 413.

    Checked on the declared length and again while reading, so a chunked body cannot slip by.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request through while its body stays under the limit."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(send)
            return
        received = 0
        over = started = False

        async def bounded() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    over = True
                    raise _BodyTooLarge
            return message

        async def guarded(message: Message) -> None:
            # Past the limit the app's own answer (FastAPI makes it a 400) gives way to the 413.
            nonlocal started
            if over and not started:
                return
            started = True
            await send(message)

        with suppress(_BodyTooLarge):
            await self.app(scope, bounded, guarded)
        if over and not started:
            await self._too_large(send)

    async def _too_large(self, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body over {self.max_bytes} bytes"}, status_code=413
        )
        await response({"type": "http"}, _no_receive, send)


class _BodyTooLarge(Exception):
    pass


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


class RequestMetrics:
    """Pure ASGI middleware timing each request by its route template.

    The template (``/catalog/entities.yaml``), never the raw path or query, is the label,
    so hostile paths cannot blow up the metric's cardinality and tokens never reach it.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request through and observe its duration and status."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = str(getattr(route, "path", "unmatched"))
            self.metrics.request_seconds.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - started
            )
