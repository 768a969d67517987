"""Backstage entity metadata Trellis writes and reads, named once for every package.

The envelope's ``apiVersion``; annotation keys, existing plugins' keys where one reads them,
else ours under ``trellis.dev``; and the ``trellis.dev`` labels blueprints put on model
servers, which share those keys. Sources, views and services all use these, so it sits at the
package root and imports nothing.
"""

__all__ = [
    "ADAPTERS",
    "API_VERSION",
    "BLUEPRINT",
    "BLUEPRINT_VERSION",
    "CHAMPION_VERSION",
    "CLUSTER",
    "DATASET_FINGERPRINT",
    "DATA_CLASSIFICATION",
    "DESIRED_REPLICAS",
    "ENVIRONMENT",
    "GITHUB_PROJECT_SLUG",
    "GITLAB_PROJECT_SLUG",
    "GPU_LIMITS",
    "GPU_PRODUCT",
    "GPU_REQUESTS",
    "KUBERNETES_ID",
    "KUBERNETES_LABEL_SELECTOR",
    "KUBERNETES_NAMESPACE",
    "LATEST_VERSION",
    "LICENSE",
    "LORA_ADAPTERS",
    "METHOD",
    "MODEL_ALIAS",
    "MODEL_KIND",
    "MODEL_VERSION",
    "NETWORK_POLICY",
    "PARENT_MODEL",
    "PARENT_VERSION",
    "PROMETHEUS_RULE",
    "READY_REPLICAS",
    "REGION",
    "REGISTERED_MODEL",
    "RUNTIME",
    "SERVED_REGIONS",
    "SERVED_VERSIONS",
    "SOURCE_LOCATION",
    "TECHDOCS_REF",
    "TEMPLATE_API_VERSION",
    "TRAINING_REGION",
    "UPSTREAM",
    "UPSTREAM_REVISION",
    "WORKLOAD",
]

API_VERSION = "backstage.io/v1alpha1"
"""The apiVersion of every core entity kind (Resource, Component, API, System, Location)."""
TEMPLATE_API_VERSION = "scaffolder.backstage.io/v1beta3"
"""The apiVersion of a Software Template."""

PREFIX = "trellis.dev"
#: The model's name in MLflow, unchanged (entity names are normalised).
REGISTERED_MODEL = f"{PREFIX}/registered-model"
CHAMPION_VERSION = f"{PREFIX}/champion-version"
LATEST_VERSION = f"{PREFIX}/latest-version"
DATA_CLASSIFICATION = f"{PREFIX}/data-classification"
TRAINING_REGION = f"{PREFIX}/training-region"
BLUEPRINT = f"{PREFIX}/blueprint"
BLUEPRINT_VERSION = f"{PREFIX}/blueprint-version"
#: Lineage of open models: ``base`` (imported once) or ``adapter`` (a regional fine-tune).
MODEL_KIND = f"{PREFIX}/model-kind"
#: On a base model: where it came from, the commit taken, and its licence id.
UPSTREAM = f"{PREFIX}/upstream"
UPSTREAM_REVISION = f"{PREFIX}/upstream-revision"
LICENSE = f"{PREFIX}/license"
#: On an adapter: its base model (MLflow name) and version, how it was tuned, and the
#: fingerprint of its training rows; its data region is ``REGION``.
PARENT_MODEL = f"{PREFIX}/parent-model"
PARENT_VERSION = f"{PREFIX}/parent-version"
METHOD = f"{PREFIX}/method"
DATASET_FINGERPRINT = f"{PREFIX}/dataset-fingerprint"
#: On a base model: the entity refs of its adapters (its regional variants), comma-separated.
ADAPTERS = f"{PREFIX}/adapters"
#: On a model server: the registered-model names of the adapters it serves, comma-separated.
LORA_ADAPTERS = f"{PREFIX}/lora-adapters"
#: On a model: the regions and versions its servers serve (comma-separated).
SERVED_REGIONS = f"{PREFIX}/served-regions"
SERVED_VERSIONS = f"{PREFIX}/served-versions"
#: On a model server: where it runs and what it serves; on an adapter, its data region.
CLUSTER = f"{PREFIX}/cluster"
REGION = f"{PREFIX}/region"
RUNTIME = f"{PREFIX}/runtime"
WORKLOAD = f"{PREFIX}/workload"
MODEL_VERSION = f"{PREFIX}/model-version"
MODEL_ALIAS = f"{PREFIX}/model-alias"
READY_REPLICAS = f"{PREFIX}/ready-replicas"
DESIRED_REPLICAS = f"{PREFIX}/desired-replicas"
GPU_REQUESTS = f"{PREFIX}/gpu-requests"
GPU_LIMITS = f"{PREFIX}/gpu-limits"
GPU_PRODUCT = f"{PREFIX}/gpu-product"
NETWORK_POLICY = f"{PREFIX}/network-policy"
#: A label on a model server naming its environment; a server without it is production.
ENVIRONMENT = f"{PREFIX}/environment"

# Read by Backstage itself and by existing plugins.
SOURCE_LOCATION = "backstage.io/source-location"
TECHDOCS_REF = "backstage.io/techdocs-ref"
GITHUB_PROJECT_SLUG = "github.com/project-slug"
GITLAB_PROJECT_SLUG = "gitlab.com/project-slug"
KUBERNETES_ID = "backstage.io/kubernetes-id"
KUBERNETES_LABEL_SELECTOR = "backstage.io/kubernetes-label-selector"
KUBERNETES_NAMESPACE = "backstage.io/kubernetes-namespace"
#: Roadie's Prometheus plugin: comma-separated ``query|groupLabel``.
PROMETHEUS_RULE = "prometheus.io/rule"
