"""Typed configuration, parsed once: environment variables with the prefix ``TRELLIS_``.

Nested settings use ``__``: ``TRELLIS_MLFLOW__TRACKING_URI``, ``TRELLIS_CATALOG__EMIT_SYSTEMS``.
Defaults are embedded: an SQLite MLflow registry in the state directory, no Prometheus,
no Kubernetes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from trellis.redact import scrub_url, url_base, url_secrets

__all__ = [
    "BlueprintSettings",
    "CatalogSettings",
    "KubernetesSettings",
    "MlflowSettings",
    "PrometheusSettings",
    "ScorecardSettings",
    "Settings",
    "WebhookSettings",
]

#: MLflow rejects larger pages for registered-model search (FACTS.md: 1,001 is refused).
MAX_MODEL_PAGE = 1000
#: MLflow's own maximum for model-version search.
MAX_VERSION_PAGE = 200_000
MIN_TOKEN_LENGTH = 16
_PLACEHOLDER_TOKENS = {"changeme", "changethis", "secret", "token", "password"}
_HEADER_TOKEN = re.compile(r"[\x21-\x7e]+")


def _split_csv(value: object) -> object:
    """Accept a comma-separated string where a list is expected (friendlier env vars)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class MlflowSettings(BaseModel):
    """Where the model registry is and how patiently to read it."""

    tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking URI: http(s)://host:port or sqlite:///path. "
        "Default: an SQLite registry in the state directory.",
    )
    ui_url: str | None = Field(
        default=None,
        description="Base URL of the MLflow UI for links; default: the tracking URI when it is "
        "http(s).",
    )
    token: SecretStr | None = Field(default=None, description="Bearer token for the server.")
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    model_page_size: int = Field(default=MAX_MODEL_PAGE, ge=1, le=MAX_MODEL_PAGE)
    version_page_size: int = Field(default=10_000, ge=1, le=MAX_VERSION_PAGE)

    @field_validator("tracking_uri", "ui_url")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme = urlsplit(value).scheme
        if scheme not in {"http", "https", "sqlite"}:
            msg = f"must start with http://, https:// or sqlite:///, got scheme {scheme!r}"
            raise ValueError(msg)
        return value.rstrip("/") if scheme != "sqlite" else value


#: Prometheus refuses range queries over 11,000 points per series.
PROMETHEUS_MAX_POINTS = 11_000


class PrometheusSettings(BaseModel):
    """An optional Prometheus for golden signals (not read by the catalog)."""

    url: str | None = Field(
        default=None,
        description="Base URL of the Prometheus HTTP API (or a Thanos/Mimir query frontend).",
    )
    token: SecretStr | None = Field(default=None, description="Bearer token for Prometheus.")
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    max_points: int = Field(
        default=1100,
        ge=2,
        le=PROMETHEUS_MAX_POINTS,
        description="Most points one series of an observability answer may have.",
    )
    max_range_days: int = Field(
        default=30, ge=1, le=3650, description="Longest time range an observability answer covers."
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if urlsplit(value).scheme not in {"http", "https"}:
            msg = "must start with http:// or https://"
            raise ValueError(msg)
        return value.rstrip("/")


def _parse_pairs(value: object) -> object:
    """``a=x,b=y`` as ``{"a": "x", "b": "y"}``; each malformed entry is named."""
    if not isinstance(value, str):
        return value
    pairs: dict[str, str] = {}
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        key, equals, item = (side.strip() for side in entry.partition("="))
        if not equals or not key or not item:
            msg = f"entry {entry!r} is not context=region (e.g. hub=eu-west-1)"
            raise ValueError(msg)
        if key in pairs:
            msg = f"context {key!r} is given twice"
            raise ValueError(msg)
        pairs[key] = item
    return pairs


class KubernetesSettings(BaseModel):
    """Optional kubeconfig contexts, one per cluster or region, for the model servers."""

    kubeconfig: Path | None = Field(
        default=None, description="The kubeconfig file; default: $KUBECONFIG or ~/.kube/config."
    )
    contexts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Contexts to read (comma-separated), one per cluster."
    )
    timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        le=120,
        description="Longest one cluster's read may take; a slower cluster is reported down.",
    )
    regions: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="Region of each context whose objects carry no region label "
        "(`hub=eu-west-1,edge=us-east-1`); default: the context name.",
    )

    _split = field_validator("contexts", mode="before")(_split_csv)
    _pairs = field_validator("regions", mode="before")(_parse_pairs)


