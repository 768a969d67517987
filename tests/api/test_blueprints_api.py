"""POST /api/blueprints/{name}/render: the render API behind Backstage's scaffolder module."""

from __future__ import annotations

import base64
import multiprocessing.util
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
import yaml
from fastapi.testclient import TestClient
from httpx import Response
from typer.testing import CliRunner

from support.blueprints import REPO, VARIANTS, render
from support.gitrepos import (
    SLOW_PROJECT,
    blueprint_source,
    release,
    serve_directory,
    slow_blueprint_source,
)
from support.timing import scaled
from trellis.app import create_app
from trellis.cli.app import app as cli
from trellis.config import Settings

TOKEN = "render-token-" + "x" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CANONICAL = "https://git.example.com/platform/trellis.git"
VALUES = {**VARIANTS["sklearn-github-aws"], "repository": "acme/fraud-detector"}


def settings(state: Path, source: Path | str, **blueprints: object) -> Settings:
    return Settings(
        state_dir=state,
        api_tokens=[TOKEN],
        mlflow={"tracking_uri": f"sqlite:///{state / 'mlflow.db'}"},
        blueprints={
            "source": str(source),
            "vcs_ref": "1.0.0",
            "repository_url": CANONICAL,
            **blueprints,
        },
    )


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return blueprint_source(tmp_path_factory.mktemp("source") / "blueprints")


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory, source: Path):
    with TestClient(create_app(settings(tmp_path_factory.mktemp("render"), source))) as client:
        yield client


def files_of(response) -> dict[str, bytes]:
    return {f["path"]: base64.b64decode(f["base64Content"]) for f in response.json()["files"]}


@pytest.fixture(scope="module")
def rendered(http: TestClient) -> Response:
    """The answer to one render of ``VALUES``, which the cases about a good render read."""
    return http.post("/api/blueprints/ml-model/render", json={"values": VALUES}, headers=AUTH)


def test_render_returns_the_files_trellis_new_writes(rendered, source, tmp_path, monkeypatch):
    response = rendered
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["blueprint"] == "ml-model" and body["version"]
    rendered = files_of(response)

    monkeypatch.setenv("TRELLIS_BLUEPRINTS__REPOSITORY_URL", CANONICAL)
    monkeypatch.setenv("TRELLIS_BLUEPRINTS__SOURCE", str(source))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    answers = tmp_path / "answers.yml"
    answers.write_text(yaml.safe_dump(VALUES))
    args = ["new", "ml-model", str(tmp_path / "repo"), "--vcs-ref", "1.0.0", "--defaults"]
    args += ["--data-file", str(answers)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    on_disk = {
        p.relative_to(tmp_path / "repo").as_posix(): p.read_bytes()
        for p in sorted((tmp_path / "repo").rglob("*"))
        if p.is_file()
    }
    assert rendered.keys() == on_disk.keys()
    assert [path for path in rendered if rendered[path] != on_disk[path]] == []
    executables = {f["path"] for f in body["files"] if f["executable"]}
    assert executables == {path for path in on_disk if os.access(tmp_path / "repo" / path, os.X_OK)}


def test_the_answers_file_points_at_the_canonical_repository(rendered):
    response = rendered
    answers = yaml.safe_load(files_of(response)[".copier-answers.yml"])
    assert answers["_src_path"] == CANONICAL
    assert answers["_commit"] == response.json()["version"] == "1.0.0"
    assert answers["blueprint"] == "ml-model"
    assert answers["repository"] == "acme/fraud-detector"


def test_every_bad_answer_is_named_in_one_400(http):
    bad = {
        **VALUES,
        "project_slug": "Bad Slug",
        "gpu_count": "two",
        "cloud": "mars",
        "edge_regions": ["us-east-1", "us-east-1"],
        "colour": "blue",
    }
    response = http.post("/api/blueprints/ml-model/render", json={"values": bad}, headers=AUTH)
    assert response.status_code == 400
    errors = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert set(errors) == {"project_slug", "gpu_count", "cloud", "edge_regions", "colour"}
    assert "expects a whole number" in errors["gpu_count"]
    assert errors["cloud"] == "'mars' is not one of aws, gcp, azure"
    assert errors["edge_regions"] == "repeats an item"
    assert errors["colour"].startswith("not a question of ml-model")


def test_required_questions_must_be_answered(http):
    values = {k: v for k, v in VALUES.items() if k not in {"project_name", "repository"}}
    response = http.post("/api/blueprints/ml-model/render", json={"values": values}, headers=AUTH)
    assert response.status_code == 400
    fields = [e["field"] for e in response.json()["errors"]]
    assert fields == ["project_name", "repository"]


def test_rules_across_answers_come_from_copier_and_name_the_question(http):
    values = {**VALUES, "cloud": "gcp", "hub_region": "europe-west4", "edge_regions": ["us-east-1"]}
    response = http.post("/api/blueprints/ml-model/render", json={"values": values}, headers=AUTH)
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["field"] == "edge_regions"
    assert "Unknown gcp region us-east-1" in error["message"]


def test_answers_are_data_and_never_run(http, tmp_path):
    marker = tmp_path / "pwned"
    description = (
        "{{ cycler.__init__.__globals__.os.popen('touch " + str(marker) + "').read() }}"
        "{% raw %}$(touch " + str(marker) + "){% endraw %}"
    )
    values = {**VALUES, "description": description, "project_name": "Evil {{ 7 * 7 }}"}
    values["project_slug"] = "evil"
    response = http.post("/api/blueprints/ml-model/render", json={"values": values}, headers=AUTH)
    assert response.status_code == 200, response.text
    readme = files_of(response)["README.md"].decode()
    assert "Evil {{ 7 * 7 }}" in readme and "Evil 49" not in readme
    assert description in yaml.safe_load(files_of(response)[".copier-answers.yml"])["description"]
    assert not marker.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"values": "project_name=x"}, "values"),
        ({"values": {}, "extra": 1}, "extra"),
        ([1, 2], "body"),
    ],
)
def test_malformed_bodies_get_400_naming_the_field(http, body, field):
    response = http.post("/api/blueprints/ml-model/render", json=body, headers=AUTH)
    assert response.status_code == 400
    assert field in [e["field"] for e in response.json()["errors"]]


