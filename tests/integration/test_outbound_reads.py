"""Reads of generated repositories over HTTP against hostile servers: real ones, on loopback.

Each server here misbehaves as an attacker's raw-file host could: it redirects to another
host (a metadata address, another loopback address), answers 300 MB, drips one byte every
two seconds, or puts a secret-looking string in an error body. The survey must stay bounded
in memory and time, never send a request to another host, and never echo a body.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import yaml
from fastapi.testclient import TestClient

from support.gitrepos import blueprint_source
from trellis.app import create_app
from trellis.config import Settings
from trellis.errors import SourceUnavailable
from trellis.services.updates import known_instances
from trellis.sources.http_read import ReadLimits, read_bounded
from trellis.sources.repositories import Repositories, read_instance

ANSWERS = yaml.safe_dump({"blueprint": "ml-model", "_commit": "1.0.0", "_src_path": "gh:a/b"})
MARKER = "body-marker-7f3a9c1e5b"
MiB = 1024 * 1024

Handler = Callable[[BaseHTTPRequestHandler], None]


@contextmanager
def server(handle: Handler, host: str = "127.0.0.1") -> Iterator[tuple[str, list[str]]]:
    """A threaded HTTP server calling ``handle`` for every GET; yields its URL and the paths."""
    seen: list[str] = []

    class Handle(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            # The client hanging up is what a bounded read does.
            with suppress(BrokenPipeError, ConnectionResetError):
                handle(self)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer((host, 0), Handle)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def answer(request: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
    request.send_response(status)
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    request.wfile.write(body)


def redirect_to(location: str) -> Handler:
    def handle(request: BaseHTTPRequestHandler) -> None:
        if request.path.startswith("/moved/"):
            answer(request, 200, ANSWERS.encode())
            return
        request.send_response(302)
        request.send_header("Location", location.format(path=request.path))
        request.send_header("Content-Length", "0")
        request.end_headers()

    return handle


def huge(request: BaseHTTPRequestHandler) -> None:
    """300 MB without a declared length, made lazily: the client must cut it itself."""
    request.send_response(200)
    request.end_headers()
    block = b"x: " + b"y" * (64 * 1024 - 4) + b"\n"
    for _ in range(300 * MiB // len(block)):
        request.wfile.write(block)


def drip(request: BaseHTTPRequestHandler) -> None:
    """One byte every two seconds, for as long as the client listens."""
    request.send_response(200)
    request.send_header("Content-Length", "1000")
    request.end_headers()
    for _ in range(1000):
        request.wfile.write(b"a")
        request.wfile.flush()
        time.sleep(2)


def secret_error(request: BaseHTTPRequestHandler) -> None:
    answer(request, 500, f"internal error; session={MARKER}".encode())


def test_a_redirect_to_another_host_is_refused_before_it_is_followed():
    with server(redirect_to("unused"), host="127.0.0.2") as (elsewhere, elsewhere_seen):
        targets = [f"{elsewhere}{{path}}", "http://169.254.169.254/latest/meta-data{path}"]
        for target in targets:
            with server(redirect_to(target)) as (url, seen):
                with pytest.raises(SourceUnavailable, match="redirected to another host"):
                    read_instance(f"{url}/acme/repo/main")
                assert seen == ["/acme/repo/main/.copier-answers.yml"]
    assert elsewhere_seen == []  # not one request reached the other host


def test_a_redirect_on_the_same_host_is_followed():
    with server(redirect_to("/moved{path}")) as (url, seen):
        instance = read_instance(f"{url}/acme/repo/main", entity=False)
    assert instance.blueprint == "ml-model"
    assert seen == [
        "/acme/repo/main/.copier-answers.yml",
        "/moved/acme/repo/main/.copier-answers.yml",
    ]


def test_a_300_mb_answer_is_cut_at_the_cap_in_bounded_memory():
    process = psutil.Process()
    gc.collect()
    before = process.memory_info().rss
    with server(huge) as (url, _):
        instances, problems = known_instances([f"{url}/acme/big/main"], Repositories())
    assert instances == []
    [(_, reason)] = problems
    assert "larger than 1048576 bytes" in reason
    growth = process.memory_info().rss - before
    assert growth < 64 * MiB, f"RSS grew by {growth / MiB:.0f} MiB"


def test_a_server_dripping_bytes_is_cut_at_the_deadline():
    with (
        server(drip) as (url, _),
        httpx.Client() as client,
        pytest.raises(SourceUnavailable) as error,
    ):
        read_bounded(client, f"{url}/slow", limits=ReadLimits(deadline_seconds=3), source="t")
    assert "not read within the 3 s deadline" in str(error.value)


def test_an_error_names_status_and_url_never_the_body_nor_credentials():
    with server(secret_error) as (url, _):
        location = f"{url}/acme/repo/main?private_token=tok-{MARKER}"
        instances, problems = known_instances([location], Repositories())
    assert instances == []
    [(where, reason)] = problems
    assert MARKER not in where and MARKER not in reason
    assert "HTTP 500" in reason and f"{url}/acme/repo/main" in reason


def test_the_blueprints_api_answers_with_a_problem_for_a_dripping_repository(tmp_path: Path):
    source = blueprint_source(tmp_path / "source")
    with server(drip) as (url, _):
        settings = Settings(
            state_dir=tmp_path / "state",
            api_tokens=["t" * 32],
            mlflow={"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"},
            blueprints={
                "source": str(source),
                "repositories": [f"{url}/acme/slow/main"],
                "read_deadline_seconds": 2,
            },
        )
        with TestClient(create_app(settings)) as http:
            auth = {"Authorization": f"Bearer {'t' * 32}"}
            listing = http.get("/api/blueprints", headers=auth)
            repositories = http.get("/api/blueprints/repositories", headers=auth)
    assert listing.status_code == 200, listing.text
    assert repositories.status_code == 200, repositories.text
    [problem] = repositories.json()["problems"]
    assert problem["location"] == f"{url}/acme/slow/main"
    assert "deadline" in problem["reason"]