class CatalogSettings(BaseModel):
    """How registered models become Backstage entities."""

    namespace: str = Field(default="default", pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=63)
    fallback_owner: str = Field(
        default="group:default/ml-platform",
        description="Owner for models without an `owner` tag.",
        pattern=r"^(?:[a-zA-Z]+:)?(?:[a-z0-9]+(?:-[a-z0-9]+)*/)?[A-Za-z0-9][-A-Za-z0-9_.]*$",
    )
    emit_systems: bool = Field(
        default=True,
        description="Emit a System per `system` tag; switch off where systems are defined "
        "elsewhere.",
    )
    refresh_interval_seconds: float = Field(default=60.0, ge=1, le=86_400)
    requires_token: bool = Field(
        default=False, description="Whether /catalog/* needs the same bearer token as /api/*."
    )
    drop_max_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Largest share of the served models one registry read may lose and still "
        "be published at once; a larger drop, and any drop to zero, is held until confirmed.",
    )
    drop_confirm_seconds: float = Field(
        default=3_600.0,
        ge=0,
        le=7 * 86_400,
        description="How long consecutive reads must keep showing a held drop before it is "
        "published (an operator can confirm it sooner).",
    )


_TEMPLATE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class CookiecutterSettings(BaseModel):
    """A cookiecutter template registered as a blueprint."""

    source: str = Field(description="The template's git URL or local path (a git checkout).")
    ref: str | None = Field(
        default=None, description="Version (git tag) to render; default: the newest version tag."
    )
    trusted: bool = Field(
        default=False,
        description="Whether its hooks and Jinja extensions may run; an untrusted template "
        "that has any is refused.",
    )
    entry_point: str | None = Field(
        default=None,
        description="The command of a template rendered by its own entry point (such as "
        "`ccds`); `{version}` in it becomes the version rendered, without a leading `v`.",
    )
    title: str = ""
    description: str = ""
    owner: str = ""
    tags: list[str] = Field(default_factory=list)
    required: list[str] = Field(
        default_factory=list, description="Questions the form and the render API insist on."
    )
    timeout_seconds: float = Field(
        default=120.0, gt=0, le=3_600, description="Longest one render (hooks included) may take."
    )
    repository_url: str | None = Field(
        default=None,
        description="URL recorded as `template` in `.cruft.json`; default: the source.",
    )
    publish_hosts: dict[str, str] = Field(
        default_factory=lambda: {"github": "github.com"},
        description="Where Backstage publishes a new repository, `{kind: host}`; with several, "
        "the form asks which.",
    )


class BlueprintSettings(BaseModel):
    """Where the blueprints come from."""

    source: str | None = Field(
        default=None,
        description="Copier source of the blueprints: the Trellis git repository's canonical "
        "URL, or a local checkout. Default: the checkout Trellis runs from.",
    )
    vcs_ref: str | None = Field(
        default=None,
        description="Blueprint version: a release recorded in the tree (blueprint.yaml's "
        "version), or any git ref for a development render; default: the newest release.",
    )
    repository_url: str | None = Field(
        default=None,
        description="Canonical git URL of the blueprint repository, recorded as `_src_path` in "
        "every generated repo so `copier update` finds it. Default: the source.",
    )
    repositories: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Generated repositories to report on (comma-separated): local checkouts or "
        "http(s) URLs of their raw files, e.g. a raw.githubusercontent.com base.",
    )
    max_read_bytes: int = Field(
        default=1_048_576,
        gt=0,
        le=100_000_000,
        description="Largest file read from a repository over HTTP; a larger answer is cut "
        "and the repository reported as a problem.",
    )
    read_deadline_seconds: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="Longest one file's read from a repository over HTTP may take in all, "
        "however slowly the server sends it.",
    )
    render_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        le=600,
        description="Longest a render may take before it fails, waiting for a worker included.",
    )
    render_workers: int = Field(
        default=2, ge=1, le=64, description="Renders at once, each in a worker process."
    )
    render_queue: int = Field(
        default=8,
        ge=0,
        le=1_000,
        description="Renders that may wait for a worker; more get 429 with Retry-After.",
    )
    max_render_bytes: int = Field(
        default=20_000_000, gt=0, description="Largest total size of one render's files."
    )

    cookiecutter: dict[str, CookiecutterSettings] = Field(
        default_factory=dict,
        description="Cookiecutter templates offered as blueprints, as JSON by blueprint name: "
        '`{"data-science": {"source": "https://...", "trusted": true}}`.',
    )

    _split_repositories = field_validator("repositories", mode="before")(_split_csv)

    @field_validator("cookiecutter")
    @classmethod
    def _template_names(
        cls, templates: dict[str, CookiecutterSettings]
    ) -> dict[str, CookiecutterSettings]:
        for name in templates:
            if not _TEMPLATE_NAME.match(name):
                msg = (
                    f"TRELLIS_BLUEPRINTS__COOKIECUTTER: {name!r} is not a blueprint name "
                    "(lower-case letters, digits and dashes)"
                )
                raise ValueError(msg)
        return templates


