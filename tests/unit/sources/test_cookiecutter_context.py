"""Reading what a cookiecutter template declares, and cruft's record, without a process."""

from __future__ import annotations

import json
from collections import OrderedDict

import pytest

from trellis.errors import AnswerError
from trellis.model import CruftRecord
from trellis.sources.cookiecutter_context import (
    answers_from_context,
    choose_nested,
    cruft_json,
    parse_cruft,
    questions_from_context,
    unsafe_extensions,
)

STORAGE = [
    {"none": "none"},
    {"s3": {"bucket": "bucket-name", "aws_profile": "default"}},
    {"gcs": {"bucket": "bucket-name"}},
]


def test_each_kind_of_variable_becomes_a_question_and_private_ones_none() -> None:
    context = OrderedDict(
        project_name="Demo",
        slug="{{ cookiecutter.project_name|lower }}",
        use_docker=False,
        license=["MIT", "Apache-2.0"],
        settings={"region": "eu"},
        storage=STORAGE,
        version=1.5,
        _copy_without_render=["*.png"],
        __prefix="{{ cookiecutter.slug }}",
    )
    questions = questions_from_context(context, {"slug": "Folder name"})
    by_name = {q.name: q for q in questions}
    assert list(by_name) == ["project_name", "slug", "use_docker", "license", "settings",
                             "storage", "version"]  # fmt: skip
    assert by_name["slug"].computed_default and by_name["slug"].help == "Folder name"
    assert (by_name["use_docker"].type, by_name["use_docker"].default) == ("bool", False)
    assert list(by_name["license"].choices) == ["MIT", "Apache-2.0"]
    assert by_name["license"].default == "MIT"
    assert by_name["settings"].type == "json" and by_name["settings"].default == {"region": "eu"}
    assert list(by_name["storage"].choices) == ["none", "s3", "gcs"]
    assert by_name["version"].default == "1.5"


def test_a_nested_option_is_put_first_with_its_sub_values() -> None:
    assert choose_nested(STORAGE, "gcs", "storage")[0] == {"gcs": {"bucket": "bucket-name"}}
    chosen = choose_nested(STORAGE, {"s3": {"bucket": "mine"}}, "storage")
    assert chosen[0] == {"s3": {"bucket": "mine", "aws_profile": "default"}}
    assert len(chosen) == 3 and {"none": "none"} in chosen
    with pytest.raises(AnswerError, match="'azure' is not one of none, s3, gcs"):
        choose_nested(STORAGE, "azure", "storage")


def test_only_extensions_of_the_templates_own_are_unsafe() -> None:
    assert unsafe_extensions({"_extensions": ["jinja2_time.TimeExtension"]}) == []
    declared = ["local.Ext", "cookiecutter.extensions.SlugifyExtension"]
    assert unsafe_extensions({"_extensions": declared}) == ["local.Ext"]
    assert unsafe_extensions({}) == []


def test_the_record_is_written_as_cruft_writes_it_and_read_back() -> None:
    record = CruftRecord(
        template="https://example.com/t.git",
        commit="abc123",
        context={"project_name": "Démo", "_template": "https://example.com/t.git"},
        checkout="v1",
    )
    text = cruft_json(record)
    assert text.endswith("}\n") and "Démo" in text  # ensure_ascii=False, as cruft
    assert list(json.loads(text)) == ["template", "commit", "checkout", "context", "directory"]
    assert parse_cruft(text) == record
    assert answers_from_context(record.context) == {"project_name": "Démo"}


@pytest.mark.parametrize("text", ["[]", "{}", '{"template": "x", "context": {}}', "not json"])
def test_a_malformed_record_is_refused_by_name(text: str) -> None:
    with pytest.raises(Exception, match=r"\.cruft\.json"):
        parse_cruft(text)
