"""Hostile requests get a bounded 4xx naming what is wrong: never a 5xx, never a huge answer."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from support.blueprints import VARIANTS
from support.gitrepos import blueprint_source
from support.registry import ModelSpec, seed
from support.services import wait_until
from support.timing import scaled
from trellis.app import MAX_BODY_BYTES, create_app
from trellis.config import Settings

TOKEN = "bounds-token-" + "b" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RENDER = "/api/blueprints/ml-model/render"
VALUES = {**VARIANTS["sklearn-github-aws"], "repository": "acme/fraud-detector"}


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    source = blueprint_source(tmp_path_factory.mktemp("source") / "blueprints")
    state = tmp_path_factory.mktemp("bounds")
    uri = f"sqlite:///{state / 'registry.db'}"
    seed(uri, [ModelSpec("fraud-detector", versions=1, champion=1)])
    settings = Settings(
        state_dir=state,
        api_tokens=[TOKEN],
        mlflow={"tracking_uri": uri},
        blueprints={"source": str(source), "vcs_ref": "1.0.0"},
        catalog={"refresh_interval_seconds": 3600},
    )
    with TestClient(create_app(settings)) as client:
        wait_until(
            lambda: client.get("/readyz").status_code == 200,
            timeout=scaled(30),
            what="the first catalog read",
        )
        yield client


@pytest.mark.parametrize(
    "end",
    [
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59-14:00",
        "1970-01-01T00:10:00Z",
        "-62135596800",
    ],
)
def test_edge_end_dates_are_refused_with_422_not_500(http, end):
    response = http.get(
        "/api/observability/default/component/anything", params={"end": end}, headers=AUTH
    )
    assert response.status_code == 422, response.text
    assert "end" in response.json()["detail"]


def test_many_unknown_answers_get_a_bounded_error(http):
    values = {f"unknown_{i:05d}": "x" for i in range(5_000)}
    values["framework"] = "y" * 200_000  # an enum answer echoed back
    request = json.dumps({"values": values}).encode()
    response = http.post(
        RENDER, content=request, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    body = response.json()
    assert len(body["errors"]) <= 21
    assert "more" in body["errors"][-1]["message"]
    assert len(response.content) < 10_000, f"{len(response.content)} bytes for {len(request)}"
    # The questions are listed at most once, not once per unknown answer.
    assert sum("project_slug" in error["message"] for error in body["errors"]) <= 1


def test_a_chunked_body_over_the_limit_gets_413(http):
    chunk = b" " * 65_536

    def body() -> Iterator[bytes]:
        yield b'{"values": {"description": "'
        for _ in range(MAX_BODY_BYTES // len(chunk) + 2):
            yield chunk
        yield b'"}}'

    request = http.build_request(
        "POST", RENDER, content=body(), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    response = http.send(request)
    assert response.status_code == 413, response.text


@pytest.mark.parametrize(
    "text", ["a\x00b", "bell\x07", "esc\x1b[31m", "del\x7f", "nel\x85", "ls\u2028"]
)
def test_control_characters_in_answers_are_refused_naming_the_field(http, text):
    values = {**VALUES, "description": text}
    response = http.post(RENDER, json={"values": values}, headers=AUTH)
    assert response.status_code == 400, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["description"]


@pytest.mark.parametrize("repository", ["../../../etc", "..", ".", "acme/..", "./acme", "a/./b"])
def test_a_repository_of_dot_segments_is_refused(http, repository):
    values = {**VALUES, "repository": repository}
    response = http.post(RENDER, json={"values": values}, headers=AUTH)
    assert response.status_code == 400, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["repository"]


def test_a_repository_named_like_a_dotfile_is_still_taken(http):
    values = {**VALUES, "repository": "acme/.github"}
    response = http.post(RENDER, json={"values": values}, headers=AUTH)
    assert response.status_code == 200, response.text