AdapterServing = Literal["data-region", "anywhere"]


def _confined_adapters() -> dict[str, AdapterServing]:
    """Adapters tuned on confidential or restricted data are served only where it lives."""
    return {"confidential": "data-region", "restricted": "data-region"}


class ScorecardSettings(BaseModel):
    """Which checks run, how often, what they measure over and where results are kept."""

    directory: Path | None = Field(
        default=None,
        description="Folder of scorecard definitions (`*.yaml`). Default: `scorecards/` of the "
        "checkout Trellis runs from.",
    )
    interval_seconds: float = Field(
        default=300.0, ge=5, le=86_400, description="How often every check runs for the fleet."
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL of the fact and result store, e.g. "
        "`postgresql+psycopg://user:pass@host/trellis` when several replicas share it. "
        "Default: SQLite `scorecards.db` in the state directory.",
    )
    history_days: int = Field(
        default=90, ge=1, le=3_650, description="How long fact history is kept."
    )
    serving_window_seconds: int = Field(
        default=3_600, ge=60, le=86_400, description="Window of latency, errors and GPU use."
    )
    availability_window_seconds: int = Field(
        default=86_400, ge=60, le=30 * 86_400, description="Window of availability (`up`)."
    )
    query_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        le=600,
        description="Timeout of each fleet-wide PromQL query (one per serving fact, for every "
        "server at once): longer than a page's, since a run waits in the background.",
    )
    residency: dict[str, list[str]] = Field(
        default_factory=lambda: {"confidential": ["training"], "restricted": ["training"]},
        description="Regions where a model of each data classification may be served, as "
        "JSON; `training` stands for the model's training region. A classification not "
        "listed may be served anywhere.",
    )
    adapter_serving: dict[str, AdapterServing] = Field(
        default_factory=_confined_adapters,
        description="Where a regional adapter of each data classification may be served, as "
        "JSON: `data-region` (only in the region its training data lives in) or `anywhere`. "
        "A classification not listed may be served anywhere.",
    )
    licenses: list[str] = Field(
        default_factory=lambda: ["apache-2.0", "mit", "bsd-2-clause", "bsd-3-clause"],
        description="Licence ids (as the model hub states them) an imported open model may "
        "carry, as JSON.",
    )


