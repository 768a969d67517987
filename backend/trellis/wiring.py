"""The composition of Trellis: turns ``Settings`` into adapters and services.

The one place that reads settings for the API and the CLI alike; everything it builds
receives plain typed objects.

Each builder imports its adapter or service when it runs: a command that needs one part
(rendering a blueprint, reading the registry) does not load the Kubernetes client, the
SQL stores or Prometheus's metrics for the others.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from trellis.errors import ConfigError
from trellis.redact import Redactor, url_base

if TYPE_CHECKING:
    from pydantic import SecretStr

    from trellis.catalog import CatalogOptions
    from trellis.config import Settings
    from trellis.metrics import Metrics
    from trellis.model import Snapshot
    from trellis.ports import Lease, RegistrySource
    from trellis.services.catalog_refresh import CatalogService
    from trellis.services.observability import Observer
    from trellis.services.recording_rules import RecordedSeries
    from trellis.services.scaffolding import Scaffolder
    from trellis.services.scoring.options import ScoringOptions
    from trellis.services.scoring.pipeline import CatalogView
    from trellis.services.scoring.scorer import Scorer
    from trellis.services.webhooks import RegistryWebhooks
    from trellis.sources.blueprints import BlueprintSource
    from trellis.sources.cookiecutter import CookiecutterSource
    from trellis.sources.kubernetes import KubernetesSource
    from trellis.sources.prometheus import PrometheusSource
    from trellis.sources.template_sources import TemplateSources
    from trellis.sources.workers import WorkerPool

__all__ = [
    "build_blueprints",
    "build_catalog_service",
    "build_copier_blueprints",
    "build_deployments",
    "build_observer",
    "build_prometheus",
    "build_registry",
    "build_scaffolder",
    "build_scorer",
    "build_webhooks",
    "catalog_options",
    "cookiecutter_sources",
    "default_scorecards",
    "read_once",
    "redactor",
    "render_pool",
    "scorer_lease",
    "scoring_options",
]


def redactor(settings: Settings) -> Redactor:
    """The scrubber of logs: URL credentials, and every secret the settings point at."""
    secrets = settings.secret_values()
    if settings.kubernetes.contexts:
        from trellis.sources.kubernetes import kubeconfig_secrets

        secrets += kubeconfig_secrets(settings.kubernetes.kubeconfig)
    return Redactor(secrets)


def build_registry(settings: Settings) -> RegistrySource:
    """The registry adapter for the configured tracking URI."""
    from trellis.sources.mlflow import RestRegistry, SqlRegistry

    mlflow = settings.mlflow
    uri = settings.tracking_uri
    if uri.startswith("http"):
        import httpx

        client = httpx.Client(
            base_url=uri,
            timeout=mlflow.timeout_seconds,
            headers=_headers(mlflow.token),
            follow_redirects=False,
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


def _headers(token: SecretStr | None) -> dict[str, str]:
    """What Trellis sends with every request to a source: who it is, and its token if any."""
    from trellis import __version__

    headers = {"User-Agent": f"trellis/{__version__}"}
    if token:
        headers["Authorization"] = f"Bearer {token.get_secret_value()}"
    return headers


def default_scorecards() -> Path | None:
    """``scorecards/`` of the checkout Trellis runs from, when there is one."""
    from trellis.sources.blueprints import find_checkout

    checkout = find_checkout()
    return checkout / "scorecards" if checkout is not None else None


def build_blueprints(settings: Settings) -> TemplateSources:
    """Every blueprint: the Copier source's and the registered cookiecutter templates."""
    from trellis.sources.template_sources import TemplateSources

    config = settings.blueprints
    copier: BlueprintSource | None
    try:
        copier = build_copier_blueprints(settings)
    except ConfigError:
        if not config.cookiecutter:
            raise
        copier = None  # only cookiecutter templates are offered
    return TemplateSources(copier, cookiecutter_sources(settings))


