"""What the CLI builds from ``Settings``: logging, the API server and one-off reads.

The commands in ``cli.app`` parse arguments and present answers; what they need from the
configuration is built here, so they never read ``Settings`` themselves.

Each function imports what it builds when it runs: ``trellis --help`` and a command that
needs no cluster, store or renderer do not load their clients.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trellis.catalog import CatalogDocument
    from trellis.config import Settings
    from trellis.model import Snapshot
    from trellis.services import cookiecutter_updates
    from trellis.services.scaffolding import Scaffolder
    from trellis.services.updates import UpdateResult, UpdateStatus
    from trellis.sources.cookiecutter import CookiecutterSource

__all__ = [
    "Scored",
    "Warn",
    "adopt",
    "check_update",
    "load_settings",
    "observe_once",
    "openapi_document",
    "read_catalog",
    "run_demo",
    "scaffolder",
    "score_once",
    "serve",
    "update",
]

Warn = Callable[[str], None]
"""Where a command's warnings go (one line each, on stderr)."""


def load_settings() -> Settings:
    """The settings from ``TRELLIS_*`` variables (``ValidationError`` when they cannot work)."""
    from trellis.config import Settings

    return Settings()


def _logging(level: str, settings: Settings) -> None:
    """Log to stderr, every line scrubbed of the configured secrets and URL credentials."""
    import logging

    from trellis.redact import install_log_redaction
    from trellis.wiring import redactor

    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    install_log_redaction(redactor(settings))


def serve(host: str | None = None, port: int | None = None) -> None:
    """Run the API in the foreground, on the configured address unless another is given."""
    settings = load_settings()
    _serve(settings, host or settings.host, port if port is not None else settings.port)


def _serve(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from trellis.app import create_app

    _logging(settings.log_level, settings)
    # The access log would record query strings, where a catalog token may ride: off.
    # No logging config of uvicorn's own: its loggers go to the root's scrubbing handlers.
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        workers=1,
        access_log=False,
        log_level=settings.log_level,
        log_config=None,
    )


def run_demo(*, retrain: bool, serve_after: bool) -> None:
    """Train the demo models into the embedded registry, say what next, and serve."""
    from rich.console import Console

    from trellis.demo import prepare_demo, print_next_steps

    console = Console()
    settings = prepare_demo(load_settings(), console=console, retrain=retrain)
    print_next_steps(settings, console=console)
    if serve_after:
        _serve(settings, settings.host, settings.port)


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI document, as an app without tokens states it."""
    from trellis.app import create_app
    from trellis.config import Settings

    return create_app(Settings(api_tokens=[])).openapi()


def scaffolder(settings: Settings) -> Scaffolder:
    """The scaffolder at the configured blueprint source and version."""
    from trellis.wiring import build_scaffolder

    return build_scaffolder(settings)


def _warn_failed_clusters(snapshot: Snapshot, warn: Warn) -> None:
    for read in snapshot.clusters.values():
        if not read.ok:
            warn(f"warning: cluster {read.cluster}: {read.error}")


def read_catalog(warn: Warn) -> CatalogDocument:
    """One read of the registry and the clusters, as the catalog document."""
    from trellis.services.catalog_refresh import build_document
    from trellis.wiring import build_registry, catalog_options, read_once

    settings = load_settings()
    _logging("warning", settings)
    snapshot = read_once(settings, build_registry(settings))
    _warn_failed_clusters(snapshot, warn)
    return build_document(snapshot, catalog_options(settings))


def observe_once(entity_ref: str, range_: str, step: str | None, warn: Warn) -> dict[str, Any]:
    """One entity's observability page, from one read of every source."""
    from trellis.catalog import build_catalog
    from trellis.services.observability import find_target
    from trellis.wiring import build_observer, build_registry, catalog_options, read_once

    settings = load_settings()
    _logging("warning", settings)
    registry = build_registry(settings)
    observer = build_observer(settings, registry=registry)
    try:
        window = observer.window(range_, step, None)
        snapshot = read_once(settings, registry)
        _warn_failed_clusters(snapshot, warn)
        catalog = build_catalog(snapshot, catalog_options(settings))
        return observer.page(entity_ref, find_target(entity_ref, catalog.targets), window)
    finally:
        observer.close()
        registry.close()


@dataclass(frozen=True)
class Scored:
    """A one-off scorecard run: the answer asked for and the sources that could not be read."""

    ref: str | None
    """The entity answered for (normalised), or None for the fleet."""
    report: dict[str, Any]
    unavailable: dict[str, str]