class WebhookSettings(BaseModel):
    """MLflow registry webhooks, which refresh the catalog at once; polling stays the fallback."""

    secret: SecretStr | None = Field(
        default=None,
        description="The `secret` given to MLflow's `create_webhook` for "
        "`POST /api/webhooks/mlflow`. Unset, that route answers 404.",
    )
    tolerance_seconds: float = Field(
        default=300.0,
        ge=10,
        le=3600,
        description="How far a delivery's timestamp may be from now; older deliveries, and "
        "any delivery id already taken within twice this window, are refused.",
    )
    debounce_seconds: float = Field(
        default=2.0,
        ge=0,
        le=300,
        description="Shortest time between two refreshes that webhooks bring forward: a burst "
        "of events is read once.",
    )

    @field_validator("secret")
    @classmethod
    def _strong_secret(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and len(secret.get_secret_value()) < MIN_TOKEN_LENGTH:
            msg = (
                f"TRELLIS_WEBHOOKS__SECRET is shorter than {MIN_TOKEN_LENGTH} characters; "
                "generate one with `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
            raise ValueError(msg)
        return secret


class Settings(BaseSettings):
    """All of Trellis's configuration."""

    # Errors name the setting but never repeat its value: values hold tokens and passwords.
    model_config = SettingsConfigDict(
        env_prefix="TRELLIS_",
        env_nested_delimiter="__",
        extra="ignore",
        env_file=None,
        hide_input_in_errors=True,
    )

    state_dir: Path = Field(default=Path(".trellis"), description="Snapshots and the demo DB.")
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    api_tokens: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    log_level: str = Field(default="info", pattern=r"^(critical|error|warning|info|debug)$")
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    prometheus: PrometheusSettings = Field(default_factory=PrometheusSettings)
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    catalog: CatalogSettings = Field(default_factory=CatalogSettings)
    blueprints: BlueprintSettings = Field(default_factory=BlueprintSettings)
    scorecards: ScorecardSettings = Field(default_factory=ScorecardSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)

    _split_tokens = field_validator("api_tokens", mode="before")(_split_csv)

    @field_validator("api_tokens")
    @classmethod
    def _no_weak_tokens(cls, tokens: list[SecretStr]) -> list[SecretStr]:
        for position, token in enumerate(tokens):
            value = token.get_secret_value()
            if value.lower() in _PLACEHOLDER_TOKENS or len(value) < MIN_TOKEN_LENGTH:
                msg = (
                    f"TRELLIS_API_TOKENS entry {position} is a placeholder or shorter than "
                    f"{MIN_TOKEN_LENGTH} characters; generate one with "
                    "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
                )
                raise ValueError(msg)
            if not _HEADER_TOKEN.fullmatch(value):
                # A header carries visible ASCII only: such a token could never be presented.
                msg = (
                    f"TRELLIS_API_TOKENS entry {position} has a character that cannot travel in "
                    "an Authorization header (non-ASCII, a space or a control character)"
                )
                raise ValueError(msg)
        return tokens

    @model_validator(mode="after")
    def _catalog_token_needs_tokens(self) -> Settings:
        if self.catalog.requires_token and not self.api_tokens:
            msg = "TRELLIS_CATALOG__REQUIRES_TOKEN is true but TRELLIS_API_TOKENS is empty"
            raise ValueError(msg)
        return self

    @property
    def tracking_uri(self) -> str:
        """The configured registry, or the embedded SQLite one in the state directory."""
        if self.mlflow.tracking_uri:
            return self.mlflow.tracking_uri
        return f"sqlite:///{(self.state_dir / 'mlflow.db').resolve()}"

    @property
    def scorecard_database_url(self) -> str:
        """The configured fact store, or the embedded SQLite one in the state directory."""
        if self.scorecards.database_url is not None:
            return self.scorecards.database_url.get_secret_value()
        return f"sqlite:///{(self.state_dir / 'scorecards.db').resolve()}"

    @property
    def mlflow_ui_url(self) -> str | None:
        """Base URL for links into the MLflow UI, or None when there is no UI to link to."""
        if self.mlflow.ui_url:
            return scrub_url(self.mlflow.ui_url)
        return self.registry_label if self.tracking_uri.startswith("http") else None

    @property
    def registry_label(self) -> str:
        """The tracking URI without credentials, safe to show and log."""
        return url_base(self.tracking_uri)

    def secret_values(self) -> list[str]:
        """Every secret the settings hold, for the redactor of logs and answers.

        Tokens, and what each URL setting carries in its userinfo or secret parameters.
        """
        secrets = [token.get_secret_value() for token in self.api_tokens]
        secrets += [
            token.get_secret_value()
            for token in (self.mlflow.token, self.prometheus.token, self.webhooks.secret)
            if token is not None
        ]
        urls = [
            self.mlflow.tracking_uri,
            self.mlflow.ui_url,
            self.prometheus.url,
            self.blueprints.source,
            self.blueprints.repository_url,
            *self.blueprints.repositories,
        ]
        if self.scorecards.database_url is not None:
            urls.append(self.scorecards.database_url.get_secret_value())
        for url in filter(None, urls):
            secrets += url_secrets(url)
        return secrets
