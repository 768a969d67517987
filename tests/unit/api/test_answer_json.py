"""Large answers checked against their model and written as JSON in one step."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from trellis.api.deps import Answer, answer_json


class Point(Answer):
    name: str
    series: list[tuple[float, float | None]]


def test_the_answer_is_the_models_json() -> None:
    response = answer_json(Point, {"name": "ü", "series": [(1, 0.5), (2.0, None)]})
    assert response.media_type == "application/json"
    assert json.loads(response.body) == {"name": "ü", "series": [[1.0, 0.5], [2.0, None]]}
    assert "ü" in response.body.decode()  # UTF-8, not escaped


def test_a_key_the_model_does_not_name_fails_the_answer() -> None:
    with pytest.raises(ValidationError, match="extra"):
        answer_json(Point, {"name": "x", "series": [], "secret": "hunter2"})
