"""The error tree mapped to HTTP answers in one place: each status, body and header."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from trellis.api.errors import add_error_handlers
from trellis.errors import (
    AnswerError,
    Busy,
    ConfigError,
    Conflict,
    Disabled,
    InvalidQuery,
    InvalidRequest,
    NotFound,
    NotReady,
    SourceUnavailable,
    TimedOut,
    TrellisError,
    Unauthorized,
)
from trellis.observability import WindowError


def answer(error: TrellisError) -> tuple[int, dict[str, object], dict[str, str]]:
    app = FastAPI()
    add_error_handlers(app)

    @app.get("/")
    def fail() -> None:
        raise error

    response = TestClient(app).get("/")
    return response.status_code, response.json(), dict(response.headers)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidRequest("unknown check ids: 'x'"), 400),
        (NotFound("no entity 'resource:default/x'"), 404),
        (Conflict("no drop is held"), 409),
        (InvalidQuery("ids[] is required"), 422),
        (WindowError("range '1x' is not a duration"), 422),
        (SourceUnavailable("mlflow", "refused"), 503),
        (Disabled("TRELLIS_BLUEPRINTS__SOURCE is not set"), 503),
        (TimedOut("rendering ml-model took longer than 60 s"), 504),
        (ConfigError("a setting that cannot work"), 500),
    ],
)
def test_each_error_has_its_status_and_says_why(error, status):
    code, body, _ = answer(error)
    assert (code, body) == (status, {"detail": str(error)})


def test_bad_answers_are_named_one_by_one():
    code, body, _ = answer(AnswerError([("name", "is required"), ("gpus", "must be a number")]))
    assert code == 400
    assert body["errors"] == [
        {"field": "name", "message": "is required"},
        {"field": "gpus", "message": "must be a number"},
    ]


@pytest.mark.parametrize(
    ("error", "status", "header", "value"),
    [
        (NotReady("no snapshot yet"), 503, "retry-after", "5"),
        (Busy("8 renders are waiting", retry_after=7), 429, "retry-after", "7"),
        (Unauthorized("a valid bearer token is required"), 401, "www-authenticate", "Bearer"),
    ],
)
def test_the_client_is_told_how_to_go_on(error, status, header, value):
    code, _, headers = answer(error)
    assert (code, headers[header]) == (status, value)


def test_a_body_that_cannot_be_parsed_is_a_400_in_the_shape_every_route_documents():
    app = FastAPI()
    add_error_handlers(app)

    @app.post("/")
    def take(values: dict[str, int]) -> dict[str, int]:
        return values

    client = TestClient(app)
    # Not UTF-8: FastAPI refuses it with its own HTTPException, not a validation error.
    response = client.post(
        "/", content=b"\x05\xef\xbfmh\xff", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json() == {
        "detail": "invalid request: body: There was an error parsing the body",
        "errors": [{"field": "body", "message": "There was an error parsing the body"}],
    }
    # Starlette's other refusals keep their status, body and headers.
    missing = client.get("/nowhere")
    assert (missing.status_code, missing.json()) == (404, {"detail": "Not Found"})
    wrong = client.put("/")
    assert (wrong.status_code, wrong.json()) == (405, {"detail": "Method Not Allowed"})
    assert wrong.headers["allow"] == "POST"