def cookiecutter_sources(settings: Settings) -> dict[str, CookiecutterSource]:
    """The registered cookiecutter templates, by blueprint name."""
    from trellis.sources.cookiecutter import CookiecutterSource, CookiecutterSpec

    config = settings.blueprints
    return {
        name: CookiecutterSource(
            CookiecutterSpec(
                name=name,
                source=entry.source,
                ref=entry.ref,
                trusted=entry.trusted,
                entry_point=entry.entry_point,
                title=entry.title,
                description=entry.description,
                owner=entry.owner,
                tags=tuple(entry.tags),
                required=tuple(entry.required),
                timeout_seconds=entry.timeout_seconds,
                repository_url=entry.repository_url,
                publish_hosts=dict(entry.publish_hosts),
            ),
            max_bytes=config.max_render_bytes,
        )
        for name, entry in config.cookiecutter.items()
    }


def build_copier_blueprints(settings: Settings) -> BlueprintSource:
    """The Copier blueprint source: configured, or the checkout Trellis runs from."""
    from trellis.sources.blueprints import BlueprintSource, find_checkout

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
    from trellis.services.scaffolding import Scaffolder
    from trellis.sources.http_read import ReadLimits
    from trellis.sources.repositories import Repositories

    config = settings.blueprints
    client = None
    if any(location.startswith(("http://", "https://")) for location in config.repositories):
        import httpx

        # Redirects are followed by the bounded reader itself, to the same host only.
        client = httpx.Client(follow_redirects=False, headers=_headers(None))
    limits = ReadLimits(
        max_bytes=config.max_read_bytes, deadline_seconds=config.read_deadline_seconds
    )
    blueprints = build_blueprints(settings)
    return Scaffolder(
        blueprints,
        template_names={
            url: name
            for name, source in blueprints.cookiecutter.items()
            # The canonical URL last: it is the one a generated template names.
            for url in (source.spec.source, source.template_url)
        },
        vcs_ref=config.vcs_ref,
        renders=render_pool(
            workers=config.render_workers,
            queue=config.render_queue,
            timeout_seconds=config.render_timeout_seconds,
        ),
        reader=Repositories(client, limits),
        repositories=config.repositories,
        cache_seconds=settings.catalog.refresh_interval_seconds,
    )


def render_pool(*, workers: int = 2, queue: int = 8, timeout_seconds: float = 60.0) -> WorkerPool:
    """Worker processes for renders; their fork server imports Copier and the source once."""
    from trellis.sources.workers import WorkerPool

    return WorkerPool(
        workers=workers,
        queue=queue,
        timeout_seconds=timeout_seconds,
        preload=("copier", "trellis.sources.blueprints"),
        what="render",
        queue_setting="TRELLIS_BLUEPRINTS__RENDER_QUEUE",
    )


def catalog_options(settings: Settings) -> CatalogOptions:
    """The catalog view's options from settings."""
    from trellis.catalog import CatalogOptions

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
    from trellis.sources.kubernetes import KubernetesSource

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
    from trellis.services.catalog_refresh import merge_clusters

    try:
        deployments, reads = merge_clusters(None, clusters.read())
    finally:
        clusters.close()
    return replace(snapshot, deployments=deployments, clusters=reads)


def build_catalog_service(
    settings: Settings, *, registry: RegistrySource | None = None, metrics: Metrics | None = None
) -> CatalogService:
    """The catalog service with its registry, its clusters and its snapshot file."""
    from trellis.metrics import Metrics
    from trellis.services.catalog_refresh import CatalogService
    from trellis.services.drop_guard import DropPolicy
    from trellis.sources.snapshot_file import SnapshotFile

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
        debounce_seconds=settings.webhooks.debounce_seconds,
    )


def build_webhooks(
    settings: Settings, catalog: CatalogService, metrics: Metrics
) -> RegistryWebhooks | None:
    """The receiver of MLflow's webhooks, or None while no secret is set."""
    if settings.webhooks.secret is None:
        return None
    from trellis.services.webhooks import RegistryWebhooks

    return RegistryWebhooks(
        settings.webhooks.secret.get_secret_value(),
        on_change=catalog.refresh_soon,
        on_model=catalog.refresh_model_soon,
        metrics=metrics,
        tolerance_seconds=settings.webhooks.tolerance_seconds,
    )


