"""Fact retrievers: what each one is (id, version, schema, entities) and the facts it gives.

Each retriever is described the way Tech Insights describes one (``FactRetriever`` without
its handler), so ``GET /api/tech-insights/fact-schemas`` can answer with it unchanged. The
facts themselves are worked out here from what the sources read for the whole fleet (the
registry snapshot, the clusters' servers, the fleet's Prometheus rows, the blueprint
survey): pure functions, one call per entity, no I/O.

A fact that could not be read is an :class:`Unknown` with the reason, never a guess: a
check that reads it is neither passed nor failed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from trellis import annotations as ann
from trellis.model import ChampionDetails, Deployment, ModelKind, ModelTags, RegisteredModel
from trellis.scorecards.unknown import Unknown

__all__ = [
    "BLUEPRINT",
    "DATA_REGION_ONLY",
    "DEPLOYMENTS",
    "LINEAGE",
    "REGISTRY",
    "RETRIEVERS",
    "SERVING",
    "TRAINING_REGION",
    "FactField",
    "FactRetriever",
    "blueprint_facts",
    "lineage_facts",
    "model_deployment_facts",
    "registry_facts",
    "server_deployment_facts",
    "serving_facts",
]

#: In a residency policy, the model's own training region.
TRAINING_REGION = "training"
#: In an adapter serving policy: served only in the region its training data comes from.
DATA_REGION_ONLY = "data-region"
_PRODUCTION = "production"
_SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class FactField:
    """One fact of a retriever's schema: its Tech Insights type and what it means."""

    type: str
    description: str


@dataclass(frozen=True, slots=True)
class FactRetriever:
    """A retriever's identity and schema, as Tech Insights' ``FactSchemaDefinition``."""

    id: str
    version: str
    title: str
    description: str
    entity_filter: tuple[Mapping[str, Any], ...]
    schema: Mapping[str, FactField] = field(default_factory=lambda: MappingProxyType({}))

    def as_json(self) -> dict[str, object]:
        """The retriever as ``/fact-schemas`` answers it.

        Tech Insights' backend spreads each fact's schema beside the id, version and filter.
        """
        return {
            "id": self.id,
            "version": self.version,
            **{
                name: {"type": fact.type, "description": fact.description}
                for name, fact in self.schema.items()
            },
            "entityFilter": [dict(item) for item in self.entity_filter],
        }


def _schema(**facts: tuple[str, str]) -> Mapping[str, FactField]:
    return MappingProxyType({name: FactField(*spec) for name, spec in facts.items()})


_MODEL = {"kind": "Resource", "spec.type": "ai-model"}
_SERVER = {"kind": "Component", "spec.type": "model-server"}

REGISTRY = FactRetriever(
    id="mlflow-registry",
    version="1.1.0",
    title="MLflow registry",
    description="Ownership, documentation, champion and governance tags of each model.",
    entity_filter=(_MODEL,),
    schema=_schema(
        owner=("string", "The `owner` tag; empty when missing."),
        hasOwner=("boolean", "The model names the team that answers for it."),
        hasDescription=("boolean", "The registered model has a description."),
        hasModelCard=("boolean", "The `model_card` tag links to a model card."),
        hasChampion=("boolean", "A version carries the `champion` alias."),
        championVersion=("integer", "The version the `champion` alias points at."),
        championAgeDays=(
            "integer",
            "Days since the champion version was registered, a started day counting as one.",
        ),
        hasSignature=("boolean", "The champion's logged model has an input/output signature."),
        hasDatasetLineage=("boolean", "The champion's run logged the dataset it trained on."),
        datasets=("set", "Datasets the champion's run logged as inputs."),
        championMetrics=("object", "The champion run's metrics, e.g. {accuracy: 0.93}."),
        dataClassification=("string", "The `data_classification` tag; empty when missing."),
        trainingRegion=("string", "The `training_region` tag; empty when missing."),
    ),
)

