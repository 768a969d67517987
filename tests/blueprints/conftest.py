"""Each blueprint rendered once per variant from this repository's HEAD, and scanned once."""

from __future__ import annotations

import pytest

from support.blueprints import (
    FINETUNE_VARIANTS,
    HUB_VARIANTS,
    LLM_VARIANTS,
    SPOKE_VARIANTS,
    VARIANTS,
    Renders,
    Variant,
)
from support.checkov_scan import Findings, Scans


@pytest.fixture(scope="session")
def renders(tmp_path_factory: pytest.TempPathFactory) -> Renders:
    """Every variant of every blueprint, rendered when a test first asks for it."""
    return Renders(tmp_path_factory)


@pytest.fixture(scope="session", params=sorted(VARIANTS))
def variant(request: pytest.FixtureRequest, renders: Renders) -> Variant:
    """(variant name, its answers, the rendered repository) for every ml-model variant."""
    return renders.get("ml-model", request.param)


@pytest.fixture(scope="session", params=sorted(LLM_VARIANTS))
def llm_variant(request: pytest.FixtureRequest, renders: Renders) -> Variant:
    """(variant name, its answers, the rendered repository) for every llm-service variant."""
    return renders.get("llm-service", request.param)


@pytest.fixture(scope="session", params=sorted(FINETUNE_VARIANTS))
def finetune_variant(request: pytest.FixtureRequest, renders: Renders) -> Variant:
    """(variant name, its answers, the rendered repository) for every edge-finetune variant."""
    return renders.get("edge-finetune", request.param)


@pytest.fixture(scope="session", params=sorted(HUB_VARIANTS))
def hub_variant(request: pytest.FixtureRequest, renders: Renders) -> Variant:
    """(variant name, its answers, the rendered repository) for every platform-hub variant."""
    return renders.get("platform-hub", request.param)


@pytest.fixture(scope="session", params=sorted(SPOKE_VARIANTS))
def spoke_variant(request: pytest.FixtureRequest, renders: Renders) -> Variant:
    """(variant name, its answers, the rendered repository) for every platform-spoke variant."""
    return renders.get("platform-spoke", request.param)


@pytest.fixture(scope="session")
def checkov_scans(renders: Renders, tmp_path_factory: pytest.TempPathFactory) -> Scans:
    """checkov's findings over every variant of a blueprint: one run for every reader."""
    return Scans(renders, tmp_path_factory)


@pytest.fixture(scope="session")
def checkov_findings(variant: Variant, checkov_scans: Scans) -> dict[str, Findings]:
    """checkov's findings per framework over an ml-model variant."""
    return checkov_scans.of("ml-model", variant[0])
