"""Trellis's Software Template and Location for a blueprint pass Backstage's validation."""

from __future__ import annotations

import pytest

from support.backstage import validate_entities
from support.domain import template_blueprint
from trellis.blueprints.template import location_entity, template_entity

pytestmark = pytest.mark.backstage


def test_template_and_location_pass_backstage_validation():
    entities = [template_entity(template_blueprint()), location_entity(["demo"])]
    assert [v for v in validate_entities(entities) if not v["ok"]] == []