SERVING = FactRetriever(
    id="prometheus-serving",
    version="1.0.0",
    title="Prometheus serving signals",
    description="Golden signals of each model server over the serving window, from one "
    "PromQL query per signal for the whole fleet.",
    entity_filter=(_SERVER,),
    schema=_schema(
        requestRate=("float", "Requests per second."),
        errorRatio=("float", "Share of requests that failed, 0..1."),
        latencySeconds=("object", "Request latency percentiles in seconds: {p50, p95, p99}."),
        availability=("float", "Share of scrapes that found the server up, 0..1."),
        gpuUtilization=("float", "Mean utilisation of the server's GPUs, 0..1."),
        gpuMemoryBytes=("float", "GPU memory the server's pods use, in bytes."),
    ),
)

DEPLOYMENTS = FactRetriever(
    id="kubernetes-deployments",
    version="1.0.0",
    title="Kubernetes deployments",
    description="How each model server is deployed, and where each model is served.",
    entity_filter=(_SERVER, _MODEL),
    schema=_schema(
        cluster=("string", "Server: the kubeconfig context it was read from."),
        region=("string", "Server: the region it serves."),
        environment=("string", f"Server: its `{ann.ENVIRONMENT}` label, else production."),
        readyReplicas=("integer", "Server: replicas ready to serve."),
        desiredReplicas=("integer", "Server: replicas asked for."),
        gpuRequests=("integer", "Server: GPUs requested per replica."),
        gpuLimits=("integer", "Server: GPU limit per replica."),
        runsAsNonRoot=("boolean", "Server: every container must run as a non-root user."),
        hasNetworkPolicy=("boolean", "Server: a NetworkPolicy selects its pods."),
        serverCount=("integer", "Model: servers serving it, in every cluster."),
        servingRegions=("set", "Model: regions it is served in."),
        disallowedRegions=("set", "Model: serving regions its data classification forbids."),
        servingRegionsAllowed=("boolean", "Model: every serving region is allowed."),
        allServersHaveNetworkPolicy=("boolean", "Model: a NetworkPolicy guards every server."),
    ),
)

BLUEPRINT = FactRetriever(
    id="blueprint",
    version="1.0.0",
    title="Blueprint currency",
    description="Which blueprint version a repository or model comes from, and how far "
    "behind the newest release it is.",
    entity_filter=({"kind": "Component"}, _MODEL),
    schema=_schema(
        blueprint=(
            "object",
            "{blueprint, version, latestVersion, versionsBehind, "
            "minorVersionsBehind}; unknown fields are null.",
        ),
    ),
)

LINEAGE = FactRetriever(
    id="model-lineage",
    version="1.0.0",
    title="Open-model lineage",
    description="Licence of each imported open model; where each regional adapter was "
    "trained and is served, against where its data lives.",
    entity_filter=(_MODEL,),
    schema=_schema(
        modelKind=("string", "The `model_kind` tag: base, adapter, or empty."),
        license=("string", "Base model: the `license` tag; empty when missing."),
        licenseAllowed=("boolean", "Base model: its licence is in the allow-list."),
        upstreamRevision=("string", "Base model: the upstream commit it was imported from."),
        upstreamPinned=("boolean", "Base model: the upstream revision is a 40-hex commit."),
        hasChecksum=("boolean", "Base model: the served version records size and SHA-256."),
        dataRegion=("string", "Adapter: the region its training data lives in."),
        trainingRegion=("string", "Adapter: the region it was trained in."),
        trainedInDataRegion=("boolean", "Adapter: trained in the region its data lives in."),
        servingRegions=("set", "Adapter: regions of the servers that load it."),
        disallowedRegions=("set", "Adapter: serving regions its classification forbids."),
        servedWhereAllowed=("boolean", "Adapter: every serving region is allowed."),
        hasLineage=("boolean", "Adapter: parent model, parent version and dataset recorded."),
        championGatePassed=("boolean", "Adapter: its champion passed the evaluation gate."),
    ),
)

RETRIEVERS: tuple[FactRetriever, ...] = (REGISTRY, SERVING, DEPLOYMENTS, BLUEPRINT, LINEAGE)

Facts = dict[str, object]


# --- mlflow-registry ----------------------------------------------------------------------


