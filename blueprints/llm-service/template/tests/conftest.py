"""Shared fixtures: an empty MLflow registry (SQLite) per test, and a stand-in for the hub."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="session")
def empty_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite registry with MLflow's tables made once: each test copies it (seconds saved)."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("registry") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def registry_uri(empty_registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty registry for one test; run artifacts go under the test's folder."""
    import mlflow

    shutil.copyfile(empty_registry, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("Default")  # forget the experiment of an earlier test's registry
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("GIT_COMMIT", COMMIT)
    monkeypatch.delenv("TRELLIS_REGION", raising=False)
    monkeypatch.chdir(tmp_path)
    return uri


@pytest.fixture
def client(registry_uri: str):
    """A client of that registry."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=registry_uri, registry_uri=registry_uri)


class FakeHub:
    """Writes a small model folder where `snapshot_download` would, and records each call."""

    def __init__(self, license_id: str) -> None:
        self.license_id = license_id
        self.calls: list[dict[str, str]] = []

    def __call__(self, *, repo_id: str, revision: str, local_dir: str) -> str:
        """Stand in for `huggingface_hub.snapshot_download`: the folder it fills."""
        self.calls.append({"repo_id": repo_id, "revision": revision})
        folder = Path(local_dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "README.md").write_text(
            f"---\nlicense: {self.license_id}\n---\n# {repo_id}\n", encoding="utf-8"
        )
        (folder / "config.json").write_text('{"model_type": "llama"}', encoding="utf-8")
        (folder / "model.safetensors").write_bytes(b"\0" * 4096)
        (folder / "tokenizer.json").write_text("{}", encoding="utf-8")
        return str(folder)


@pytest.fixture
def fake_hub() -> Callable[[str], FakeHub]:
    """A stand-in for the hub whose model card states the given licence."""
    return FakeHub
