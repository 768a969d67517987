"""A generated llm-service repository's CPU dev server, started as a developer starts it.

The generated project needs torch: it runs with this suite's interpreter (a fresh virtualenv
would download a CUDA build of several GB), once ``support.requirements`` has checked that
this environment meets what its ``pyproject.toml`` declares.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support.services import free_port, start_process, wait_http


def service_env(repo: Path, registry_url: str) -> dict[str, str]:
    """The generated package on the path, the registry to pull from, and no hub at run time."""
    return {
        "PYTHONPATH": str(repo / "src"),
        "MLFLOW_TRACKING_URI": registry_url,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }


@contextmanager
def dev_server(repo: Path, package: str, registry_url: str, log: Path) -> Iterator[str]:
    """Serve the registry's champion base model and adapters; yield the OpenAI base URL."""
    port = free_port()
    process = start_process(
        [sys.executable, "-m", f"{package}.dev_server", "--from-registry",
         "--host", "127.0.0.1", "--port", str(port)],
        log=log,
        env=service_env(repo, registry_url),
    )  # fmt: skip
    try:
        wait_http(process, f"http://127.0.0.1:{port}/health", timeout=90, what="the dev server")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.stop()