def registry_facts(
    model: RegisteredModel,
    details: ChampionDetails | Unknown | None,
    now: datetime,
) -> Facts:
    """The ``mlflow-registry`` facts of one model.

    ``details`` are its champion's (None when it has no champion, Unknown when they could
    not be read). Facts about a champion are unknown for a model without one: the
    ``hasChampion`` check already fails for it, and "no champion" is not "no signature".
    """
    tags = model.tags
    owner = tags.get(ModelTags.OWNER, "").strip()
    champion = model.version_for_alias(ModelTags.CHAMPION)
    version = model.champion
    facts: Facts = {
        "owner": owner,
        "hasOwner": bool(owner),
        "hasDescription": bool(model.description.strip()),
        "hasModelCard": bool(tags.get(ModelTags.MODEL_CARD, "").strip()),
        "hasChampion": version is not None,
        "dataClassification": tags.get(ModelTags.DATA_CLASSIFICATION, "").strip(),
        "trainingRegion": tags.get(ModelTags.TRAINING_REGION, "").strip(),
    }
    if version is None:
        missing = Unknown(
            "no version carries the `champion` alias"
            if champion is None
            else f"the `champion` alias points at version {champion}, which is not there"
        )
        facts.update(dict.fromkeys(_CHAMPION_FACTS, missing))
        return facts
    facts["championVersion"] = version.version
    # Started days: ``<= 90`` holds exactly while the champion is at most 90 days old, and
    # the fact changes once a day, not at every run (each change is a row of history).
    age = max(0.0, (now - version.created_at).total_seconds())
    facts["championAgeDays"] = math.ceil(age / _SECONDS_PER_DAY)
    facts.update(_details(details, model.name, version.version))
    return facts


#: Facts read from the champion's run and logged model (``ChampionDetails``).
_DETAIL_FACTS = ("hasSignature", "hasDatasetLineage", "datasets", "championMetrics")
_CHAMPION_FACTS = ("championVersion", "championAgeDays", *_DETAIL_FACTS)


def _details(details: ChampionDetails | Unknown | None, name: str, version: int) -> Facts:
    if not isinstance(details, ChampionDetails):
        reason = details or Unknown(f"details of {name} version {version} were not read")
        return dict.fromkeys(_DETAIL_FACTS, reason)
    why = Unknown("; ".join(details.problems) or "the registry did not say")
    datasets = why if details.datasets is None else sorted(details.datasets)
    return {
        "hasSignature": why if details.has_signature is None else details.has_signature,
        "hasDatasetLineage": why if details.datasets is None else bool(details.datasets),
        "datasets": datasets,
        "championMetrics": why if details.metrics is None else _finite(details.metrics),
    }


def _finite(metrics: Mapping[str, float]) -> dict[str, object]:
    """Metrics as JSON: NaN and infinities (a diverged run) are unknown, not numbers."""
    return {
        key: value if math.isfinite(value) else Unknown(f"metric {key!r} is {value}")
        for key, value in sorted(metrics.items())
    }


# --- kubernetes-deployments ----------------------------------------------------------------


def server_deployment_facts(server: Deployment, cluster_error: str | None) -> Facts:
    """The ``kubernetes-deployments`` facts of one model server.

    ``cluster_error`` is set when the server's cluster could not be read this time: what is
    known of it is then from an older read, so every fact is unknown rather than stale.
    """
    if cluster_error is not None:
        reason = Unknown(f"cluster {server.cluster!r} could not be read: {cluster_error}")
        return dict.fromkeys(_SERVER_FACTS, reason)
    return {
        "cluster": server.cluster,
        "region": server.region,
        "environment": server.labels.get(ann.ENVIRONMENT, _PRODUCTION),
        "readyReplicas": server.ready_replicas,
        "desiredReplicas": server.desired_replicas,
        "gpuRequests": server.gpu_requests,
        "gpuLimits": server.gpu_limits,
        # Unset means the image's user, which may be root: not enforced is not non-root.
        "runsAsNonRoot": server.runs_as_non_root is True,
        "hasNetworkPolicy": server.network_policy,
    }


_SERVER_FACTS = (
    "cluster",
    "region",
    "environment",
    "readyReplicas",
    "desiredReplicas",
    "gpuRequests",
    "gpuLimits",
    "runsAsNonRoot",
    "hasNetworkPolicy",
)


