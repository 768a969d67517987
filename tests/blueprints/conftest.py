"""Each blueprint rendered once per variant from this repository's HEAD, and scanned once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from support.blueprints import FINETUNE_VARIANTS, LLM_VARIANTS, VARIANTS, render
from support.checkov_scan import Findings, scan_repository


@pytest.fixture(scope="session", params=sorted(VARIANTS))
def variant(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, dict[str, Any], Path]:
    """(variant name, its answers, the rendered repository) for every ml-model variant."""
    name = request.param
    return name, VARIANTS[name], render(VARIANTS[name], tmp_path_factory.mktemp(name) / "repo")


@pytest.fixture(scope="session", params=sorted(LLM_VARIANTS))
def llm_variant(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, dict[str, Any], Path]:
    """(variant name, its answers, the rendered repository) for every llm-service variant."""
    name = request.param
    folder = tmp_path_factory.mktemp(name) / "repo"
    return name, LLM_VARIANTS[name], render(LLM_VARIANTS[name], folder, blueprint="llm-service")


@pytest.fixture(scope="session", params=sorted(FINETUNE_VARIANTS))
def finetune_variant(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, dict[str, Any], Path]:
    """(variant name, its answers, the rendered repository) for every edge-finetune variant."""
    name = request.param
    answers = FINETUNE_VARIANTS[name]
    repo = render(answers, tmp_path_factory.mktemp(name) / "repo", blueprint="edge-finetune")
    return name, answers, repo


@pytest.fixture(scope="session")
def checkov_findings(
    variant: tuple[str, dict[str, Any], Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Findings]:
    """checkov's findings per framework over an ml-model variant: one run for every reader."""
    name, _, repo = variant
    return scan_repository(repo, tmp_path_factory.mktemp(f"checkov-{name}"))
