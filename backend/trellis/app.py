"""The app factory: the FastAPI app, its routes and its background work, from ``Settings``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from trellis import __version__
from trellis.api import (
    blueprints,
    catalog,
    health,
    observability,
    scorecards,
    tech_insights,
    webhooks,
)
from trellis.api.deps import AppState, install_state
from trellis.api.errors import add_error_handlers, document_errors
from trellis.api.middleware import BodyLimit, RequestMetrics
from trellis.config import Settings
from trellis.errors import ConfigError
from trellis.metrics import Metrics
from trellis.ports import RegistrySource
from trellis.redact import install_log_redaction
from trellis.services.scaffolding import Scaffolder
from trellis.wiring import (
    build_catalog_service,
    build_observer,
    build_scaffolder,
    build_scorer,
    build_webhooks,
    redactor,
)

__all__ = ["MAX_BODY_BYTES", "create_app"]

log = logging.getLogger("trellis")

MAX_BODY_BYTES = 1_000_000
"""Largest request body taken; answers to a blueprint are a few kilobytes."""

DESCRIPTION = """\
Trellis serves an MLflow model registry to Backstage: catalog entities
(`/catalog/entities.yaml` for a Backstage url location), the problems met building them,
and its own health. `/api/*` routes need `Authorization: Bearer <token>`.
"""


def create_app(settings: Settings, *, registry: RegistrySource | None = None) -> FastAPI:
    """The API, with the catalog refreshed in the background while it runs."""
    # Before anything logs: no handler configured now ever prints a configured secret.
    install_log_redaction(redactor(settings))
    metrics = Metrics()
    service = build_catalog_service(settings, registry=registry, metrics=metrics)
    # Training history is read through the catalog's registry: one client for both.
    observer = build_observer(settings, registry=service.registry, metrics=metrics)
    scaffolder, scaffolder_error = _scaffolder(settings, metrics)
    scorer = build_scorer(settings, service, scaffolder, recorded=observer.recorded)
    metrics.scorer_leader.set_function(lambda: 1 if scorer.leading else 0)

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
            if scaffolder is not None:
                scaffolder.close()

    app = FastAPI(
        title="Trellis",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    install_state(
        app,
        AppState(
            catalog=service,
            observer=observer,
            scores=scorer.queries,
            scaffolder=scaffolder,
            scaffolder_error=scaffolder_error,
            metrics=metrics,
            api_tokens=tuple(token.get_secret_value() for token in settings.api_tokens),
            catalog_requires_token=settings.catalog.requires_token,
            webhooks=build_webhooks(settings, service, metrics),
        ),
    )
    app.include_router(health.router)
    app.include_router(catalog.files)
    app.include_router(catalog.problems)
    app.include_router(blueprints.router)
    app.include_router(observability.router)
    app.include_router(scorecards.router)
    app.include_router(tech_insights.router)
    app.include_router(webhooks.router)
    add_error_handlers(app)
    document_errors(app)
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    return app


def _scaffolder(settings: Settings, metrics: Metrics) -> tuple[Scaffolder | None, str | None]:
    """The scaffolder with its render gauges, or None and why blueprints are off."""
    try:
        scaffolder = build_scaffolder(settings)
    except ConfigError as exc:
        log.warning("blueprints are not available: %s", exc)
        return None, str(exc)
    renders = scaffolder.renders
    metrics.renders_running.set_function(lambda: renders.running)
    metrics.renders_queued.set_function(lambda: renders.waiting)
    return scaffolder, None