def model_deployment_facts(
    model: RegisteredModel,
    servers: Sequence[Deployment],
    failed_clusters: Mapping[str, str],
    residency: Mapping[str, Collection[str]],
) -> Facts:
    """The ``kubernetes-deployments`` facts of one model: where it is served, and if allowed.

    ``residency`` maps a classification (any case) to the regions it may be served in,
    ``training`` standing for the model's training region; a classification it does not
    list may be served anywhere. A model served from a cluster that could not be read has
    unknown facts: its servers there may have moved.
    """
    unread = _unread(servers, failed_clusters)
    if unread is not None:
        return dict.fromkeys(_MODEL_FACTS, unread)
    regions = sorted({s.region for s in servers})
    allowed = _allowed_regions(model, residency)
    disallowed = [] if allowed is None else [r for r in regions if r not in allowed]
    return {
        "serverCount": len(servers),
        "servingRegions": regions,
        "disallowedRegions": disallowed,
        "servingRegionsAllowed": not disallowed,
        "allServersHaveNetworkPolicy": all(s.network_policy for s in servers),
    }


def _unread(servers: Sequence[Deployment], failed_clusters: Mapping[str, str]) -> Unknown | None:
    """Why facts over ``servers`` are unknown: some run in a cluster that could not be read."""
    failed = sorted({s.cluster for s in servers if s.cluster in failed_clusters})
    if not failed:
        return None
    return Unknown(
        "; ".join(f"cluster {c!r} could not be read: {failed_clusters[c]}" for c in failed)
    )


_MODEL_FACTS = (
    "serverCount",
    "servingRegions",
    "disallowedRegions",
    "servingRegionsAllowed",
    "allServersHaveNetworkPolicy",
)


def _allowed_regions(
    model: RegisteredModel, residency: Mapping[str, Collection[str]]
) -> frozenset[str] | None:
    """The regions ``model`` may be served in; None when anywhere."""
    classification = model.tags.get(ModelTags.DATA_CLASSIFICATION, "").strip().casefold()
    policy = {key.casefold(): regions for key, regions in residency.items()}
    if classification not in policy:
        return None
    training = model.tags.get(ModelTags.TRAINING_REGION, "").strip()
    return frozenset(
        training if region == TRAINING_REGION else region
        for region in policy[classification]
        if region != TRAINING_REGION or training
    )


# --- model-lineage -------------------------------------------------------------------------


def lineage_facts(
    model: RegisteredModel,
    servers: Sequence[Deployment],
    failed_clusters: Mapping[str, str],
    serving_policy: Mapping[str, str],
    licenses: Collection[str],
) -> Facts:
    """The ``model-lineage`` facts of one model; those of the other kind are unknown.

    ``servers`` are the servers that load the model (as their model or as an adapter).
    ``serving_policy`` maps a data classification (any case) to ``data-region`` (served
    only where the adapter's data lives) or ``anywhere``; one it does not list is served
    anywhere. ``licenses`` is the allow-list of licence ids (any case).
    """
    kind = model.kind
    facts: Facts = {"modelKind": kind or ""}
    not_base = Unknown("not an imported open model (`model_kind` is not `base`)")
    not_adapter = Unknown("not a regional adapter (`model_kind` is not `adapter`)")
    if kind == ModelKind.BASE:
        facts.update(_base_facts(model, licenses))
    else:
        facts.update(dict.fromkeys(_BASE_FACTS, not_base))
    if kind == ModelKind.ADAPTER:
        facts.update(_adapter_facts(model, servers, failed_clusters, serving_policy))
    else:
        facts.update(dict.fromkeys(_ADAPTER_FACTS, not_adapter))
    return facts


_BASE_FACTS = ("license", "licenseAllowed", "upstreamRevision", "upstreamPinned", "hasChecksum")
_SERVING_FACTS = ("servingRegions", "disallowedRegions", "servedWhereAllowed")
_ADAPTER_FACTS = (
    "dataRegion",
    "trainingRegion",
    "trainedInDataRegion",
    "hasLineage",
    "championGatePassed",
    *_SERVING_FACTS,
)
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PASSED = "passed"