def build_prometheus(
    settings: Settings, *, timeout_seconds: float | None = None
) -> PrometheusSource | None:
    """The configured Prometheus, or None when ``TRELLIS_PROMETHEUS__URL`` is not set.

    ``timeout_seconds`` replaces the configured timeout, for background work that may wait.
    """
    config = settings.prometheus
    if not config.url:
        return None
    import httpx

    from trellis.sources.prometheus import PrometheusSource

    client = httpx.Client(
        base_url=config.url,
        timeout=timeout_seconds or config.timeout_seconds,
        headers=_headers(config.token),
        follow_redirects=False,
    )
    return PrometheusSource(client, label=url_base(config.url))


def build_observer(
    settings: Settings, *, registry: RegistrySource | None, metrics: Metrics | None = None
) -> Observer:
    """The observability pages, reading training history from ``registry``."""
    from trellis.observability import Limits
    from trellis.services.observability import Observer
    from trellis.services.recording_rules import RecordedSeries

    config = settings.prometheus
    prometheus = build_prometheus(settings)
    return Observer(
        prometheus=prometheus,
        registry=registry,
        limits=Limits(max_points=config.max_points, max_range_days=config.max_range_days),
        metrics=metrics,
        recorded=RecordedSeries(prometheus) if prometheus is not None else None,
        # A read queued behind a full pool waits one source timeout at most, then takes one.
        deadline_seconds=2 * max(config.timeout_seconds, settings.mlflow.timeout_seconds),
    )


def scoring_options(settings: Settings) -> ScoringOptions:
    """The scorer's options from settings."""
    from trellis.scorecards.assembly import FactPolicy
    from trellis.services.scoring.options import ScoringOptions

    config = settings.scorecards
    return ScoringOptions(
        interval_seconds=config.interval_seconds,
        availability_window_seconds=config.availability_window_seconds,
        policy=FactPolicy(
            residency=config.residency,
            adapter_serving=config.adapter_serving,
            licenses=config.licenses,
            serving_window_seconds=config.serving_window_seconds,
        ),
    )


def scorer_lease(database_url: str) -> Lease | None:
    """The scorer's lease: on PostgreSQL, shared by every replica of the fact store.

    SQLite is one process's store, so its scorer needs none.
    """
    from trellis.sources.fact_store.engine import parse_url
    from trellis.sources.fact_store.lease import AdvisoryLease

    if parse_url(database_url).get_backend_name() != "postgresql":
        return None
    return AdvisoryLease(database_url)


def build_scorer(
    settings: Settings,
    catalog: CatalogView,
    scaffolder: Scaffolder | None,
    recorded: RecordedSeries | None = None,
) -> Scorer:
    """Scorecards over the catalog's models and servers, kept in the fact store.

    With a PostgreSQL fact store, replicas elect which of them scores (``scorer_lease``).
    ``recorded``: the recorded series already asked about for pages, shared rather than
    asked about twice; built here when there is none.
    """
    from trellis.services.recording_rules import RecordedSeries
    from trellis.services.scoring.scorer import Scorer
    from trellis.sources.fact_store import FactStore

    database_url = settings.scorecard_database_url
    options = scoring_options(settings)
    prometheus = build_prometheus(
        settings, timeout_seconds=settings.scorecards.query_timeout_seconds
    )
    if prometheus is not None and recorded is None:
        recorded = RecordedSeries(prometheus)
    return Scorer(
        catalog=catalog,
        store=FactStore(database_url, history_days=settings.scorecards.history_days),
        lease=scorer_lease(database_url),
        directory=settings.scorecards.directory or default_scorecards(),
        options=options,
        prometheus=prometheus,
        scaffolder=scaffolder,
        recorded=frozenset if recorded is None else recorded.available,
    )
