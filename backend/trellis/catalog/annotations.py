"""Annotation keys Trellis writes: existing plugins' keys where one reads them, else ours."""

__all__ = [
    "BLUEPRINT",
    "BLUEPRINT_VERSION",
    "CHAMPION_VERSION",
    "CLUSTER",
    "DATA_CLASSIFICATION",
    "DESIRED_REPLICAS",
    "GITHUB_PROJECT_SLUG",
    "GPU_LIMITS",
    "GPU_PRODUCT",
    "GPU_REQUESTS",
    "KUBERNETES_ID",
    "KUBERNETES_LABEL_SELECTOR",
    "KUBERNETES_NAMESPACE",
    "LATEST_VERSION",
    "MODEL_ALIAS",
    "MODEL_VERSION",
    "NETWORK_POLICY",
    "PROMETHEUS_RULE",
    "READY_REPLICAS",
    "REGION",
    "REGISTERED_MODEL",
    "RUNTIME",
    "SERVED_REGIONS",
    "SERVED_VERSIONS",
    "SOURCE_LOCATION",
    "TECHDOCS_REF",
    "TRAINING_REGION",
    "WORKLOAD",
]

PREFIX = "trellis.dev"
#: The model's name in MLflow, unchanged (entity names are normalised).
REGISTERED_MODEL = f"{PREFIX}/registered-model"
CHAMPION_VERSION = f"{PREFIX}/champion-version"
LATEST_VERSION = f"{PREFIX}/latest-version"
DATA_CLASSIFICATION = f"{PREFIX}/data-classification"
TRAINING_REGION = f"{PREFIX}/training-region"
BLUEPRINT = f"{PREFIX}/blueprint"
BLUEPRINT_VERSION = f"{PREFIX}/blueprint-version"
#: On a model: the regions and versions its servers serve (comma-separated).
SERVED_REGIONS = f"{PREFIX}/served-regions"
SERVED_VERSIONS = f"{PREFIX}/served-versions"
#: On a model server: where it runs and what it serves.
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

# Read by Backstage itself and by existing plugins.
SOURCE_LOCATION = "backstage.io/source-location"
TECHDOCS_REF = "backstage.io/techdocs-ref"
GITHUB_PROJECT_SLUG = "github.com/project-slug"
KUBERNETES_ID = "backstage.io/kubernetes-id"
KUBERNETES_LABEL_SELECTOR = "backstage.io/kubernetes-label-selector"
KUBERNETES_NAMESPACE = "backstage.io/kubernetes-namespace"
#: Roadie's Prometheus plugin: comma-separated ``query|groupLabel``.
PROMETHEUS_RULE = "prometheus.io/rule"
