"""Every string Trellis writes as YAML reads back as the same string in Backstage (YAML 1.2).

Backstage reads catalog files with the ``yaml`` npm package (YAML 1.2, core schema); Trellis
and Copier read YAML with PyYAML (YAML 1.1). A string that one of them takes for a number, a
boolean or null makes an invalid entity, and one invalid entity freezes a whole url location.
These tests parse what Trellis writes with both readers, through the Node harness (one Node
process per batch of examples), and compare with the JSON form of the same data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.backstage import parse_yaml
from support.domain import T0, registered_model
from trellis.blueprints.template import template_entity
from trellis.catalog import CatalogDocument, CatalogOptions, build_catalog
from trellis.model import (
    Blueprint,
    Condition,
    Deployment,
    Page,
    Publish,
    Question,
    Runtime,
    Snapshot,
)
from trellis.services.scaffolding import Scaffolder
from trellis.sources.repositories import Repositories
from trellis.wiring import render_pool

pytestmark = pytest.mark.backstage

REPO = Path(__file__).resolve().parents[1]

# The plain scalars that YAML 1.2's core schema resolves to something other than a string
# (yaml.org/spec/1.2.2, 10.3.2), generated rather than listed.
CORE_SCHEMA_FORMS = st.one_of(
    st.from_regex(r"[-+]?[0-9]+", fullmatch=True),
    st.from_regex(r"0o[0-7]+", fullmatch=True),
    st.from_regex(r"0x[0-9a-fA-F]+", fullmatch=True),
    st.from_regex(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?", fullmatch=True),
    st.sampled_from(
        ["~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE"]
        + [s + i for s in ("", "-", "+") for i in (".inf", ".Inf", ".INF")]
        + [".nan", ".NaN", ".NAN"]
    ),
)
# What YAML 1.1 (PyYAML, Copier) resolves to something other than a string.
YAML_11_FORMS = st.one_of(
    st.sampled_from(["yes", "No", "ON", "off", "y", "n", "<<", "=", "2026-12-02", "0b101"]),
    st.from_regex(r"[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?", fullmatch=True),
    st.from_regex(r"[-+]?[0-9][0-9_]*\.?[0-9_]*([eE][-+][0-9]+)?", fullmatch=True),
)
# Indicators, and characters the two YAML versions treat differently (line separators).
SYNTAX = st.tuples(
    st.sampled_from([*"-?:,[]{}#&*!|>'\"%@`", "- ", ": ", " #", "---", "..."]),
    st.sampled_from(["", " ", "x", " y", "\t"]),
).map("".join)
ODD_CHARACTERS = st.lists(
    st.sampled_from(["\u2028", "\u2029", "\x85", "\ufeff", "\t", "\n", "\r", " ", "\\", "🚀", "é"]),
    min_size=1,
    max_size=4,
).map("".join)
PIECE = st.one_of(CORE_SCHEMA_FORMS, YAML_11_FORMS, SYNTAX, ODD_CHARACTERS, st.text(max_size=20))
NAMES = st.one_of(PIECE, st.tuples(PIECE, PIECE).map("".join))

RUNTIMES = (Runtime.MLSERVER, Runtime.VLLM, "custom")


def _server(index: int, model: str) -> Deployment:
    name = f"server-{index}"
    return Deployment(
        cluster="hub",
        region="eu-west-1",
        namespace="serving",
        name=name,
        kind="InferenceService" if index % 2 else "Deployment",
        runtime=RUNTIMES[index % len(RUNTIMES)],
        model_name=model,
        model_version="champion",
        ready_replicas=1,
        desired_replicas=1,
        gpu_requests=0,
        gpu_limits=0,
        gpu_product=None,
        url=f"http://{name}.serving.example",
        conditions=(Condition("Ready", "True"),),
        network_policy=True,
        selector={"app": name},
    )


def _document(texts: list[str]) -> CatalogDocument:
    """A catalog where every generated text is a model's name, description and tag values."""
    n = len(texts)
    models = tuple(
        registered_model(
            text,
            tags={
                "system": texts[(i + 1) % n],
                "owner": texts[(i + 2) % n],
                "data_classification": texts[(i + 3) % n],
                "training_region": texts[(i + 4) % n],
            },
            aliases={"champion": 1},
            description=texts[(i + 1) % n],
        )
        for i, text in enumerate(texts)
    )
    deployments = tuple(_server(i, text) for i, text in enumerate(texts))
    snapshot = Snapshot(models=models, taken_at=T0, registry="x", deployments=deployments)
    catalog = build_catalog(snapshot, CatalogOptions(mlflow_ui_url="http://mlflow.example"))
    return CatalogDocument.build(catalog, taken_at=T0, model_count=len(models))


def _documents_or_errors(parsed: list[dict[str, Any]]) -> list[Any]:
    return [d["value"] if not d["errors"] else {"YAML errors": d["errors"]} for d in parsed]


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(NAMES, min_size=1, max_size=10, unique=True))
def test_every_name_reads_back_in_backstage_as_the_json_form_says(texts):
    document = _document(texts)
    expected = json.loads(document.json)["items"]
    assert expected, "the catalog is empty: the property would hold vacuously"
    definitions = [e["spec"]["definition"] for e in expected if e["kind"] == "API"]
    parsed_catalog, *parsed_definitions = parse_yaml([document.yaml, *definitions])

    assert _documents_or_errors(parsed_catalog) == expected
    assert list(yaml.safe_load_all(document.yaml)) == expected
    for text, parsed in zip(definitions, parsed_definitions, strict=True):
        assert _documents_or_errors(parsed) == [yaml.safe_load(text)]


class _Blueprints:
    """A blueprint source holding one blueprint, for the Software Template writer."""

    def __init__(self, blueprint: Blueprint) -> None:
        self._blueprint = blueprint

    def names(self) -> list[str]:
        return [self._blueprint.name]

    def blueprint(self, name: str) -> Blueprint:
        return self._blueprint


def _blueprint(texts: list[str]) -> Blueprint:
    """A blueprint whose title, description, tags, help texts, defaults and choices are texts."""
    n = len(texts)
    questions = tuple(
        Question(
            f"q{i}",
            "str",
            text,
            texts[(i + 1) % n],
            choices={texts[(i + 2) % n]: "a", "b": texts[(i + 3) % n]} if i % 2 else None,
        )
        for i, text in enumerate(texts)
    )
    return Blueprint(
        name="hostile",
        title=texts[0],
        description=texts[-1],
        owner="group:default/platform",
        type="service",
        tags=tuple(texts),
        questions=(*questions, Question("repo", "str", "owner/name", None)),
        pages=(Page(texts[0], (*(q.name for q in questions), "repo")),),
        required=("repo",),
        form={},
        publish=Publish(repository="repo", selector=None, hosts={"github": "github.com"}),
    )


@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(NAMES, min_size=1, max_size=8))
def test_software_templates_read_back_in_backstage_as_written(texts):
    blueprint = _blueprint(texts)
    scaffolder = Scaffolder(
        _Blueprints(blueprint),  # type: ignore[arg-type]
        renders=render_pool(),
        reader=Repositories(),
    )
    files = scaffolder.template_files()
    parsed = parse_yaml(list(files.values()))
    template = files["hostile.yaml"]
    expected = json.loads(json.dumps(template_entity(blueprint)))

    assert _documents_or_errors(parsed[list(files).index("hostile.yaml")]) == [expected]
    assert list(yaml.safe_load_all(template)) == [expected]