def score_once(entity_ref: str | None, warn: Warn) -> Scored:
    """Score every entity once and answer for ``entity_ref`` (or the fleet); nothing is kept."""
    from pydantic import SecretStr

    from trellis.entity_refs import parse_ref, stringify_ref
    from trellis.errors import ConfigError
    from trellis.services.catalog_refresh import build_document
    from trellis.services.scoring.pipeline import OneRead
    from trellis.wiring import (
        build_registry,
        build_scaffolder,
        build_scorer,
        catalog_options,
        read_once,
    )

    settings = load_settings()
    _logging("warning", settings)
    ref = None
    if entity_ref is not None:
        try:
            ref = stringify_ref(*parse_ref(entity_ref))
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
    registry = build_registry(settings)
    try:
        blueprints: Scaffolder | None = build_scaffolder(settings)
    except ConfigError as exc:
        warn(f"warning: blueprint facts are unknown: {exc}")
        blueprints = None
    # Results go to a scratch store: a one-off run must not overwrite the server's.
    with TemporaryDirectory(prefix="trellis-score-") as scratch:
        scratch_settings = settings.model_copy(
            update={
                "scorecards": settings.scorecards.model_copy(
                    update={"database_url": SecretStr(f"sqlite:///{scratch}/scorecards.db")}
                )
            }
        )
        try:
            snapshot = read_once(settings, registry)
            _warn_failed_clusters(snapshot, warn)
            document = build_document(snapshot, catalog_options(settings))
            scorer = build_scorer(
                scratch_settings, OneRead(registry, document, snapshot), blueprints
            )
            try:
                run = scorer.run_once()
                report = scorer.queries.entity_report(ref) if ref else scorer.queries.fleet_report()
            finally:
                scorer.stop()
        finally:
            registry.close()
            if blueprints is not None:
                blueprints.close()
    return Scored(ref, report, dict(run.unavailable))


def check_update(location: str) -> UpdateStatus:
    """Where a generated repository stands, against the source it records.

    A Copier repository needs no settings; a cookiecutter one (``.cruft.json``) is rendered
    with the registered template's trust and entry point when its template is registered.
    """
    from trellis.errors import ConfigError
    from trellis.services import cookiecutter_updates
    from trellis.services.updates import check_update
    from trellis.sources.blueprints import BlueprintSource
    from trellis.sources.cruft_checkouts import CruftCheckouts
    from trellis.sources.repositories import Repositories

    if _records_cruft(location):
        return cookiecutter_updates.check_update(
            location, checkouts=CruftCheckouts(), templates=_template_finder()
        )
    try:
        return check_update(location, repositories=Repositories(), source_factory=BlueprintSource)
    except ConfigError:
        if not location.startswith(("http://", "https://")):
            raise
        try:  # a repository on a Git host that cruft records
            return cookiecutter_updates.check_update(
                location, checkouts=CruftCheckouts(), templates=_template_finder()
            )
        except ConfigError:
            pass
        raise


def update(
    repo: Path,
    to: str | None = None,
    data: Mapping[str, object] | None = None,
    ask: cookiecutter_updates.Ask | None = None,
) -> UpdateResult:
    """``copier update`` of a checkout, or re-render and merge for a ``.cruft.json`` one.

    ``ask`` puts a cookiecutter template's new questions to a person (when there is one).
    """
    from trellis.errors import ConfigError
    from trellis.services import cookiecutter_updates
    from trellis.services.updates import update
    from trellis.sources.blueprints import BlueprintSource
    from trellis.sources.cruft_checkouts import CruftCheckouts
    from trellis.sources.repositories import Repositories

    if _records_cruft(str(repo)):
        return cookiecutter_updates.update(
            repo, to, data=data, ask=ask, checkouts=CruftCheckouts(), templates=_template_finder()
        )
    if data:
        raise ConfigError("--data is for repositories generated from cookiecutter templates")
    return update(repo, to, repositories=Repositories(), source_factory=BlueprintSource)


def adopt(
    repo: Path, template: str, version: str, answers: Mapping[str, object]
) -> cookiecutter_updates.Adopted:
    """Record an existing repository as generated from a cookiecutter template's version."""
    from trellis.services import cookiecutter_updates
    from trellis.sources.cruft_checkouts import CruftCheckouts

    return cookiecutter_updates.adopt(
        repo, _template_finder()(template), version, answers, checkouts=CruftCheckouts()
    )


def _records_cruft(location: str) -> bool:
    """Whether a local repository is recorded by cruft's ``.cruft.json`` (not by Copier)."""
    from trellis.sources.blueprints import ANSWERS_FILE
    from trellis.sources.cookiecutter_context import CRUFT_FILE

    path = Path(location)
    return (path / CRUFT_FILE).is_file() and not (path / ANSWERS_FILE).is_file()


def _template_finder() -> Callable[[str], CookiecutterSource]:
    """The registered template a record names (by name, source or URL), else a plain one.

    Trust and an entry point come only from the settings, never from a repository's record.
    """
    from trellis.sources.cookiecutter import CookiecutterSource, CookiecutterSpec
    from trellis.wiring import cookiecutter_sources

    registered = cookiecutter_sources(load_settings())

    def find(template: str) -> CookiecutterSource:
        for name, source in registered.items():
            if template in (name, source.spec.source, source.template_url):
                return source
        name = Path(template.rstrip("/")).name.removesuffix(".git") or "template"
        return CookiecutterSource(CookiecutterSpec(name=name, source=template))

    return find
