"""A blueprint as a Backstage Software Template: the form follows the questions."""

from __future__ import annotations

import pytest

from support.backstage import validate_entities
from trellis.blueprints import answers_schema, check_answers
from trellis.blueprints.template import RENDER_ACTION, location_entity, template_entity
from trellis.errors import AnswerError, ConfigError
from trellis.model import Blueprint, Page, Publish, Question


def blueprint(**overrides: object) -> Blueprint:
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


def test_pages_follow_the_questions_with_types_choices_and_hints():
    about, shape = template_entity(blueprint())["spec"]["parameters"]
    assert about["title"] == "About" and about["required"] == ["name", "repo"]
    props = about["properties"]
    assert "default" not in props["name"]  # required: no guessed default
    assert props["slug"]["pattern"] == "^[a-z]+$"
    assert "default" not in props["slug"] and "derive" in props["slug"]["description"]
    assert props["team"]["ui:field"] == "OwnerPicker"
    assert props["team"]["default"] == "group:default/ml"
    fields = shape["properties"]
    assert fields["flavour"]["enum"] == ["a", "b"]
    assert fields["flavour"]["enumNames"] == ["Apple", "Banana"]
    assert fields["gpu"] == {
        "title": "Gpu",
        "description": "Use GPUs",
        "type": "boolean",
        "default": False,
    }
    assert fields["regions"]["type"] == "array" and fields["regions"]["uniqueItems"] is True
    assert fields["api_key"]["ui:field"] == "Secret"
    assert "gpus" not in fields


def test_a_conditional_question_appears_only_under_its_condition():
    shape = template_entity(blueprint())["spec"]["parameters"][1]
    shown, hidden = shape["dependencies"]["gpu"]["oneOf"]
    assert shown["required"] == ["gpu"]
    assert shown["properties"]["gpu"] == {"const": True}
    assert shown["properties"]["gpus"]["type"] == "integer"
    assert hidden == {"properties": {"gpu": {"not": {"const": True}}}}


def test_steps_render_through_trellis_then_publish_and_register():
    spec = template_entity(blueprint())["spec"]
    render, publish, register = spec["steps"]
    assert render["action"] == RENDER_ACTION
    assert render["input"] == {
        "blueprint": "demo",
        "values": "${{ parameters }}",
        "secrets": {"api_key": "${{ secrets.api_key }}"},
    }
    assert publish["action"] == "publish:github"
    assert publish["if"] == "${{ parameters.host == 'github' }}"
    assert publish["input"]["repoUrl"].startswith("github.com?owner=${{ parameters.repo.split")
    assert register["action"] == "catalog:register"
    assert register["input"]["catalogInfoPath"] == "/catalog-info.yaml"
    assert {link["title"] for link in spec["output"]["links"]} == {"Repository", "Open in catalog"}


def test_template_and_location_pass_backstage_validation():
    entities = [template_entity(blueprint()), location_entity(["demo"])]
    assert [v for v in validate_entities(entities) if not v["ok"]] == []


@pytest.mark.parametrize(
    ("pages", "message"),
    [
        ((Page("One", ("name", "slug", "team", "repo")),), "on no page"),
        ((Page("One", ("name", "nope")),), "not questions"),
        (
            (
                Page("One", ("name", "slug", "team", "repo", "flavour", "gpu", "regions")),
                Page("Two", ("gpus", "api_key", "host", "name")),
            ),
            "twice",
        ),
        (
            (
                Page("One", ("name", "slug", "team", "repo", "flavour", "gpu", "regions")),
                Page("Two", ("gpus", "api_key", "host")),
            ),
            "depends on gpu",
        ),
    ],
)
def test_an_unusable_layout_is_refused_with_the_reason(pages, message):
    with pytest.raises(ConfigError, match=message):
        template_entity(blueprint(pages=pages))


def test_answers_are_cast_like_copier_and_every_problem_is_named():
    checked = check_answers(
        blueprint(), {"name": "x", "repo": "a/b", "gpu": "yes", "gpus": "3", "regions": "[eu]"}
    )
    assert checked == {"name": "x", "repo": "a/b", "gpu": True, "gpus": 3, "regions": ["eu"]}
    with pytest.raises(AnswerError) as caught:
        check_answers(
            blueprint(),
            {"slug": "UP", "gpu": "maybe", "gpus": 2.5, "regions": "[a, a]", "flavour": "c"},
        )
    assert [field for field, _ in caught.value.problems] == [
        "name",
        "slug",
        "flavour",
        "gpu",
        "gpus",
        "regions",
        "repo",
    ]
    assert check_answers(blueprint(), {}, require=False) == {}


def test_the_answers_schema_refuses_unknown_keys():
    assert answers_schema(blueprint())["additionalProperties"] is False
    with pytest.raises(AnswerError, match="colour: not a question of demo"):
        check_answers(blueprint(), {"colour": "red"}, require=False)


def test_control_characters_are_refused_in_text_and_inside_yaml_answers():
    with pytest.raises(AnswerError) as caught:
        check_answers(
            blueprint(), {"name": "tab\tis fine", "repo": "a\x00/b", "regions": '["eu\\a"]'}
        )
    assert [field for field, _ in caught.value.problems] == ["regions", "repo"]
    assert all("U+00" in message for _, message in caught.value.problems)


def test_many_problems_are_counted_after_the_first_few_and_questions_listed_once():
    with pytest.raises(AnswerError) as caught:
        check_answers(blueprint(), {f"extra_{i:03d}": 1 for i in range(100)}, require=False)
    assert len(caught.value.problems) == 100
    assert len(caught.value.reported) == 21
    assert caught.value.reported[-1] == ("answers", "and 80 more problems")
    assert sum("it asks" in message for _, message in caught.value.problems) == 1
    assert "extra_099" not in str(caught.value)
