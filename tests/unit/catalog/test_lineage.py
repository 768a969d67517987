"""Hub-to-region lineage in the catalog: adapters depend on their base model, bases list them."""

from dataclasses import replace

import pytest

from support.domain import T0, model_server, open_model, regional_adapter, registered_model
from trellis.catalog import CatalogOptions, build_catalog, entity_problems
from trellis.catalog.names import is_valid_tag
from trellis.model import Snapshot

OPTIONS = CatalogOptions()
BASE = open_model("Qwen2 0.5B Instruct")
EU = regional_adapter("Qwen2 0.5B Instruct-eu-west-1", BASE.name, "eu-west-1")
AP = regional_adapter("qwen2-ap-south-1", BASE.name, "ap-south-1", training_region="us-east-1")


def catalog(*models, deployments=()):
    snapshot = Snapshot(
        models=tuple(models), taken_at=T0, registry="sqlite:///x", deployments=tuple(deployments)
    )
    return build_catalog(snapshot, OPTIONS)


def resources(result):
    return {e["metadata"]["title"]: e for e in result.entities if e["kind"] == "Resource"}


def ref(entity):
    return f"resource:default/{entity['metadata']['name']}"


def test_an_adapter_depends_on_its_base_model_and_the_base_lists_its_adapters():
    result = catalog(BASE, EU, AP)
    found = resources(result)
    base, eu, ap = found[BASE.name], found[EU.name], found[AP.name]
    assert eu["spec"]["dependsOn"] == [ref(base)]
    assert ap["spec"]["dependsOn"] == [ref(base)]
    assert base["metadata"]["annotations"]["trellis.dev/adapters"] == ",".join(
        sorted([ref(eu), ref(ap)])
    )
    assert "dependsOn" not in base["spec"]
    assert result.problems == ()


def test_an_adapter_carries_its_region_method_parent_and_fingerprint():
    annotations = resources(catalog(BASE, AP))[AP.name]["metadata"]["annotations"]
    assert (
        annotations.items()
        >= {
            "trellis.dev/model-kind": "adapter",
            "trellis.dev/region": "ap-south-1",
            "trellis.dev/training-region": "us-east-1",
            "trellis.dev/method": "lora",
            "trellis.dev/parent-model": BASE.name,
            "trellis.dev/parent-version": "1",  # a version tag, from the champion version
            "trellis.dev/dataset-fingerprint": "cd" * 32,
            "trellis.dev/data-classification": "restricted",
        }.items()
    )


def test_an_imported_base_model_carries_its_licence_upstream_and_revision():
    base = resources(catalog(BASE))[BASE.name]
    annotations = base["metadata"]["annotations"]
    assert annotations["trellis.dev/model-kind"] == "base"
    assert annotations["trellis.dev/license"] == "apache-2.0"
    assert annotations["trellis.dev/upstream"] == "hf://acme/tiny-llm"
    assert annotations["trellis.dev/upstream-revision"] == "0" * 39 + "1"
    assert "trellis.dev/parent-model" not in annotations
    assert base["metadata"]["tags"] == ["base", "text-generation", "transformers"]


def test_lineage_tags_become_valid_backstage_tags():
    tags = resources(catalog(BASE, EU))[EU.name]["metadata"]["tags"]
    assert tags == ["adapter", "lora", "text-generation", "transformers"]
    assert all(is_valid_tag(tag) for tag in tags)


def test_a_model_trained_here_gets_no_lineage_annotations():
    plain = registered_model("fraud", {"owner": "risk", "model_kind": "something-else"})
    annotations = resources(catalog(plain))["fraud"]["metadata"]["annotations"]
    assert not any(
        key in annotations
        for key in ("trellis.dev/model-kind", "trellis.dev/parent-model", "trellis.dev/adapters")
    )


@pytest.mark.parametrize(
    ("parent", "why"),
    [
        ("gone-from-the-registry", "not in the registry"),
        ("", "names no parent model"),
        ("qwen2-ap-south-1", "names itself"),
    ],
)
def test_an_adapter_without_its_parent_is_emitted_without_a_dangling_relation(parent, why):
    orphan = regional_adapter("qwen2-ap-south-1", parent, "ap-south-1")
    result = catalog(BASE, orphan)
    entity = resources(result)[orphan.name]
    assert "dependsOn" not in entity["spec"]
    assert entity_problems(entity) == []
    assert [(p.model, p.severity) for p in result.problems] == [(orphan.name, "warning")]
    assert why in result.problems[0].message
    assert "trellis.dev/adapters" not in resources(result)[BASE.name]["metadata"]["annotations"]


@pytest.mark.parametrize(
    "hostile",
    ["Qwen/2 · 0.5B ✨", "qwen/2 · 0.5b ✨", "a" * 80, "../../etc", "名前"],
)
def test_hostile_parent_names_resolve_to_the_parents_own_entity(hostile):
    bases = [open_model(hostile), open_model("qwen-2-0.5b")]
    adapter = regional_adapter("region-adapter", hostile, "eu-west-1")
    found = resources(catalog(*bases, adapter))
    assert found["region-adapter"]["spec"]["dependsOn"] == [ref(found[hostile])]
    assert all(entity_problems(e) == [] for e in found.values())


def test_a_server_depends_on_its_base_model_and_each_adapter_it_serves():
    server = replace(
        model_server("eu-west-1", "qwen"),
        model_name=BASE.name,
        runtime="vllm",
        adapters=(AP.name, EU.name, "not-registered"),
    )
    result = catalog(BASE, EU, AP, deployments=[server])
    found = resources(result)
    component = next(e for e in result.entities if e["kind"] == "Component")
    expected = [ref(found[BASE.name]), ref(found[AP.name]), ref(found[EU.name])]
    assert component["spec"]["dependsOn"] == expected
    assert component["metadata"]["annotations"]["trellis.dev/lora-adapters"] == (
        f"{AP.name},{EU.name},not-registered"
    )
    assert [p.message for p in result.problems if p.model == "not-registered"] == [
        "model server InferenceService ml/qwen in cluster eu-west-1 serves the adapter "
        "'not-registered', which is not a registered model"
    ]
    # The adapter's page knows where it is served, and its target holds that server.
    assert found[EU.name]["metadata"]["annotations"]["trellis.dev/served-regions"] == "eu-west-1"
    assert "trellis.dev/served-versions" not in found[EU.name]["metadata"]["annotations"]
    assert result.targets[ref(found[EU.name])].deployments == (server,)
