"""Answers that look like YAML numbers, booleans or syntax stay strings in generated YAML.

Backstage reads ``catalog-info.yaml`` as YAML 1.2 (the ``yaml`` npm package), GitHub reads
workflows as YAML 1.2, and kubectl, GitLab and Copier read the rest. An answer written plain
(``system: 1e3``, ``name: true``) would be a number or a boolean to them. Each hostile render
is compared with a render of ordinary answers: same files, same structure, same types, and the
hostile answer wherever the ordinary one stood.
"""

from __future__ import annotations

from typing import Any

import pytest

from support.blueprints import render
from support.yaml_leaves import compare_renders, read_both, yaml_files

pytestmark = pytest.mark.backstage

ORDINARY: dict[str, Any] = {
    "project_name": "Fraud Detector",
    "project_slug": "fraud-detector",
    "description": "Scores card payments.",
    "owner": "group:default/risk-ml",
    "system": "payments",
    "repository": "acme/fraud-detector",
    "use_gpu": True,
    "container_registry": "registry.example.com/acme",
    "mlflow_tracking_uri": "http://mlflow.example:5000",
}

HOSTILE: dict[str, dict[str, Any]] = {
    "github-aws": {
        "ci": "github",
        "cloud": "aws",
        "project_name": "- x: y #z 'q' \"q\" ü 🚀",
        "project_slug": "true",
        "description": ": y #z\u2028- x\\n '1e3'",
        "owner": "group:1e3",
        "system": "1e3",
        "repository": "0o17/1_000",
        "container_registry": "1.5",
        "mlflow_tracking_uri": "http://h/x'y\"#z",
    },
    "gitlab-gcp": {
        "ci": "gitlab",
        "cloud": "gcp",
        "project_name": "0o17",
        "project_slug": "null",
        "description": "true",
        "owner": "user:0o17",
        "system": "0o17",
        "repository": "acme/yes",
        "container_registry": "1e3",
        "mlflow_tracking_uri": "http://1e3:5000/0o17",
    },
}

#: Answers compared by position: distinctive in the ordinary render, free text in the hostile.
#: (gpu_product is not free text: it is one of the products the cloud offers.)
COMPARED = ("project_slug", "system", "owner", "repository")


def _host(answers: dict[str, Any]) -> str:
    return str(answers["container_registry"]).split("/")[0]


@pytest.mark.parametrize("variant", sorted(HOSTILE))
def test_hostile_answers_stay_strings_in_every_generated_yaml_file(variant, tmp_path):
    hostile = {**ORDINARY, **HOSTILE[variant]}
    ordinary = {**ORDINARY, "ci": hostile["ci"], "cloud": hostile["cloud"]}
    expected = read_both(yaml_files(render(ordinary, tmp_path / "ordinary")))
    actual = read_both(yaml_files(render(hostile, tmp_path / "hostile")))

    stand_ins = {ordinary[key]: hostile[key] for key in COMPARED}
    stand_ins[_host(ordinary)] = _host(hostile)
    # The answers do stand alone as values in the generated files.
    assert compare_renders(expected, actual, stand_ins) > 50

    catalog = actual["catalog-info.yaml"]["yaml 1.2"]
    assert catalog[(0, "metadata", "name")] == hostile["project_slug"]
    assert catalog[(0, "metadata", "title")] == hostile["project_name"]
    assert catalog[(0, "metadata", "description")] == hostile["description"]
    assert catalog[(0, "spec", "system")] == hostile["system"]
    assert catalog[(0, "spec", "owner")] == hostile["owner"]
