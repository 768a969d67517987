"""A generated repository's entity: the ref it records, else one named after its folder."""

from __future__ import annotations

from trellis import annotations as ann
from trellis.catalog.repositories import repository_entity
from trellis.model import BlueprintInstance


def instance(location: str, entity_ref: str | None) -> BlueprintInstance:
    return BlueprintInstance(location, "ml-model", "1.0.0", "https://git.example/t", entity_ref)


def test_the_recorded_ref_names_the_entity():
    ref, entity = repository_entity(instance("https://git.example/team/app", "Component:Team/App"))
    assert ref == "component:team/App"  # kind and namespace compare in lower case, names as is
    assert entity["kind"] == "Component"
    assert entity["metadata"]["annotations"] == {ann.BLUEPRINT: "ml-model"}


def test_without_a_recorded_ref_the_folder_names_a_component_in_default():
    ref, entity = repository_entity(instance("/srv/repos/fraud-model", None))
    assert ref == "component:default/fraud-model"
    assert entity["metadata"]["name"] == "fraud-model"
    assert entity["apiVersion"] == "backstage.io/v1alpha1"
