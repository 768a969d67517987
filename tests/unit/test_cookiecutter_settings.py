"""Registering cookiecutter templates in the settings: parsed once, refused by key when wrong."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from trellis.config import Settings
from trellis.errors import ConfigError
from trellis.wiring import build_blueprints, cookiecutter_sources


def test_a_registered_template_becomes_a_source_with_its_trust_and_entry_point(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registered = {"source": "https://example.com/ds.git", "trusted": True,
                  "entry_point": "/opt/ccds-{version}/bin/ccds", "tags": ["ds"]}  # fmt: skip
    monkeypatch.setenv("TRELLIS_BLUEPRINTS__COOKIECUTTER", json.dumps({"data-science": registered}))
    (source,) = cookiecutter_sources(Settings()).values()
    assert source.name == "data-science" and source.spec.trusted is True
    assert source.spec.entry_point == "/opt/ccds-{version}/bin/ccds"
    assert source.spec.tags == ("ds",) and source.spec.timeout_seconds == 120
    assert source.template_url == "https://example.com/ds.git"
    assert dict(source.spec.publish_hosts) == {"github": "github.com"}


def test_untrusted_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRELLIS_BLUEPRINTS__COOKIECUTTER", '{"t": {"source": "/x"}}')
    assert Settings().blueprints.cookiecutter["t"].trusted is False


@pytest.mark.parametrize(
    "value",
    [
        '{"Bad Name": {"source": "/x"}}',
        '{"t": {}}',
        '{"t": {"source": "/x", "timeout_seconds": 0}}',
    ],
)
def test_a_registration_that_cannot_work_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("TRELLIS_BLUEPRINTS__COOKIECUTTER", value)
    with pytest.raises(ValidationError, match="cookiecutter"):
        Settings()


def test_a_name_a_copier_blueprint_has_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRELLIS_BLUEPRINTS__COOKIECUTTER", '{"ml-model": {"source": "/x"}}')
    with pytest.raises(ConfigError, match="ml-model is already a blueprint name"):
        build_blueprints(Settings())
