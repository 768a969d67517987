"""The YAML writer: the core schema's rules, quoting only where a reader would not see a string."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from support.domain import T0, registered_model
from trellis.catalog import CatalogOptions, build_catalog, render_yaml
from trellis.model import Snapshot
from trellis.yaml_text import CORE_SCHEMA, core_schema_tag, dump, dump_all

T = "tag:yaml.org,2002:"
OPTIONS = CatalogOptions()

# The examples of yaml.org/spec/1.2.2, 10.3.2, plus near misses that stay strings.
SPEC_EXAMPLES = {
    "null": ["null", "Null", "NULL", "~", ""],
    "bool": ["true", "True", "TRUE", "false", "False", "FALSE"],
    "int": ["0", "0o7", "0x3A", "-19", "+12", "007", "09"],
    "float": [
        "0.",
        "-0.0",
        ".5",
        "+12e03",
        "-2E+05",
        "1e3",
        "-.5",
        "1.5e3",
        ".5e3",
        ".inf",
        "-.Inf",
        "+.INF",
        ".nan",
        ".NaN",
        ".NAN",
    ],
    "str": [
        *[
            "-",
            "+",
            ".",
            "0b1",
            "1_000",
            "yes",
            "0O7",
            "0X3A",
            "+0x3A",
            "-0o7",
            "1e",
            "e3",
            "..5",
            "1.2.3",
            "nan",
            "inf",
            "+.nan",
            "NaN",
        ],
        *["nULL", "tRUE", "0x", "0o"],
        " 1",
        "1 ",
    ],
}


@pytest.mark.parametrize(
    ("tag", "text"), [(tag, text) for tag, texts in SPEC_EXAMPLES.items() for text in texts]
)
def test_the_core_schema_resolves_as_the_spec_says(tag, text):
    assert core_schema_tag(text) == T + tag


def _plain(text: str) -> bool:
    return not dump(text).startswith(("'", '"'))


@given(st.one_of(*(st.from_regex(pattern, fullmatch=True) for _, pattern in CORE_SCHEMA)))
def test_no_core_schema_form_is_written_plain_and_each_reads_back(text):
    assert not _plain(text)
    assert yaml.safe_load(dump(text)) == text


@pytest.mark.parametrize("text", [t for tag in ("null", "bool") for t in SPEC_EXAMPLES[tag]])
def test_core_nulls_and_booleans_are_quoted_by_the_yaml_1_1_rules_already(text):
    """Only numbers needed new rules; the nulls and booleans are YAML 1.1's too."""
    assert yaml.safe_dump(text).startswith("'")
    assert not _plain(text)


@pytest.mark.parametrize("text", ["yes", "Off", "1_000", "1:20", "0b101", "2026-12-02", "<<", "="])
def test_what_yaml_1_1_reads_as_no_string_stays_quoted(text):
    assert not _plain(text)
    assert yaml.safe_load(dump(text)) == text


@pytest.mark.parametrize("text", ["a\u2028b", "\u2029", "x\x85y"])
def test_characters_only_yaml_1_1_breaks_lines_at_are_escaped(text):
    written = dump({"k": text})
    assert written.startswith('k: "') and "\\" in written
    assert yaml.safe_load(written) == {"k": text}


def test_values_other_than_strings_keep_their_types():
    data = {"i": 7, "f": 1.5, "e": 1e20, "inf": float("inf"), "b": True, "n": None, "s": "1e3"}
    written = dump(data)
    assert written == "i: 7\nf: 1.5\ne: 1.0e+20\ninf: .inf\nb: true\nn: null\ns: '1e3'\n"
    assert yaml.safe_load(written) == data


def test_strings_that_were_safe_are_written_byte_for_byte_as_before():
    models = [
        registered_model(name, {"owner": "risk-ml", "system": "payments"}, {"champion": 2})
        for name in ("fraud-detector", "Churn Model 🔥", "model: v2", "'quoted'", "- dash")
    ]
    entities = build_catalog(Snapshot(models=tuple(models), taken_at=T0, registry="x"), OPTIONS)
    before = yaml.dump_all(
        entities.entities,
        Dumper=yaml.CSafeDumper,
        sort_keys=False,
        allow_unicode=True,
        explicit_start=True,
        width=1_000_000,
    )
    assert render_yaml(entities.entities) == before.encode()
    assert dump_all(entities.entities) == before
