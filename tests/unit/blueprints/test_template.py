"""A blueprint as a Backstage Software Template: the form follows the questions."""

from __future__ import annotations

import pytest

from support.domain import template_blueprint
from trellis.blueprints import answers_schema, check_answers
from trellis.blueprints.template import RENDER_ACTION, template_entity
from trellis.errors import AnswerError, ConfigError
from trellis.model import Page


def test_pages_follow_the_questions_with_types_choices_and_hints():
    about, shape = template_entity(template_blueprint())["spec"]["parameters"]
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
    shape = template_entity(template_blueprint())["spec"]["parameters"][1]
    shown, hidden = shape["dependencies"]["gpu"]["oneOf"]
    assert shown["required"] == ["gpu"]
    assert shown["properties"]["gpu"] == {"const": True}
    assert shown["properties"]["gpus"]["type"] == "integer"
    assert hidden == {"properties": {"gpu": {"not": {"const": True}}}}


def test_steps_render_through_trellis_then_publish_and_register():
    spec = template_entity(template_blueprint())["spec"]
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
        template_entity(template_blueprint(pages=pages))


def test_answers_are_cast_like_copier_and_every_problem_is_named():
    checked = check_answers(
        template_blueprint(),
        {"name": "x", "repo": "a/b", "gpu": "yes", "gpus": "3", "regions": "[eu]"},
    )
    assert checked == {"name": "x", "repo": "a/b", "gpu": True, "gpus": 3, "regions": ["eu"]}
    with pytest.raises(AnswerError) as caught:
        check_answers(
            template_blueprint(),
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
    assert check_answers(template_blueprint(), {}, require=False) == {}


def test_the_answers_schema_refuses_unknown_keys():
    assert answers_schema(template_blueprint())["additionalProperties"] is False
    with pytest.raises(AnswerError, match="colour: not a question of demo"):
        check_answers(template_blueprint(), {"colour": "red"}, require=False)


def test_control_characters_are_refused_in_text_and_inside_yaml_answers():
    with pytest.raises(AnswerError) as caught:
        check_answers(
            template_blueprint(),
            {"name": "tab\tis fine", "repo": "a\x00/b", "regions": '["eu\\a"]'},
        )
    assert [field for field, _ in caught.value.problems] == ["regions", "repo"]
    assert all("U+00" in message for _, message in caught.value.problems)


def test_many_problems_are_counted_after_the_first_few_and_questions_listed_once():
    with pytest.raises(AnswerError) as caught:
        check_answers(
            template_blueprint(), {f"extra_{i:03d}": 1 for i in range(100)}, require=False
        )
    assert len(caught.value.problems) == 100
    assert len(caught.value.reported) == 21
    assert caught.value.reported[-1] == ("answers", "and 80 more problems")
    assert sum("it asks" in message for _, message in caught.value.problems) == 1
    assert "extra_099" not in str(caught.value)
