import yaml

from support.domain import T0, registered_model
from trellis.catalog import CatalogDocument, CatalogOptions, build_catalog
from trellis.model import Snapshot

model = registered_model


def snapshot(*models):
    return Snapshot(models=tuple(models), taken_at=T0, registry="sqlite:///x")


OPTIONS = CatalogOptions(mlflow_ui_url="http://mlflow.example")


def by_name(catalog):
    return {(e["kind"], e["metadata"]["name"]): e for e in catalog.entities}


def test_a_champion_model_is_a_production_resource_with_annotations_and_links():
    catalog = build_catalog(
        snapshot(
            model(
                "Fraud Detector",
                tags={
                    "owner": "risk-ml",
                    "system": "payments",
                    "data_classification": "confidential",
                    "source_repo": "https://github.com/acme/fraud",
                    "framework": "sklearn",
                    "tags": "tabular, Real Time",
                },
                aliases={"champion": 2},
                versions=3,
                description="Flags fraud.",
            )
        ),
        OPTIONS,
    )
    entity = by_name(catalog)[("Resource", "fraud-detector")]
    assert entity["metadata"]["title"] == "Fraud Detector"
    assert entity["metadata"]["tags"] == ["real-time", "sklearn", "tabular"]
    assert entity["spec"] == {
        "type": "ai-model",
        "owner": "group:default/risk-ml",
        "lifecycle": "production",
        "system": "system:default/payments",
    }
    annotations = entity["metadata"]["annotations"]
    assert annotations["trellis.dev/registered-model"] == "Fraud Detector"
    assert annotations["trellis.dev/champion-version"] == "2"
    assert annotations["trellis.dev/latest-version"] == "3"
    assert annotations["github.com/project-slug"] == "acme/fraud"
    assert annotations["backstage.io/source-location"] == "url:https://github.com/acme/fraud"
    urls = [link["url"] for link in entity["metadata"]["links"]]
    assert "http://mlflow.example/#/models/Fraud%20Detector" in urls
    assert "http://mlflow.example/#/models/Fraud%20Detector/versions/2" in urls
    system = by_name(catalog)[("System", "payments")]
    assert system["spec"]["owner"] == "group:default/risk-ml"


def test_without_owner_or_champion_the_fallback_owner_and_experimental_apply():
    catalog = build_catalog(snapshot(model("m")), OPTIONS)
    spec = by_name(catalog)[("Resource", "m")]["spec"]
    assert spec["owner"] == OPTIONS.fallback_owner
    assert spec["lifecycle"] == "experimental"


def test_systems_can_be_switched_off():
    snap = snapshot(model("m", tags={"system": "payments"}))
    catalog = build_catalog(snap, CatalogOptions(emit_systems=False))
    assert [e["kind"] for e in catalog.entities] == ["Resource"]
    assert catalog.entities[0]["spec"]["system"] == "system:default/payments"


def test_a_script_url_never_becomes_a_link_or_annotation():
    catalog = build_catalog(
        snapshot(model("m", tags={"source_repo": "javascript:alert(1)"})), CatalogOptions()
    )
    metadata = catalog.entities[0]["metadata"]
    assert "links" not in metadata
    assert "backstage.io/source-location" not in metadata["annotations"]


def test_an_entity_that_cannot_be_valid_is_left_out_and_reported():
    def broken(model, naming, options, problems):
        return {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Resource",
            "metadata": {"name": "not valid!", "title": model.name},
            "spec": {},
        }

    catalog = build_catalog(snapshot(model("a"), model("b")), OPTIONS, transform=broken)
    assert catalog.entities == ()
    assert [p.model for p in catalog.problems if p.severity == "error"] == ["a", "b"]
    assert "metadata.name" in catalog.problems[0].message


def test_unusable_owner_and_tags_are_warnings_not_losses():
    catalog = build_catalog(snapshot(model("m", tags={"owner": "!!!", "tags": "🔥"})), OPTIONS)
    assert len(catalog.entities) == 1
    messages = [p.message for p in catalog.problems]
    assert any("owner tag" in m for m in messages)
    assert any("tag '🔥' left out" in m for m in messages)


def test_the_same_snapshot_renders_byte_identical_yaml_with_the_same_etag():
    snap = snapshot(model("b", tags={"system": "s"}), model("a"), model("Ä"))
    first = CatalogDocument.build(build_catalog(snap, OPTIONS), taken_at=T0, model_count=3)
    second = CatalogDocument.build(build_catalog(snap, OPTIONS), taken_at=T0, model_count=3)
    assert first.yaml == second.yaml and first.yaml_etag == second.yaml_etag
    docs = list(yaml.safe_load_all(first.yaml))
    names = [d["metadata"]["name"] for d in docs]
    assert names[:2] == ["s", "a"] and names[3] == "b"
    assert names[2].startswith("a-") and len(names[2]) == len("a-") + 10
    assert docs[2]["metadata"]["title"] == "Ä"
    assert first.yaml.count(b"\n---\n") + 1 == len(docs)
