import pytest

from trellis.catalog.validation import entity_problems


def resource(**changes):
    entity = {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Resource",
        "metadata": {"name": "m", "namespace": "default", "annotations": {"trellis.dev/x": "1"}},
        "spec": {"type": "ai-model", "owner": "group:default/team"},
    }
    for path, value in changes.items():
        target = entity
        *parents, leaf = path.split("__")
        for parent in parents:
            target = target[parent]
        target[leaf] = value
    return entity


def test_a_well_formed_resource_has_no_problem():
    assert entity_problems(resource()) == []


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"metadata__name": "bad name"}, "metadata.name"),
        ({"metadata__name": "x" * 64}, "metadata.name"),
        ({"metadata__namespace": "Default"}, "namespace"),
        ({"metadata__tags": ["UPPER"]}, "tags"),
        ({"metadata__annotations": {"no prefix!": "v"}}, "annotation key"),
        ({"metadata__annotations": {"a.b/c": 3}}, "string value"),
        ({"spec__owner": ""}, "spec.owner"),
        ({"spec__owner": "group:a/b/c"}, "spec.owner"),
        ({"spec__system": "system:default/bad name"}, "spec.system"),
        ({"kind": "Widget"}, "kind"),
        ({"apiVersion": "v1"}, "apiVersion"),
    ],
)
def test_each_broken_rule_is_named(changes, fragment):
    problems = entity_problems(resource(**changes))
    assert any(fragment in p for p in problems), problems
