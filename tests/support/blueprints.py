"""Render blueprints from this repository with Copier, as a user of Trellis would."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Protocol

REPO = Path(__file__).resolve().parents[2]

#: The variants every check runs on: sklearn/no GPU/GitHub/AWS with the defaults; PyTorch on
#: time-sliced spot GPUs with Triton, GitLab and GCP; three edge regions on Azure with MIG slices,
#: a 25 % canary and a staging deployment that keeps its replicas.
VARIANTS: dict[str, dict[str, Any]] = {
    "sklearn-github-aws": {
        "project_name": "Fraud Detector",
        "framework": "sklearn",
        "task": "classification",
        "use_gpu": False,
        "ci": "github",
        "cloud": "aws",
        "hub_region": "eu-west-1",
        "edge_regions": ["us-east-1"],
        "data_classification": "confidential",
        "owner": "group:default/risk-ml",
        "system": "payments",
    },
    "pytorch-gpu-gitlab-gcp": {
        "project_name": "Demand Forecast",
        "framework": "pytorch",
        "task": "regression",
        "use_gpu": True,
        "gpu_count": 2,
        "gpu_product": "NVIDIA-L4",
        "serving_runtime": "triton",
        "gpu_capacity": "spot",
        "gpu_sharing": "time-slicing",
        "ci": "gitlab",
        "cloud": "gcp",
        "hub_region": "europe-west4",
        "edge_regions": ["us-central1"],
        "data_classification": "internal",
        "repository": "acme/forecasting/demand-forecast",
    },
    "three-edges-azure": {
        "project_name": "Churn Predictor",
        "framework": "sklearn",
        "task": "classification",
        "use_gpu": True,
        "gpu_count": 1,
        "gpu_product": "NVIDIA-A100-80GB-PCIe",
        "gpu_sharing": "mig",
        "mig_profile": "2g.20gb",
        "ci": "github",
        "cloud": "azure",
        "canary_traffic_percent": 25,
        "scale_to_zero": False,
        "hub_region": "westeurope",
        "edge_regions": ["eastus", "southeastasia", "uksouth"],
        "data_classification": "restricted",
    },
}


#: The llm-service variants every check runs on: KServe with a Hugging Face import, GitHub and
#: AWS, scaling to zero with one regional adapter; plain vLLM on two GPUs with a model already in
#: the registry, AWQ, GitLab and Google Cloud.
LLM_VARIANTS: dict[str, dict[str, Any]] = {
    "kserve-github-aws": {
        "service_name": "Support Assistant",
        "model_source": "huggingface",
        "hf_model_id": "Qwen/Qwen2.5-0.5B-Instruct",
        "hf_revision": "7ae557604adf67be50417f59c2c2f167def9a775",
        "model_license": "apache-2.0",
        "lora_adapters": ["qwen2-5-0-5b-instruct-eu-west-1"],
        "runtime": "kserve",
        "gpus": 1,
        "min_replicas": 0,
        "max_replicas": 3,
        "regions": ["eu-west-1", "us-east-1"],
        "ci_system": "github",
        "cloud_provider": "aws",
        "service_data_classification": "confidential",
        "service_owner": "group:default/assistants",
        "service_system": "customer-care",
    },
    "vllm-gitlab-gcp": {
        "service_name": "Contract Reader",
        "model_source": "registry",
        "registered_model": "llama-3-1-8b-instruct",
        "allowed_licenses": ["apache-2.0", "mit", "llama3.1"],
        "model_license": "llama3.1",
        "served_model_name": "contract-reader",
        "lora_adapters": [],
        "runtime": "vllm",
        "gpus": 2,
        "gpu_type": "NVIDIA-L4",
        "tensor_parallel_size": 2,
        "max_model_len": 16384,
        "quantization": "awq",
        "min_replicas": 1,
        "max_replicas": 4,
        "regions": ["europe-west4", "us-central1"],
        "ci_system": "gitlab",
        "cloud_provider": "gcp",
        "service_data_classification": "internal",
        "service_repository": "acme/legal/contract-reader",
    },
}


#: The edge-finetune variants every check runs on: LoRA on demand with GitHub and AWS; QLoRA
#: on a schedule with GitLab and Google Cloud.
FINETUNE_VARIANTS: dict[str, dict[str, Any]] = {
    "lora-github-aws": {
        "hub_model": "support-assistant",
        "target_cloud": "aws",
        "data_region": "eu-central-1",
        "method": "lora",
        "lora_rank": 8,
        "ci_provider": "github",
        "classification": "confidential",
        "allowed_classifications": ["internal", "confidential"],
        "team": "group:default/support-ml",
        "catalog_system": "support",
    },
    "qlora-gitlab-gcp": {
        "hub_model": "claims-summariser",
        "target_cloud": "gcp",
        "data_region": "europe-west3",
        "method": "qlora",
        "job_gpus": 2,
        "job_gpu_type": "NVIDIA-A100-SXM4-40GB",
        "schedule": "30 2 * * 1",
        "ci_provider": "gitlab",
        "classification": "restricted",
        "allowed_classifications": ["restricted"],
        "min_loss_improvement": 0.05,
        "max_perplexity": 40.0,
        "repo_path": "acme/claims/claims-summariser-de",
        "adapter_name": "claims-summariser-de",
    },
}


#: The platform-hub variants every check runs on, one per cloud: a new EKS cluster on AWS with
#: GitHub and one spoke; a new GKE cluster with spot A100s, three Trellis replicas and GitLab on
#: Google Cloud; an existing AKS cluster with spot H100s and a fleet of 1,000 models on Azure.
HUB_VARIANTS: dict[str, dict[str, Any]] = {
    "create-github-aws": {
        "hub_name": "acme-hub",
        "hub_cloud": "aws",
        "hub_cloud_region": "eu-west-1",
        "hub_spoke_contexts": ["spoke-eu-central-1"],
        "hub_ci_provider": "github",
        "hub_team": "group:default/platform",
        "hub_repo_path": "acme/acme-hub",
    },
    "spot-gitlab-gcp": {
        "hub_name": "ml-hub",
        "hub_cloud": "gcp",
        "hub_cloud_region": "europe-west4",
        "hub_gcp_project": "acme-ml-hub",
        "hub_gpu_product": "NVIDIA-A100-SXM4-80GB",
        "hub_gpu_min_nodes": 1,
        "hub_gpu_max_nodes": 8,
        "hub_gpu_spot": True,
        "hub_trellis_replicas": 3,
        "hub_ci_provider": "gitlab",
        "hub_team": "group:default/ml-platform",
        "hub_repo_path": "acme/platform/ml-hub",
    },
    "attach-azure": {
        "hub_name": "contoso-hub",
        "hub_cloud": "azure",
        "hub_cloud_region": "westeurope",
        "hub_existing_cluster": (
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-aks"
            "/providers/Microsoft.ContainerService/managedClusters/aks-shared"
        ),
        "hub_gpu_product": "NVIDIA-H100-80GB-HBM3",
        "hub_gpu_spot": True,
        "hub_models": 1000,
        "hub_spoke_contexts": ["spoke-uksouth", "spoke-swedencentral"],
        "hub_backstage_catalog": "url-location",
        "hub_team": "group:default/platform",
        "hub_repo_path": "contoso/contoso-hub",
    },
}


#: The platform-spoke variants every check runs on, one per cloud: Europe on AWS with a
#: fine-tuning pool and an agent writing to the hub; India on Google Cloud with GitLab and two
#: address ranges; South-East Asia on Azure with two model namespaces and a local Prometheus.
SPOKE_VARIANTS: dict[str, dict[str, Any]] = {
    "aws-eu-west": {
        "spoke_cloud": "aws",
        "spoke_region": "eu-west-1",
        "spoke_name": "eu-west",
        "spoke_finetune_pool": True,
        "spoke_finetune_max_nodes": 3,
        "spoke_ci_provider": "github",
        "spoke_team": "group:default/ml-platform",
        "spoke_repo_path": "acme/platform-spoke-eu-west",
    },
    "gcp-ap-south": {
        "spoke_cloud": "gcp",
        "spoke_region": "asia-south1",
        "spoke_name": "ap-south",
        "spoke_gpu_product": "Tesla-T4",
        "spoke_inference_min_nodes": 0,
        "spoke_inference_max_nodes": 4,
        "spoke_allowed_cidrs": ["10.40.0.0/16", "10.41.0.0/20"],
        "spoke_ci_provider": "gitlab",
        "spoke_team": "group:default/ml-platform",
        "spoke_repo_path": "acme/platform/spoke-ap-south",
    },
    "azure-ap-southeast": {
        "spoke_cloud": "azure",
        "spoke_region": "southeastasia",
        "spoke_name": "ap-southeast",
        "spoke_gpu_product": "NVIDIA-A100-80GB-PCIe",
        "spoke_finetune_pool": True,
        "spoke_remote_write_url": "",
        "spoke_workload_namespaces": ["models", "llm-serving"],
        "spoke_team": "group:default/ml-platform",
        "spoke_repo_path": "acme/platform-spoke-ap-southeast",
    },
}


#: Blueprint → its variants' answers, by variant name.
BLUEPRINTS: dict[str, dict[str, dict[str, Any]]] = {
    "ml-model": VARIANTS,
    "llm-service": LLM_VARIANTS,
    "edge-finetune": FINETUNE_VARIANTS,
    "platform-hub": HUB_VARIANTS,
    "platform-spoke": SPOKE_VARIANTS,
}

#: (variant name, its answers, the rendered repository).
Variant = tuple[str, dict[str, Any], Path]


class Folders(Protocol):
    """Where to put a new folder (pytest's ``tmp_path_factory``)."""

    def mktemp(self, basename: str) -> Path: ...


class Renders:
    """Every variant rendered at most once, when something first needs it."""

    def __init__(self, folders: Folders) -> None:
        self._folders = folders
        self._repos: dict[tuple[str, str], Path] = {}

    def get(self, blueprint: str, name: str) -> Variant:
        """The variant ``name`` of ``blueprint``, rendered."""
        answers = BLUEPRINTS[blueprint][name]
        if (blueprint, name) not in self._repos:
            folder = self._folders.mktemp(name) / "repo"
            self._repos[blueprint, name] = render(answers, folder, blueprint=blueprint)
        return name, answers, self._repos[blueprint, name]

    def all(self, blueprint: str) -> dict[str, Path]:
        """Variant name → rendered repository, for every variant of ``blueprint``."""
        return {name: self.get(blueprint, name)[2] for name in sorted(BLUEPRINTS[blueprint])}


def render(
    answers: dict[str, Any],
    dest: Path,
    *,
    src: Path = REPO,
    vcs_ref: str = "HEAD",
    blueprint: str = "ml-model",
) -> Path:
    """Render ``blueprint`` with ``answers`` (defaults for the rest) into ``dest``."""
    from copier import run_copy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DirtyLocalWarning while the template is being edited
        run_copy(
            str(src),
            dest,
            data={"blueprint": blueprint, **answers},
            defaults=True,
            vcs_ref=vcs_ref,
            quiet=True,
        )
    return dest