def test_not_json_gets_400(http):
    response = http.post(
        "/api/blueprints/ml-model/render",
        content=b"{not json",
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert response.status_code == 400


def test_an_oversized_body_gets_413_before_any_work(http):
    huge = {"values": {"description": "x" * 2_000_000}}
    response = http.post("/api/blueprints/ml-model/render", json=huge, headers=AUTH)
    assert response.status_code == 413


def test_long_answers_are_refused(http):
    values = {**VALUES, "description": "x" * 5_000}
    response = http.post("/api/blueprints/ml-model/render", json={"values": values}, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "description"


def test_unknown_blueprint_is_404_and_no_token_is_401(http):
    response = http.post("/api/blueprints/llm-magic/render", json={"values": {}}, headers=AUTH)
    assert response.status_code == 404
    assert "llm-magic" in response.json()["detail"]
    assert http.post("/api/blueprints/ml-model/render", json={"values": VALUES}).status_code == 401
    wrong = {"Authorization": "Bearer " + "y" * 40}
    response = http.post("/api/blueprints/ml-model/render", json={"values": VALUES}, headers=wrong)
    assert response.status_code == 401


def test_a_render_over_its_deadline_is_504(tmp_path, source):
    slow = settings(tmp_path, source, render_timeout_seconds=0.001)
    with TestClient(create_app(slow)) as client:
        response = client.post(
            "/api/blueprints/ml-model/render", json={"values": VALUES}, headers=AUTH
        )
    assert response.status_code == 504
    assert "longer than" in response.json()["detail"]


SLOW = {**VALUES, "project_name": SLOW_PROJECT, "project_slug": "slow-render"}


@pytest.fixture(scope="module")
def slow_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return slow_blueprint_source(tmp_path_factory.mktemp("slow") / "blueprints")


def render_workers() -> list[psutil.Process]:
    """This test's live render worker processes: the children of its fork server.

    The fork server (a child of this process, idle between renders) is not a worker, nor
    multiprocessing's resource tracker; a worker's own children (git) are not either.
    """
    workers = []
    for child in psutil.Process().children():
        try:
            if "multiprocessing.forkserver" in " ".join(child.cmdline()):
                workers.extend(child.children())
        except psutil.Error:  # gone while looked at
            continue
    return workers


@dataclass
class Watch:
    """What ran at once, sampled every few milliseconds: render folders and worker processes."""

    folders: int = 0
    workers: int = 0
    seen: dict[int, psutil.Process] = field(default_factory=dict)


@contextmanager
def watching(scratch: Path) -> Iterator[Watch]:
    watch, stop = Watch(), threading.Event()

    def sample() -> None:
        while not stop.wait(0.01):
            folders = len(list(scratch.glob("trellis-render-*")))
            workers = render_workers()
            watch.folders = max(watch.folders, folders)
            watch.workers = max(watch.workers, len(workers))
            watch.seen.update((worker.pid, worker) for worker in workers)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield watch
    finally:
        stop.set()
        sampler.join()


def gauge(client: TestClient, name: str) -> float:
    text = client.get("/metrics").text
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} is not in /metrics"
    return float(match[1])


@dataclass
class Overload:
    """What one render pool (one worker, one place in the queue) did under slow renders."""

    #: Two slow renders asked at once: one ran, one waited, both past the deadline.
    together: list[Response]
    #: Renders asked while one ran and one waited.
    refused: list[Response]
    #: (running, queued) gauge pairs seen while the two were in the pool, and after.
    gauges: set[tuple[float, float]]
    after: tuple[float, float]
    #: A slow render asked right after the previous one was answered.
    next_slow: Response
    watch: Watch
    alive: list[int]
    left_behind: list[Path]
    #: A fast render once the slow ones were stopped.
    following: Response


@pytest.fixture(scope="module")
def overload(tmp_path_factory: pytest.TempPathFactory, slow_source: Path) -> Overload:
    """Slow renders against a pool of one worker and a queue of one, run once for the module.

    Each slow render burns a core until it is stopped, so the cases share these few; the
    deadline is one a loaded machine still renders a fast blueprint within (the last request).
    """
    root = tmp_path_factory.mktemp("overload")
    scratch = root / "tmp"  # where every render's scratch files go
    scratch.mkdir()
    multiprocessing.util.get_temp_dir()  # multiprocessing's own, for the whole session
    config = settings(
        root, slow_source, render_timeout_seconds=scaled(3), render_workers=1, render_queue=1
    )

    def post(values: dict[str, object]) -> Response:
        return client.post("/api/blueprints/ml-model/render", json={"values": values}, headers=AUTH)

    with (
        pytest.MonkeyPatch.context() as patch,
        TestClient(create_app(config)) as client,
        ThreadPoolExecutor(2) as callers,
    ):
        patch.setattr(tempfile, "tempdir", str(scratch))
        with watching(scratch) as watch:
            calls = [callers.submit(post, SLOW) for _ in range(2)]
            gauges: set[tuple[float, float]] = set()
            refused: list[Response] = []
            while not all(call.done() for call in calls):
                pair = (
                    gauge(client, "trellis_renders_running"),
                    gauge(client, "trellis_renders_queued"),
                )
                gauges.add(pair)
                if pair == (1, 1) and not refused:
                    refused = [post(SLOW) for _ in range(4)]
                time.sleep(0.05)
            together = [call.result() for call in calls]
            after = (
                gauge(client, "trellis_renders_running"),
                gauge(client, "trellis_renders_queued"),
            )
            next_slow = post(SLOW)
            left_behind = list(scratch.glob("trellis-render-*"))
        alive = [pid for pid, worker in watch.seen.items() if worker.is_running()]
        following = post(VALUES)
    return Overload(
        together, refused, gauges, after, next_slow, watch, alive, left_behind, following
    )


def test_a_render_past_its_deadline_is_stopped_and_leaves_nothing_behind(overload):
    for response in [*overload.together, overload.next_slow]:
        assert response.status_code == 504, response.text
        assert "longer than" in response.json()["detail"]
    # Stopped, not abandoned: no scratch folder left, no worker process alive.
    assert overload.left_behind == []
    assert overload.watch.seen, "no render worker process was seen"
    assert overload.alive == []
    # The slot came back: the next render runs, and renders the same files as before.
    assert overload.following.status_code == 200, overload.following.text
    assert files_of(overload.following)["slow.txt"] == b""


def test_a_render_past_its_deadline_never_runs_beside_the_next(overload):
    assert overload.next_slow.status_code == 504, overload.next_slow.text
    assert overload.watch.folders == 1, f"{overload.watch.folders} renders ran at once; limit 1"
    assert overload.watch.workers == 1, f"{overload.watch.workers} workers at once; limit 1"


def test_a_full_render_queue_answers_429_with_retry_after(overload):
    # One running and one waiting at most; every other request is refused at once.
    assert len(overload.refused) == 4, overload.gauges
    for response in overload.refused:
        assert response.status_code == 429, response.text
        assert int(response.headers["Retry-After"]) >= 1
        assert "TRELLIS_BLUEPRINTS__RENDER_QUEUE" in response.json()["detail"]


def test_running_and_queued_renders_are_in_metrics(overload):
    assert [call.status_code for call in overload.together] == [504, 504]
    assert (1, 1) in overload.gauges, overload.gauges
    assert overload.after == (0, 0)


def test_a_render_over_the_size_bound_fails_with_the_setting_named(tmp_path, source):
    small = settings(tmp_path, source, max_render_bytes=10_000)
    with TestClient(create_app(small)) as client:
        response = client.post(
            "/api/blueprints/ml-model/render", json={"values": VALUES}, headers=AUTH
        )
    assert response.status_code == 500
    assert "TRELLIS_BLUEPRINTS__MAX_RENDER_BYTES" in response.json()["detail"]


def test_an_unreadable_blueprint_source_is_503(tmp_path, source):
    gone = settings(tmp_path, source, vcs_ref="9.9.9")
    with TestClient(create_app(gone)) as client:
        response = client.post(
            "/api/blueprints/ml-model/render", json={"values": VALUES}, headers=AUTH
        )
    assert response.status_code == 503, response.text


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, source: Path):
    """Two repos generated at 1.0.0, one at 1.1.0 (served over HTTP), one broken location."""
    root = tmp_path_factory.mktemp("fleet")
    old = [
        str(render({**VALUES, "project_name": name}, root / name.lower(), src=source))
        for name in ("Alpha", "Beta")
    ]
    release(source, "1.1.0", "- More words in the README.")
    render({**VALUES, "project_name": "Gamma"}, root / "web" / "gamma", src=source, vcs_ref="1.1.0")
    with serve_directory(root / "web") as url:
        yield {"old": old, "new": f"{url}/gamma", "broken": str(root / "missing")}


