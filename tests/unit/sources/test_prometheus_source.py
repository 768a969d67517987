"""``PrometheusSource`` against answers recorded from a real Prometheus.

Vectors and matrices become samples and series with their labels kept exactly; every
failure (Prometheus's own error, an answer of another type, a server that is not
Prometheus, no answer in time) is one ``SourceUnavailable`` that says why, in Prometheus's
words when it gave them.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from urllib.parse import parse_qs

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support.recorded import Replay, answer, client, recording, replay
from trellis.errors import SourceUnavailable
from trellis.sources.prometheus import PrometheusSource

HOSTILE = "Façade 'détection' \"v2\" <b>&amp; 🔥 %2F 名前  "
END = datetime.fromtimestamp(1_700_000_000, tz=UTC)
RATE = "sum by (model) (rate(requests_total[5m]))"
SECRET = "s3cr3t-t0ken"


def source(handler) -> PrometheusSource:
    http = client(handler, base_url=f"http://reader:{SECRET}@prometheus.internal:9090")
    return PrometheusSource(http)


def recorded(*names: str) -> Replay:
    # The timeout sent is the client's; the recording's is the recorder's.
    return replay("prometheus", names, loose={"timeout"})


def test_an_instant_vector_becomes_samples_with_their_labels_kept_exactly():
    answers = recorded("query.vector")

    samples = source(answers).query(RATE, END)

    by_model = {s.labels["model"]: s for s in samples}
    assert sorted(by_model) == sorted([HOSTILE, "fraud-detector"])
    assert by_model["fraud-detector"].value == pytest.approx(5 / 30)
    assert by_model[HOSTILE].value == pytest.approx(2 / 30)
    assert {s.timestamp for s in samples} == {END.timestamp()}
    form = parse_qs(answers.requests[0].content.decode())
    assert form["query"] == [RATE] and form["time"] == ["1700000000.000"]
    assert form["timeout"] == ["5s"]


def test_an_empty_vector_is_no_samples():
    assert source(recorded("query.empty")).query("absent_metric_total", END) == []


def test_a_matrix_becomes_series_with_every_step():
    answers = recorded("query_range.matrix")

    start = datetime.fromtimestamp(1_700_000_000 - 300, tz=UTC)

    series = source(answers).query_range(RATE, start, END, 60)

    by_model = {s.labels["model"]: s for s in series}
    assert sorted(by_model) == sorted([HOSTILE, "fraud-detector"])
    times = [t for t, _ in by_model["fraud-detector"].points]
    assert times == [1_700_000_000 - 60 * n for n in range(5, -1, -1)]
    assert all(v == pytest.approx(5 / 30) for _, v in by_model["fraud-detector"].points)
    assert parse_qs(answers.requests[0].content.decode())["step"] == ["60"]


def test_a_parse_error_is_unavailable_in_prometheus_words():
    with pytest.raises(SourceUnavailable) as caught:
        source(recorded("query.bad-data")).query("sum(rate(", END)

    assert caught.value.source == "prometheus"
    assert caught.value.reason == (
        'bad_data: invalid parameter "query": 1:10: parse error: unclosed left parenthesis'
        " (HTTP 400)"
    )


def test_too_many_points_is_unavailable_in_prometheus_words():
    start = datetime.fromtimestamp(1_700_000_000 - 86_400, tz=UTC)

    with pytest.raises(SourceUnavailable) as caught:
        source(recorded("query_range.too-many-points")).query_range(RATE, start, END, 1)

    assert caught.value.reason.startswith("bad_data: exceeded maximum resolution of 11,000 points")
    assert caught.value.reason.endswith("(HTTP 400)")


def test_an_answer_of_another_type_is_unavailable():
    with pytest.raises(SourceUnavailable) as caught:
        source(recorded("query.scalar")).query("1 + 1", END)

    assert caught.value.reason == "/api/v1/query answered without a vector result"


def test_a_vector_where_a_matrix_was_asked_for_is_unavailable():
    vector = recording("prometheus", "query.vector")
    start = datetime.fromtimestamp(1_700_000_000 - 300, tz=UTC)

    with pytest.raises(SourceUnavailable) as caught:
        source(lambda request: answer(vector)).query_range(RATE, start, END, 60)

    assert caught.value.reason == "/api/v1/query_range answered without a matrix result"


@pytest.mark.parametrize(
    ("status", "content", "reason"),
    [
        (502, b"<html>Bad Gateway</html>", "HTTP 502 from /api/v1/query"),
        (200, b"<html>a login page</html>", "/api/v1/query answered with something not a "
         "Prometheus answer"),
        (200, b'{"status": "success", "data": {"resultType": "vector"}}',
         "/api/v1/query answered without a result list"),
        (200, b'{"status": "success", "data": {"resultType": "vector", "result": [{}]}}',
         "a vector result has an unexpected shape"),
        (200, b'{"status": "success", "data": {"resultType": "matrix", "result": []}}',
         "/api/v1/query answered without a vector result"),
        (503, b'{"status": "error", "errorType": "timeout", "error": "query timed out"}',
         "timeout: query timed out (HTTP 503)"),
    ],
    ids=["502-html", "not-json", "no-result", "bad-sample", "matrix-for-instant", "error-body"],
)  # fmt: skip
def test_a_bad_answer_is_unavailable_with_a_clear_reason(status, content, reason):
    with pytest.raises(SourceUnavailable) as caught:
        source(lambda request: httpx.Response(status, content=content)).query(RATE, END)

    assert caught.value.reason == reason
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (httpx.ReadTimeout, "no answer from http://prometheus.internal:9090 in time"),
        (httpx.ConnectError, "cannot reach http://prometheus.internal:9090 (ConnectError)"),
    ],
)
def test_a_request_that_fails_is_unavailable_without_the_credentials(error, reason):
    def fail(request: httpx.Request) -> httpx.Response:
        raise error(f"failed talking to {request.url}", request=request)

    with pytest.raises(SourceUnavailable) as caught:
        source(fail).query(RATE, END)

    assert caught.value.reason == reason
    assert SECRET not in str(caught.value)


def test_metric_names_come_from_the_index_between_two_moments():
    seen: list[httpx.Request] = []

    def names(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = {"status": "success", "data": ["up", "server:requests:rate5m", HOSTILE]}
        return httpx.Response(200, json=body)

    start = datetime.fromtimestamp(1_700_000_000 - 600, tz=UTC)
    found = source(names).metric_names(start, END)

    assert found == {"up", "server:requests:rate5m", HOSTILE}
    (request,) = seen
    assert request.method == "GET" and request.url.path == "/api/v1/label/__name__/values"
    assert dict(request.url.params) == {"start": "1699999400.000", "end": "1700000000.000"}


def test_metric_names_can_be_asked_for_by_prefix_only():
    seen: list[httpx.Request] = []

    def names(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": "success", "data": ["server:requests"]})

    assert source(names).metric_names(END, END, "server:") == {"server:requests"}
    assert seen[0].url.params["match[]"] == '{__name__=~"server:.+"}'
    with pytest.raises(ValueError, match="does not begin a metric name"):
        source(names).metric_names(END, END, 'x"}')  # nothing unescaped reaches the selector
    assert len(seen) == 1


@pytest.mark.parametrize(
    "status, body",
    [
        (503, {"status": "error", "errorType": "unavailable", "error": "shutting down"}),
        (200, {"status": "success", "data": {"up": 1}}),
        (200, {"status": "success", "data": ["up", 3]}),
        (200, "not json"),
    ],
    ids=["refused", "not-a-list", "not-names", "not-prometheus"],
)
def test_metric_names_that_cannot_be_read_are_source_unavailable(status, body):
    def answer_with(_: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    with pytest.raises(SourceUnavailable) as failed:
        source(answer_with).metric_names(END, END)
    assert SECRET not in str(failed.value)


def _go_float(value: float) -> str:
    """A value as Prometheus writes it (Go's ``strconv.FormatFloat(v, 'f', -1, 64)``-like)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


_VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**20), 10**20).map(float),
    st.sampled_from([0.0, -0.0, 1e-300, 5e-324, 1e308]),
)
_LABELS = st.dictionaries(
    st.sampled_from(["le", "region", "name", "x"]),
    st.one_of(st.text(max_size=12), st.sampled_from([',"5"]', '"]', '\\",\\"1\\"]', "+Inf"])),
)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(_LABELS, st.lists(_VALUES, max_size=8)), max_size=6))
def test_values_as_prometheus_writes_them_become_the_same_floats(rows) -> None:
    """Every value Go can write (NaN, infinities, exponents) and every label, kept exactly."""
    start = 1_700_000_000
    body = {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {
                    "metric": labels,
                    "values": [[start + 60 * i, _go_float(v)] for i, v in enumerate(values)],
                }
                for labels, values in rows
            ],
        },
    }
    content = json.dumps(body, separators=(",", ":")).encode()
    series = source(lambda request: httpx.Response(200, content=content)).query_range(
        RATE, END, END, 60
    )
    assert [s.labels for s in series] == [labels for labels, _ in rows]
    for got, (_, values) in zip(series, rows, strict=True):
        want = [(float(start + 60 * i), float(_go_float(v))) for i, v in enumerate(values)]
        assert len(got.points) == len(want)
        for (t, v), (wt, wv) in zip(got.points, want, strict=True):
            assert t == wt and (v == wv or (math.isnan(v) and math.isnan(wv)))


@pytest.mark.parametrize(
    "values",
    [[[1, "1.2.3"]], [[1, "1e"]], [[1, None]], [[1, "0.5", 3]], [[1, {"v": 1}]]],
    ids=["two-points", "bad-exponent", "null", "triple", "object"],
)
def test_a_value_that_is_no_number_is_an_unexpected_shape(values) -> None:
    body = {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {}, "values": values}]}}  # fmt: skip
    content = json.dumps(body).encode()
    with pytest.raises(SourceUnavailable, match="a matrix result has an unexpected shape"):
        source(lambda request: httpx.Response(200, content=content)).query_range(RATE, END, END, 60)
