"""Render the ml-model blueprint once per variant, from this repository's HEAD, with Copier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from support.blueprints import VARIANTS, render


@pytest.fixture(scope="session", params=sorted(VARIANTS))
def variant(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, dict[str, Any], Path]:
    """(variant name, its answers, the rendered repository) for every variant."""
    name = request.param
    return name, VARIANTS[name], render(VARIANTS[name], tmp_path_factory.mktemp(name) / "repo")
