"""Lineage tags of the adapter: where it comes from, what tuned it, and what the gate said."""

from __future__ import annotations

from . import project

#: Registered-model tags (the adapter as a whole).
MODEL_KIND = "model_kind"
PARENT_MODEL = "parent_model"
PARENT_VERSION = "parent_version"
DATA_REGION = "data_region"
TRAINING_REGION = "training_region"
DATA_CLASSIFICATION = "data_classification"
DATASET_FINGERPRINT = "dataset_fingerprint"
METHOD = "method"
GATE = "gate"


def model_tags(method: str) -> dict[str, str]:
    """Tags of the adapter's registered model."""
    return {
        MODEL_KIND: "adapter",
        PARENT_MODEL: project.HUB_MODEL,
        DATA_REGION: project.REGION,
        TRAINING_REGION: project.REGION,
        DATA_CLASSIFICATION: project.CLASSIFICATION,
        METHOD: method,
        "framework": "transformers",
        "task": "text-generation",
        "owner": project.OWNER,
        "system": project.SYSTEM,
        "source_repo": project.SOURCE_REPO,
        "blueprint": project.BLUEPRINT,
        "blueprint_version": project.blueprint_version(),
    }


def version_tags(
    *, parent_version: str, fingerprint: str, method: str, gate: str, metrics: dict[str, float]
) -> dict[str, str]:
    """Tags of one adapter version: its parent, its data's fingerprint, the gate and scores."""
    return {
        PARENT_MODEL: project.HUB_MODEL,
        PARENT_VERSION: parent_version,
        DATA_REGION: project.REGION,
        TRAINING_REGION: project.REGION,
        DATA_CLASSIFICATION: project.CLASSIFICATION,
        DATASET_FINGERPRINT: fingerprint,
        METHOD: method,
        GATE: gate,
        **{name: f"{value:.6f}" for name, value in sorted(metrics.items())},
    }
