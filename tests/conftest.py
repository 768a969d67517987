"""Shared fixtures (real registries seeded once) and the check that markers say what starts."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from support import markers
from support.registry import ModelSpec, hostile_specs, seed
from support.services import MlflowServer, mlflow_server

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

# Property tests check results, not speed: on a loaded CI machine a per-example deadline
# would fail correct code.
settings.register_profile("trellis", deadline=None)
settings.load_profile("trellis")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    with markers.running(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[object],
) -> Generator[None, object, object]:
    with markers.fixture_setup(fixturedef.argname, fixturedef.baseid):
        return (yield)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    problem = markers.unmarked_services(item)
    if problem:
        pytest.fail(problem, pytrace=False)


@pytest.fixture(scope="session")
def hostile_registry(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[ModelSpec]]:
    """An SQLite registry seeded with 300+ hostile model names and tags."""
    db = tmp_path_factory.mktemp("hostile") / "mlflow.db"
    specs = seed(f"sqlite:///{db}", hostile_specs(330), skip_refused=True)
    assert len(specs) >= 300, f"only {len(specs)} hostile names were accepted by MLflow"
    return db, specs


@pytest.fixture(scope="session")
def hostile_server(hostile_registry: tuple[Path, list[ModelSpec]]) -> Iterator[MlflowServer]:
    """A real MLflow tracking server (one worker) over the hostile registry."""
    db, _ = hostile_registry
    with mlflow_server(db) as server:
        yield server
