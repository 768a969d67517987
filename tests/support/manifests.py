"""Render a generated repository's Kustomize overlays and validate every object offline.

Built-in kinds are checked with ``kubernetes-validate --strict`` (the upstream OpenAPI schemas
it bundles); custom resources with ``jsonschema`` against the CRD schemas in
``../shared/schemas/crds`` (or ``$TRELLIS_CRD_SCHEMAS``), laid out as
``<group>/<kind>_<version>.json``.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from support.timing import scaled
from support.tools import REPO, kubectl

#: Kubernetes version the built-in kinds are validated against (kubectl here is v1.32).
KUBERNETES_VERSION = "1.32.0"

#: Where a generated repository keeps one Kustomize overlay per region.
OVERLAYS = Path("deploy") / "overlays"

Manifest = dict[str, Any]


def crd_schema_dir() -> Path:
    """The folder of CRD JSON schemas: ``$TRELLIS_CRD_SCHEMAS``, else ``../shared/schemas/crds``."""
    configured = os.environ.get("TRELLIS_CRD_SCHEMAS")
    folder = Path(configured) if configured else REPO.parent / "shared" / "schemas" / "crds"
    if not folder.is_dir():
        raise AssertionError(
            f"CRD schemas not found at {folder}: set TRELLIS_CRD_SCHEMAS to a folder laid out as "
            "<group>/<kind>_<version>.json (see ../shared/schemas/README.md)"
        )
    return folder


def render_overlay(overlay: Path) -> list[Manifest]:
    """The objects ``kubectl kustomize`` renders from one overlay folder."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(overlay)],
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {overlay} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def render_overlays(repo: Path) -> dict[str, list[Manifest]]:
    """Overlay name (its folder under ``deploy/overlays``) → the objects it renders."""
    folders = sorted(p.parent for p in (repo / OVERLAYS).glob("*/kustomization.yaml"))
    return {folder.name: render_overlay(folder) for folder in folders}


def describe(obj: Manifest) -> str:
    """``Kind/name`` of an object, for messages."""
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def api_group(obj: Manifest) -> str:
    """The API group of an object (``""`` for the core group)."""
    api_version = str(obj.get("apiVersion", ""))
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def is_builtin(obj: Manifest) -> bool:
    """Whether the object belongs to a Kubernetes API group rather than to a CRD."""
    group = api_group(obj)
    return "." not in group or group.endswith(".k8s.io")


def validate_builtin(objects: Iterable[Manifest]) -> list[str]:
    """Strict schema errors of the built-in objects (custom resources are left out)."""
    errors: list[str] = []
    for obj in objects:
        if not is_builtin(obj):
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = ".".join(str(part) for part in error.path) or "(root)"
            errors.append(f"{describe(obj)}: {where}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            errors.append(f"{describe(obj)}: {error.message}")
    return errors


@functools.cache
def _crd_validator(path: Path) -> jsonschema.protocols.Validator:
    schema = json.loads(path.read_text())
    # No check_schema(): these schemas carry Go regular expressions (``(?i)`` mid-pattern)
    # that Python's ``re`` rejects; they only matter for fields the blueprints never set.
    return jsonschema.validators.validator_for(schema)(schema)


def crd_schema_path(obj: Manifest) -> Path:
    """Where the schema of a custom resource's kind and version lives."""
    version = str(obj.get("apiVersion", "")).rsplit("/", 1)[-1]
    name = f"{str(obj.get('kind', '')).lower()}_{version}.json"
    return crd_schema_dir() / api_group(obj) / name


def validate_custom(objects: Iterable[Manifest]) -> list[str]:
    """Schema errors of the custom resources; a kind without any schema is an error too."""
    errors: list[str] = []
    for obj in objects:
        if is_builtin(obj):
            continue
        path = crd_schema_path(obj)
        if not path.is_file():
            errors.append(
                f"{describe(obj)}: {obj.get('apiVersion')} is neither a built-in kind nor one "
                f"with a CRD schema (looked for {path})"
            )
            continue
        for error in _crd_validator(path).iter_errors(obj):
            where = ".".join(str(part) for part in error.absolute_path) or "(root)"
            errors.append(f"{describe(obj)}: {where}: {error.message}")
    return errors


@dataclass(frozen=True)
class Workload:
    """A pod that an object asks for: who owns it, its pod-level spec, containers and labels."""

    owner: str
    pod: Manifest
    containers: list[Manifest]
    labels: dict[str, str]


#: Kinds whose pod template sits at ``spec.template`` / ``spec.jobTemplate.spec.template``.
_TEMPLATED = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


def workloads(objects: Iterable[Manifest]) -> list[Workload]:
    """The pods the objects ask for, including KServe predictors (labelled as KServe does)."""
    found: list[Workload] = []
    for obj in objects:
        kind, spec = obj.get("kind"), obj.get("spec", {})
        template: Manifest | None = None
        if kind in _TEMPLATED:
            template = spec.get("template", {})
        elif kind == "CronJob":
            template = spec.get("jobTemplate", {}).get("spec", {}).get("template", {})
        if template is not None:
            pod = template.get("spec", {})
            labels = template.get("metadata", {}).get("labels", {})
            found.append(Workload(describe(obj), pod, list(pod.get("containers", [])), labels))
        elif kind == "InferenceService":
            predictor = spec.get("predictor", {})
            name = obj["metadata"]["name"]
            labels = {
                **obj["metadata"].get("labels", {}),
                **predictor.get("labels", {}),
                "serving.kserve.io/inferenceservice": name,
                "component": "predictor",
            }
            model = predictor.get("model")
            containers = [c for c in [model, *predictor.get("containers", [])] if c]
            found.append(Workload(describe(obj), predictor, containers, labels))
    return found
