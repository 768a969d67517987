"""Real services for the tests: an MLflow tracking server and ``trellis serve`` as processes."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from support.markers import starting
from support.registry import new_sqlite_registry
from support.timing import scaled

BASE_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check, *, timeout: float, what: str, interval: float = 0.2) -> None:
    """Poll ``check`` until it returns truthy; fail naming ``what`` on timeout.

    ``timeout`` is what an idle machine needs; the wait stretches it by the suite's scale
    factor (:mod:`support.timing`).
    """
    timeout = scaled(timeout)
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # the service may not listen yet
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} ({last_error!r})")


@dataclass
class Process:
    """A started process in its own session, with its log file."""

    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=scaled(15))
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=scaled(5))


def start_process(args: list[str], *, log: Path, env: Mapping[str, str]) -> Process:
    handle = log.open("ab")
    popen = subprocess.Popen(
        args,
        stdout=handle,
        stderr=subprocess.STDOUT,
        env={**os.environ, **BASE_ENV, **env},
        start_new_session=True,
    )
    handle.close()
    return Process(popen, log)


def wait_http(process: Process, url: str, *, timeout: float, what: str, ok=None) -> None:
    def ready() -> bool:
        if process.popen.poll() is not None:
            raise AssertionError(f"{what} exited early:\n{process.tail()}")
        response = httpx.get(url, timeout=scaled(2))
        return ok(response) if ok else response.status_code == 200

    try:
        wait_until(ready, timeout=timeout, what=what)
    except AssertionError as exc:
        process.stop()
        raise AssertionError(f"{exc}\n--- log ---\n{process.tail()}") from None


def mlflow_executable() -> str:
    found = shutil.which("mlflow", path=str(Path(sys.executable).parent))
    if not found:
        raise AssertionError(
            "the `mlflow` server command is missing; install the test extras: "
            "`pip install -e '.[test]'` (or run `make test`)"
        )
    return found


@dataclass
class MlflowServer:
    """A real `mlflow server` (one worker) over an SQLite registry."""

    db: Path
    port: int
    process: Process | None = None
    env: dict[str, str] = field(default_factory=dict)
    """The server's own settings, such as ``MLFLOW_WEBHOOK_*``."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, timeout: float = 120) -> MlflowServer:
        starting("mlflow")
        artifacts = self.db.parent / "artifacts"
        artifacts.mkdir(parents=True, exist_ok=True)
        new_sqlite_registry(self.db)
        self.process = start_process(
            [
                mlflow_executable(),
                "server",
                "--backend-store-uri",
                f"sqlite:///{self.db}",
                "--default-artifact-root",
                str(artifacts),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
            ],
            log=self.db.parent / f"mlflow-{self.port}.log",
            env=self.env,
        )
        wait_http(self.process, f"{self.url}/health", timeout=timeout, what="the MLflow server")
        return self

    def stop(self) -> None:
        if self.process:
            self.process.stop()
            self.process = None


@contextmanager
def mlflow_server(db: Path) -> Iterator[MlflowServer]:
    server = MlflowServer(db=db, port=free_port()).start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class TrellisServer:
    """``trellis serve`` as a real process, configured through its environment."""

    state_dir: Path
    env: dict[str, str]
    port: int
    process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def process_log(self) -> Path:
        return self.state_dir.parent / f"trellis-{self.port}.log"

    def entity_reads(self) -> int:
        """How many times the catalog YAML was fetched (200 or 304), from its own metrics."""
        text = httpx.get(f"{self.url}/metrics", timeout=scaled(5)).text
        pattern = (
            r'trellis_http_request_duration_seconds_count\{method="GET",'
            r'route="/catalog/entities.yaml",status="(?:200|304)"\} ([0-9.]+)'
        )
        return int(sum(float(m) for m in re.findall(pattern, text)))

    def wait_for_rereads(self, count: int, *, timeout: float) -> None:
        """Wait until Backstage (or anyone) has fetched the catalog ``count`` more times."""
        reads = self.entity_reads()
        wait_until(
            lambda: self.entity_reads() >= reads + count,
            timeout=timeout,
            what=f"Backstage to re-read the catalog {count} times",
        )

    def start(self, *, timeout: float = 60, ready: bool = True) -> TrellisServer:
        """Start and wait until it is ready to serve, or only alive when not ``ready``."""
        env = {
            "TRELLIS_STATE_DIR": str(self.state_dir),
            "TRELLIS_HOST": "127.0.0.1",
            "TRELLIS_PORT": str(self.port),
            **self.env,
        }
        self.process = start_process(
            [sys.executable, "-m", "trellis", "serve"],
            log=self.process_log,
            env=env,
        )
        probe = "/readyz" if ready else "/healthz"
        wait_http(self.process, f"{self.url}{probe}", timeout=timeout, what="trellis serve")
        return self

    def stop(self) -> None:
        if self.process:
            self.process.stop()
            self.process = None

    def restart(self) -> TrellisServer:
        self.stop()
        return self.start()