def _base_facts(model: RegisteredModel, licenses: Collection[str]) -> Facts:
    license_id = model.lineage_tag(ModelTags.LICENSE)
    revision = model.lineage_tag(ModelTags.UPSTREAM_REVISION)
    size = model.lineage_tag(ModelTags.SIZE_BYTES)
    allowed = {item.strip().casefold() for item in licenses}
    return {
        "license": license_id,
        "licenseAllowed": bool(license_id) and license_id.casefold() in allowed,
        "upstreamRevision": revision,
        "upstreamPinned": bool(_COMMIT.match(revision)),
        "hasChecksum": size.isdigit() and bool(_SHA256.match(model.lineage_tag(ModelTags.SHA256))),
    }


def _adapter_facts(
    model: RegisteredModel,
    servers: Sequence[Deployment],
    failed_clusters: Mapping[str, str],
    serving_policy: Mapping[str, str],
) -> Facts:
    data_region = model.lineage_tag(ModelTags.DATA_REGION)
    training_region = model.lineage_tag(ModelTags.TRAINING_REGION)
    lineage = (ModelTags.PARENT_MODEL, ModelTags.PARENT_VERSION, ModelTags.DATASET_FINGERPRINT)
    version = model.champion
    facts: Facts = {
        "dataRegion": data_region,
        "trainingRegion": training_region,
        # Residency that is not recorded is not shown: a missing region fails the check.
        "trainedInDataRegion": bool(data_region) and training_region == data_region,
        "hasLineage": all(model.lineage_tag(key) for key in lineage),
        "championGatePassed": Unknown("no version carries the `champion` alias")
        if version is None
        else version.tags.get(ModelTags.GATE, "").strip().casefold() == _PASSED,
    }
    unread = _unread(servers, failed_clusters)
    if unread is not None:
        return {**facts, **dict.fromkeys(_SERVING_FACTS, unread)}
    regions = sorted({s.region for s in servers})
    classification = model.lineage_tag(ModelTags.DATA_CLASSIFICATION).casefold()
    policy = {key.casefold(): value for key, value in serving_policy.items()}
    confined = policy.get(classification) == DATA_REGION_ONLY
    disallowed = [r for r in regions if r != data_region] if confined else []
    return {
        **facts,
        "servingRegions": regions,
        "disallowedRegions": disallowed,
        "servedWhereAllowed": not disallowed,
    }


# --- prometheus-serving ----------------------------------------------------------------------

_PERCENTILES = {"p50": "latencyP50", "p95": "latencyP95", "p99": "latencyP99"}
_SIGNALS = ("requestRate", "errorRatio", "availability", "gpuUtilization", "gpuMemoryBytes")


def serving_facts(row: Mapping[str, float] | None, unavailable: str | None, window: str) -> Facts:
    """The ``prometheus-serving`` facts of one server from its row of the fleet's answers.

    ``unavailable`` is why Prometheus could not be asked (every fact is then unknown);
    ``row`` maps each fleet fact to its value, a missing key meaning no samples.
    """
    if unavailable is not None:
        reason = Unknown(unavailable)
        return {**dict.fromkeys(_SIGNALS, reason), "latencySeconds": reason}
    values = row or {}

    def value(name: str) -> object:
        if name in values:
            return values[name]
        return Unknown(f"Prometheus has no samples of {name} for this server in the last {window}")

    return {
        **{name: value(name) for name in _SIGNALS},
        "latencySeconds": {key: value(name) for key, name in _PERCENTILES.items()},
    }


# --- blueprint -------------------------------------------------------------------------------


def blueprint_facts(fact: Mapping[str, object] | None, unavailable: str | None) -> Facts:
    """The ``blueprint`` fact from the survey's (or a model's tags') fact object.

    Its null fields (a version that is not a release, releases that could not be read)
    become unknown, so checks on them are neither passed nor failed.
    """
    if unavailable is not None:
        return {"blueprint": Unknown(unavailable)}
    if fact is None:
        return {"blueprint": Unknown("no blueprint is recorded for this entity")}
    return {
        "blueprint": {
            key: Unknown(f"{key} of {fact.get('blueprint')} {fact.get('version')} is not known")
            if value is None
            else value
            for key, value in fact.items()
        }
    }