def test_repositories_report_their_blueprint_fact(tmp_path, source, fleet):
    locations = [*fleet["old"], fleet["new"], fleet["broken"]]
    configured = settings(tmp_path, source, repositories=locations)
    with TestClient(create_app(configured)) as client:
        response = client.get("/api/blueprints/repositories", headers=AUTH)
        assert response.status_code == 200, response.text
        body = response.json()
        listing = client.get("/api/blueprints", headers=AUTH).json()
    by_location = {item["location"]: item for item in body["items"]}
    assert set(by_location) == {*fleet["old"], fleet["new"]}
    alpha = by_location[fleet["old"][0]]
    assert alpha == {
        "location": fleet["old"][0],
        "entityRef": "component:default/alpha",
        "blueprint": "ml-model",
        "version": "1.0.0",
        "latestVersion": "1.1.0",
        "versionsBehind": 1,
        "minorVersionsBehind": 1,
    }
    assert by_location[fleet["new"]]["versionsBehind"] == 0
    assert [p["location"] for p in body["problems"]] == [fleet["broken"]]
    by_name = {item["name"]: item for item in listing["items"]}
    ml_model = by_name["ml-model"]
    # Each blueprint lists its own releases only: the others' are not ml-model's.
    assert ml_model["versions"] == ["1.0.0", "1.1.0"]
    assert ml_model["latestVersion"] == "1.1.0"
    for name, item in by_name.items():
        if name != "ml-model":
            # The scratch source holds one commit: each other blueprint's current version.
            current = yaml.safe_load((REPO / "blueprints" / name / "blueprint.yaml").read_text())
            assert item["versions"] == [current["version"]], item
            assert item["latestVersion"] == current["version"], item
    assert ml_model["usage"] == {"1.1.0": 1, "1.0.0": 2}
    assert ml_model["answersSchema"]["required"] == ["project_name", "owner", "repository"]
    assert "edge_regions" in ml_model["answersSchema"]["properties"]


def test_blueprints_listing_needs_a_token(http):
    assert http.get("/api/blueprints").status_code == 401
    assert http.get("/api/blueprints/repositories").status_code == 401
