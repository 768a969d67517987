"""The composition root: builds sources, services and the FastAPI app from ``Settings``."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trellis import __version__
from trellis.api import catalog, health
from trellis.catalog import CatalogOptions
from trellis.config import Settings
from trellis.errors import ConfigError, NotReady, SourceUnavailable, TrellisError
from trellis.metrics import Metrics
from trellis.service import CatalogService
from trellis.sources.blueprints import BlueprintSource, find_checkout
from trellis.sources.mlflow import RegistrySource, RestRegistry, SqlRegistry
from trellis.sources.snapshot_file import SnapshotFile

__all__ = [
    "build_blueprints",
    "build_catalog_service",
    "build_registry",
    "catalog_options",
    "create_app",
]

log = logging.getLogger("trellis")

DESCRIPTION = """\
Trellis serves an MLflow model registry to Backstage: catalog entities
(`/catalog/entities.yaml` for a Backstage url location), the problems met building them,
and its own health. `/api/*` routes need `Authorization: Bearer <token>`.
"""


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
    )


def build_blueprints(settings: Settings) -> BlueprintSource:
    """The blueprint source: configured, or the checkout Trellis runs from."""
    checkout = find_checkout()
    source = settings.blueprints.source
    if source is None:
        if checkout is None:
            raise ConfigError(
                "TRELLIS_BLUEPRINTS__SOURCE is not set and Trellis does not run from a "
                "checkout with blueprints/; set it to the Trellis git repository"
            )
        return BlueprintSource(str(checkout), local_root=checkout)
    local = Path(source)
    if local.is_dir():
        return BlueprintSource(source, local_root=local)
    return BlueprintSource(source, local_root=checkout)


def catalog_options(settings: Settings) -> CatalogOptions:
    """The catalog view's options from settings."""
    return CatalogOptions(
        namespace=settings.catalog.namespace,
        fallback_owner=settings.catalog.fallback_owner,
        emit_systems=settings.catalog.emit_systems,
        mlflow_ui_url=settings.mlflow_ui_url,
    )


def build_catalog_service(
    settings: Settings, *, registry: RegistrySource | None = None, metrics: Metrics | None = None
) -> CatalogService:
    """The catalog service with its registry and its snapshot file."""
    return CatalogService(
        registry=registry or build_registry(settings),
        store=SnapshotFile(settings.state_dir / "snapshot.json"),
        options=catalog_options(settings),
        interval_seconds=settings.catalog.refresh_interval_seconds,
        metrics=metrics or Metrics(),
    )


def create_app(settings: Settings, *, registry: RegistrySource | None = None) -> FastAPI:
    """The API, with the catalog refreshed in the background while it runs."""
    metrics = Metrics()
    service = build_catalog_service(settings, registry=registry, metrics=metrics)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if not settings.api_tokens:
            log.warning("TRELLIS_API_TOKENS is empty: every /api/* request will get 401")
        service.start()
        try:
            yield
        finally:
            service.stop()

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
    _add_error_handlers(app)
    app.add_middleware(RequestMetrics, metrics=metrics)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    """Map the error tree to HTTP statuses in one place."""

    @app.exception_handler(TrellisError)
    async def trellis_error(_: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, NotReady):
            return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "5"})
        if isinstance(exc, SourceUnavailable):
            return JSONResponse({"detail": str(exc)}, status_code=503)
        return JSONResponse({"detail": str(exc)}, status_code=500)


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
