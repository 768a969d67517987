"""Answers that look like YAML numbers, booleans or null stay strings in llm-service's YAML.

A render of hostile answers (``null``, ``1e3``, ``0o17``, ``true``) is compared with a render of
ordinary ones, leaf by leaf, as Backstage (YAML 1.2) and PyYAML (YAML 1.1) read them: same
files, same structure, same types, and the hostile answer wherever the ordinary one stood.
"""

from __future__ import annotations

from typing import Any

import pytest

from support.blueprints import render
from support.yaml_leaves import compare_renders, read_both, yaml_files

pytestmark = pytest.mark.backstage

COMMON: dict[str, Any] = {
    "model_source": "registry",
    "runtime": "vllm",
    "ci_system": "gitlab",
    "cloud_provider": "gcp",
    "min_replicas": 1,
}
ORDINARY: dict[str, Any] = {
    **COMMON,
    "service_name": "Contract Reader",
    "service_slug": "contract-reader",
    "service_system": "legal",
    "service_owner": "group:default/legal-ml",
    "service_repository": "acme/contract-reader",
    "registered_model": "llama-base",
    "served_model_name": "reader",
    "lora_adapters": ["llama-base-eu"],
    "gpu_type": "NVIDIA-L4",
}
HOSTILE: dict[str, Any] = {
    **COMMON,
    "service_name": "0o17",
    "service_slug": "null",
    "service_system": "1e3",
    "service_owner": "group:1e3",
    "service_repository": "0o17/1_000",
    "registered_model": "1e5",
    "served_model_name": "true",
    "lora_adapters": ["0o17"],
    "gpu_type": "0x1F",
}
COMPARED = ("service_slug", "service_system", "service_owner", "registered_model", "gpu_type")


def test_hostile_answers_stay_strings_in_every_generated_yaml_file(tmp_path):
    expected = read_both(
        yaml_files(render(ORDINARY, tmp_path / "ordinary", blueprint="llm-service"))
    )
    actual = read_both(yaml_files(render(HOSTILE, tmp_path / "hostile", blueprint="llm-service")))

    stand_ins = {ORDINARY[key]: HOSTILE[key] for key in COMPARED}
    assert compare_renders(expected, actual, stand_ins) > 20

    catalog = actual["catalog-info.yaml"]["yaml 1.2"]
    assert catalog[(0, "metadata", "name")] == "null"
    assert catalog[(0, "metadata", "title")] == "0o17"
    assert catalog[(0, "spec", "system")] == "1e3"
    assert catalog[(0, "metadata", "annotations", "trellis.dev/lora-adapters")] == "0o17"
    assert catalog[(0, "spec", "dependsOn", 0)] == "resource:default/1e5"
