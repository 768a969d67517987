"""Domain objects for pure tests: registered models, model servers, blueprints."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from trellis.model import (
    Blueprint,
    Deployment,
    ModelVersion,
    Page,
    Publish,
    Question,
    RegisteredModel,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def registered_model(
    name: str,
    tags: Mapping[str, str] | None = None,
    aliases: Mapping[str, int] | None = None,
    versions: int = 2,
    description: str = "",
) -> RegisteredModel:
    """A model with versions 1..``versions``, all READY, created at ``T0``."""
    return RegisteredModel(
        name=name,
        description=description,
        tags=dict(tags or {}),
        aliases=dict(aliases or {}),
        created_at=T0,
        updated_at=T0,
        versions=tuple(
            ModelVersion(name, v, "READY", f"s3://b/{v}", None, "", {}, T0, T0)
            for v in range(1, versions + 1)
        ),
    )


def model_server(cluster: str, name: str, ready: int = 1) -> Deployment:
    """A plain KServe server in namespace ``ml`` of ``cluster`` (its region too)."""
    return Deployment(
        cluster=cluster,
        region=cluster,
        namespace="ml",
        name=name,
        kind="InferenceService",
        runtime="kserve-mlserver",
        model_name=None,
        model_version=None,
        ready_replicas=ready,
        desired_replicas=1,
        gpu_requests=0,
        gpu_limits=0,
        gpu_product=None,
        url=None,
        conditions=(),
        network_policy=False,
        selector={"app": name},
    )


def open_model(name: str, license_id: str = "apache-2.0") -> RegisteredModel:
    """An open model imported once into the registry, tagged as the `llm-service` import does."""
    revision = "0" * 39 + "1"
    tags = {
        "model_kind": "base",
        "license": license_id,
        "upstream": "hf://acme/tiny-llm",
        "upstream_revision": revision,
        "framework": "transformers",
        "task": "text-generation",
        "owner": "llm-platform",
    }
    version = {"upstream": "hf://acme/tiny-llm", "upstream_revision": revision,
               "license": license_id, "size_bytes": "1024", "sha256": "ab" * 32}  # fmt: skip
    return RegisteredModel(
        name=name,
        description="",
        tags=tags,
        aliases={"champion": 1},
        created_at=T0,
        updated_at=T0,
        versions=(ModelVersion(name, 1, "READY", "s3://b/model", None, "", version, T0, T0),),
    )


_ADAPTER_TAGS = {
    "model_kind": "adapter",
    "framework": "transformers",
    "task": "text-generation",
    "owner": "llm-platform",
}


def regional_adapter(
    name: str,
    parent: str,
    data_region: str,
    *,
    training_region: str | None = None,
    classification: str = "restricted",
) -> RegisteredModel:
    """A regional adapter of ``parent``, tagged as the `edge-finetune` job registers it."""
    lineage = {
        "parent_model": parent,
        "data_region": data_region,
        "training_region": training_region or data_region,
        "data_classification": classification,
        "method": "lora",
    }
    version = {**lineage, "parent_version": "1", "dataset_fingerprint": "cd" * 32, "gate": "passed"}
    return RegisteredModel(
        name=name,
        description="",
        tags={**lineage, **_ADAPTER_TAGS},
        aliases={"champion": 1},
        created_at=T0,
        updated_at=T0,
        versions=(ModelVersion(name, 1, "READY", "s3://b/adapter", None, "", version, T0, T0),),
    )


def template_blueprint(**overrides: object) -> Blueprint:
    """A blueprint with a question of each type, two pages and a publish step."""
    questions = (
        Question("name", "str", "Human name", "Demo"),
        Question("slug", "str", "Short name", "{{ name | lower }}"),
        Question("team", "str", "Owning group", "group:default/ml"),
        Question("flavour", "str", "Flavour", "a", choices={"a": "Apple", "b": "Banana"}),
        Question("gpu", "bool", "Use GPUs", "{{ flavour == 'b' }}"),
        Question("gpus", "int", "How many", 1, condition=("gpu", True)),
        Question("regions", "yaml", "Regions", ["eu"]),
        Question("api_key", "str", "Key for the registry", None, secret=True),
        Question("host", "str", "Where to publish", "github", choices={"github": "GitHub"}),
        Question("repo", "str", "owner/name", None),
    )
    fields: dict[str, object] = {
        "name": "demo",
        "title": "Demo",
        "description": "A demo blueprint.",
        "owner": "group:default/platform",
        "type": "service",
        "tags": ("ml",),
        "questions": questions,
        "pages": (
            Page("About", ("name", "slug", "team", "repo")),
            Page("Shape", ("flavour", "gpu", "gpus", "regions", "api_key", "host")),
        ),
        "required": ("name", "repo"),
        "form": {"team": {"ui:field": "OwnerPicker"}, "slug": {"pattern": "^[a-z]+$"}},
        "publish": Publish(repository="repo", selector="host", hosts={"github": "github.com"}),
    }
    fields.update(overrides)
    return Blueprint(**fields)  # type: ignore[arg-type]
