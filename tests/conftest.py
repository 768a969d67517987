"""Shared fixtures (real registries seeded once) and the check that markers say what starts."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from filelock import FileLock
from hypothesis import settings

from support import markers
from support.registry import ModelSpec, hostile_specs, keep_template_in, seed
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give every test its own node id, and refuse a collection where two still share one.

    Schemathesis names each operation's test ``test[GET /healthz]``, but on this pytest each
    of them gets the bare function's node id. pytest-xdist hands out tests by node id, so
    all operations but one would silently never run (`make test` runs under xdist).
    """
    for item in items:
        label = getattr(item, "operation_label", None)  # a Schemathesis operation's test
        if label and item.parent is not None and not item.nodeid.endswith("]"):
            # The id pytest gives any parametrized test: the function's, then [the case].
            item._id = item.parent.id.child(item.originalname).with_params(label)
    shared = sorted(nodeid for nodeid, n in Counter(i.nodeid for i in items).items() if n > 1)
    if shared:
        raise pytest.UsageError(f"tests share a node id, so xdist would run one: {shared}")
    heaviest_first(items)


#: What a test starts, by how long it usually runs: a Backstage backend, then a server.
WEIGHTS = {
    "backstage": 3, "mlflow": 2, "postgres": 2, "prometheus": 2, "kube_replay": 1, "tools": 1
}  # fmt: skip


def heaviest_first(items: list[pytest.Item]) -> None:
    """Order test files by the heaviest thing one of their tests starts, keeping each file whole.

    pytest-xdist hands out whole files in collection order, so a file that starts Backstage
    collected last keeps one worker busy for a minute while the other has nothing left. Heavy
    files first and the pure ones last let the cheap files fill the end of the run.
    """
    weight: dict[str, int] = {}
    for item in items:
        starts = [WEIGHTS.get(mark.name, 0) for mark in item.iter_markers()]
        weight[item.path.as_posix()] = max([weight.get(item.path.as_posix(), 0), *starts])
    items.sort(key=lambda item: -weight[item.path.as_posix()])


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    problem = markers.unmarked_services(item)
    if problem:
        pytest.fail(problem, pytrace=False)


def run_wide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory every pytest-xdist worker of this run shares: read-only inputs made once."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session", autouse=True)
def registry_template(tmp_path_factory: pytest.TempPathFactory) -> None:
    """New SQLite registries are copies of one migrated once per run (made on first use)."""
    keep_template_in(run_wide(tmp_path_factory))


@pytest.fixture(scope="session")
def hostile_registry(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[ModelSpec]]:
    """An SQLite registry seeded with 300+ hostile model names and tags.

    Seeding takes seconds of CPU, so it is done once per run for every worker; each worker
    gets its own copy, which its tests may write to.
    """
    seeded = run_wide(tmp_path_factory) / "hostile.db"
    accepted = run_wide(tmp_path_factory) / "hostile-accepted.json"
    with FileLock(f"{seeded}.lock"):
        if not accepted.exists():
            partial = seeded.with_name("hostile-partial.db")
            partial.unlink(missing_ok=True)
            specs = seed(f"sqlite:///{partial}", hostile_specs(330), skip_refused=True)
            partial.rename(seeded)
            accepted.write_text(json.dumps([spec.name for spec in specs]))
    names = set(json.loads(accepted.read_text()))
    specs = [spec for spec in hostile_specs(330) if spec.name in names]
    assert len(specs) >= 300, f"only {len(specs)} hostile names were accepted by MLflow"
    db = tmp_path_factory.mktemp("hostile") / "mlflow.db"
    shutil.copyfile(seeded, db)
    return db, specs


@pytest.fixture(scope="session")
def hostile_server(hostile_registry: tuple[Path, list[ModelSpec]]) -> Iterator[MlflowServer]:
    """A real MLflow tracking server (one worker) over the hostile registry."""
    db, _ = hostile_registry
    with mlflow_server(db) as server:
        yield server
