"""Domain objects for pure tests: registered models with ready versions, model servers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from trellis.model import Deployment, ModelVersion, RegisteredModel

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
