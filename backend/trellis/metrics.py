"""Prometheus metrics of the Trellis process itself, on a registry of its own per app."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]


class Metrics:
    """The process's metrics; one instance per app, so tests can build many apps."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.request_seconds = Histogram(
            "trellis_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.source_errors = Counter(
            "trellis_source_errors_total",
            "Failed reads of an upstream source.",
            ["source"],
            registry=self.registry,
        )
        self.refresh_seconds = Histogram(
            "trellis_catalog_refresh_duration_seconds",
            "Time to read the registry and rebuild the catalog.",
            registry=self.registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
        )
        self.snapshot_age = Gauge(
            "trellis_snapshot_age_seconds",
            "Age of the registry snapshot being served (NaN before the first one).",
            registry=self.registry,
        )
        self.entities = Gauge(
            "trellis_catalog_entities", "Entities in the served catalog.", registry=self.registry
        )
        self.drop_held = Gauge(
            "trellis_catalog_drop_held",
            "1 while a read that lost too much of a source is held back, by source.",
            ["source"],
            registry=self.registry,
        )
        self.drop_items = Gauge(
            "trellis_catalog_drop_held_items",
            "Items of a held source: served (snapshot=kept) and in its latest read "
            "(snapshot=read).",
            ["source", "snapshot"],
            registry=self.registry,
        )
        self.drops = Counter(
            "trellis_catalog_drops_total",
            "Drops by outcome: held (a hold began), cleared (a read returned to normal), "
            "confirmed (published after the confirmation period), operator (published by an "
            "operator).",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.renders_running = Gauge(
            "trellis_renders_running",
            "Blueprint renders running, each in a worker process.",
            registry=self.registry,
        )
        self.renders_queued = Gauge(
            "trellis_renders_queued",
            "Blueprint renders waiting for a worker.",
            registry=self.registry,
        )
        self.webhooks = Counter(
            "trellis_webhook_deliveries_total",
            "MLflow webhook deliveries by outcome: refresh (a registry event), ignored (another "
            "event), refused (stale or unsigned), replayed (a delivery id already taken), "
            "malformed.",
            ["outcome"],
            registry=self.registry,
        )
        self.problems = Gauge(
            "trellis_catalog_problems",
            "Problems found building the served catalog, by severity.",
            ["severity"],
            registry=self.registry,
        )
