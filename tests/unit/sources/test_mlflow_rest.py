"""``RestRegistry`` against answers recorded from a real tracking server: paging and failures.

Every failure of the server becomes ``SourceUnavailable`` with a reason that names the route
and what went wrong, never the credentials the client was built with; a run that does not
exist is ``NotFound``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from support.recorded import Replay, client, recording, replay
from trellis.errors import NotFound, SourceUnavailable
from trellis.sources.mlflow import RestRegistry

MODELS = "/api/2.0/mlflow/registered-models/search"
VERSIONS = "/api/2.0/mlflow/model-versions/search"
SECRET = "s3cr3t-t0ken"
PAGES = [
    "registered-models-search.page-1",
    "registered-models-search.page-2",
    "model-versions-search.page-1",
    "model-versions-search.page-2",
]


def registry(handler: Callable[[httpx.Request], httpx.Response], **options: int) -> RestRegistry:
    http = client(handler, base_url=f"http://trellis:{SECRET}@mlflow.internal:5000")
    http.headers["Authorization"] = f"Bearer {SECRET}"
    return RestRegistry(http, label="mlflow.internal", **options)


@pytest.fixture
def paged() -> Iterator[tuple[RestRegistry, Replay]]:
    answers = replay("mlflow", PAGES)
    source = registry(answers, model_page_size=2, version_page_size=3)
    yield source, answers
    source.close()


def test_a_read_follows_every_page_token_of_models_then_versions(paged):
    source, answers = paged

    snapshot = source.read()

    assert answers.paths() == [MODELS, MODELS, VERSIONS, VERSIONS]
    first, second = answers.requests[0].url.params, answers.requests[1].url.params
    assert first["max_results"] == "2" and "page_token" not in first
    token = recording("mlflow", "registered-models-search.page-1")["body"]["next_page_token"]
    assert second["page_token"] == token
    assert [m.name for m in snapshot.models] == sorted(m.name for m in snapshot.models)
    assert len(snapshot.models) == 3
    assert sum(len(m.versions) for m in snapshot.models) == 4
    assert snapshot.registry == "mlflow.internal"


def test_a_page_size_the_server_refuses_is_unavailable_with_the_route():
    answers = replay("mlflow", ["registered-models-search.bad-page-size"])
    source = registry(answers, model_page_size=100_000)

    with pytest.raises(SourceUnavailable) as caught:
        source.read()

    assert caught.value.reason == f"HTTP 400 from {MODELS}"


@pytest.mark.parametrize(
    ("status", "content", "reason"),
    [
        (500, b"<html>Internal Server Error</html>", f"HTTP 500 from {MODELS}"),
        (503, b'{"error_code": "TEMPORARILY_UNAVAILABLE"}', f"HTTP 503 from {MODELS}"),
        (404, b'{"error_code": "ENDPOINT_NOT_FOUND"}', f"HTTP 404 from {MODELS}"),
        (200, b"<html>a login page</html>", f"{MODELS} answered with something not JSON"),
        (200, b"[1, 2]", f"{MODELS} answered with an unexpected shape"),
        (200, b'{"registered_models": [', f"{MODELS} answered with something not JSON"),
    ],
    ids=["500-html", "503", "404-route", "not-json", "json-list", "truncated-json"],
)
def test_a_bad_answer_is_unavailable_with_a_clear_reason(status, content, reason):
    source = registry(lambda request: httpx.Response(status, content=content))

    with pytest.raises(SourceUnavailable) as caught:
        source.read()

    assert caught.value.source == "mlflow"
    assert caught.value.reason == reason
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (httpx.ReadTimeout, f"timed out reading {MODELS}"),
        (httpx.ConnectTimeout, f"timed out reading {MODELS}"),
        (httpx.ConnectError, f"ConnectError reading {MODELS}"),
        (httpx.RemoteProtocolError, f"RemoteProtocolError reading {MODELS}"),
    ],
)
def test_a_request_that_fails_is_unavailable_without_the_credentials(error, reason):
    def fail(request: httpx.Request) -> httpx.Response:
        raise error(f"failed talking to {request.url}", request=request)

    source = registry(fail)

    with pytest.raises(SourceUnavailable) as caught:
        source.read()

    assert caught.value.reason == reason
    assert SECRET not in str(caught.value)
    assert isinstance(caught.value.__cause__, error)


def test_a_run_that_does_not_exist_is_not_found():
    missing = recording("mlflow", "runs-get.missing")
    run_id = missing["request"]["params"]["run_id"]
    source = registry(Replay([missing]))

    with pytest.raises(NotFound) as caught:
        source.run_metric_keys(run_id)

    assert run_id in str(caught.value)


def test_the_metric_names_of_a_run_come_from_one_runs_get():
    answers = replay("mlflow", ["runs-get"])
    run_id = recording("mlflow", "runs-get")["request"]["params"]["run_id"]

    assert registry(answers).run_metric_keys(run_id) == ["auc", "loss"]
    assert answers.paths() == ["/api/2.0/mlflow/runs/get"]


def test_a_metric_history_is_read_in_step_order():
    exchange = recording("mlflow", "metrics-get-history")
    params = exchange["request"]["params"]
    answers = Replay([exchange], loose=frozenset({"max_results"}))

    points = registry(answers).metric_history(params["run_id"], params["metric_key"])

    assert [(p.step, p.value) for p in points] == [(0, 0.9), (1, 0.5), (2, 0.25)]
    assert answers.requests[0].url.params["max_results"] == "25000"


def test_a_named_model_is_read_alone_as_a_full_read_gives_it(paged):
    source, _ = paged
    full = source.read()
    models = [
        model
        for page in PAGES[:2]
        for model in recording("mlflow", page)["body"]["registered_models"]
    ]
    versions = [
        version
        for page in PAGES[2:]
        for version in recording("mlflow", page)["body"]["model_versions"]
    ]
    wanted = next(m for m in full.models if "'" not in m.name and '"' not in m.name)
    quoted = next(m.name for m in full.models if "'" in m.name)
    asked: list[httpx.QueryParams] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.params)
        if request.url.path == "/api/2.0/mlflow/registered-models/get":
            found = [m for m in models if m["name"] == request.url.params["name"]]
            if not found:
                return httpx.Response(404, json={"error_code": "RESOURCE_DOES_NOT_EXIST"})
            return httpx.Response(200, json={"registered_model": found[0]})
        assert request.url.path == VERSIONS
        assert request.url.params["filter"] == f"name='{wanted.name}'"
        # The filter is the server's: a version of another model is never taken.
        return httpx.Response(200, json={"model_versions": versions})

    alone = registry(handler)
    assert alone.read_models([wanted.name, "gone"]) == (wanted,)
    assert [params.get("name") for params in asked] == [wanted.name, None, "gone"]
    assert alone.read_models([quoted]) is None  # no filter can name it: read all
    assert len(asked) == 3
    alone.close()
