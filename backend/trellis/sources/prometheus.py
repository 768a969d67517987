"""Prometheus's HTTP API: instant and range queries, every failure one ``SourceUnavailable``.

Queries go as POST forms (``/api/v1/query``, ``/api/v1/query_range``): a query covering many
servers can be long, and forms have no URL length limit. Each request carries the client's
timeout, and Prometheus is asked to give up at the same moment (its ``timeout`` parameter),
so an expensive query stops on both sides. Answers become domain ``Sample``/``Series``; the
raw JSON never leaves this module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from trellis.errors import SourceUnavailable
from trellis.model import Sample, Series
from trellis.redact import url_base

__all__ = ["SOURCE", "PrometheusSource", "to_samples", "to_series"]

SOURCE = "prometheus"
_QUERY = "/api/v1/query"
_QUERY_RANGE = "/api/v1/query_range"
_NAMES = "/api/v1/label/__name__/values"
_METRIC_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")

Json = dict[str, Any]


class PrometheusSource:
    """Runs PromQL against one Prometheus (or anything speaking its HTTP API)."""

    name = SOURCE

    def __init__(self, client: httpx.Client, *, label: str | None = None) -> None:
        self._client = client
        self.label = label or url_base(str(client.base_url))

    def query(self, promql: str, at: datetime) -> list[Sample]:
        """The instant vector ``promql`` evaluates to at ``at``."""
        data = self._post(_QUERY, {"query": promql, "time": _unix(at)}, expect="vector")
        return to_samples(data["result"])

    def query_range(
        self, promql: str, start: datetime, end: datetime, step_seconds: float
    ) -> list[Series]:
        """The series ``promql`` evaluates to at every step from ``start`` to ``end``."""
        form = {
            "query": promql,
            "start": _unix(start),
            "end": _unix(end),
            "step": f"{step_seconds:g}",
        }
        data = self._post(_QUERY_RANGE, form, expect="matrix")
        return to_series(data["result"])

    def metric_names(self, start: datetime, end: datetime, prefix: str = "") -> frozenset[str]:
        """The metric names starting with ``prefix`` that have samples between two moments.

        Read from the TSDB's index (``/api/v1/label/__name__/values``), no samples: cheap
        even for a large Prometheus. The prefix goes as a ``match[]`` selector, so a
        Prometheus of a hundred thousand names answers only those asked about.
        """
        params = {"start": _unix(start), "end": _unix(end)}
        if prefix:
            if not _METRIC_NAME.fullmatch(prefix):  # then it needs no escaping below
                raise ValueError(f"{prefix!r} does not begin a metric name")
            params["match[]"] = f'{{__name__=~"{prefix}.+"}}'
        names = self._send("GET", _NAMES, params=params).get("data")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise SourceUnavailable(SOURCE, f"{_NAMES} answered without a list of names")
        return frozenset(names)

    def close(self) -> None:
        """Close the HTTP client's connections."""
        self._client.close()

    def _post(self, path: str, form: Mapping[str, str], *, expect: str) -> Json:
        timeout = self._client.timeout.read
        if timeout is not None:
            form = {**form, "timeout": f"{timeout:g}s"}
        data = self._send("POST", path, data=form).get("data")
        if not isinstance(data, dict) or data.get("resultType") != expect:
            raise SourceUnavailable(SOURCE, f"{path} answered without a {expect} result")
        if not isinstance(data.get("result"), list):
            raise SourceUnavailable(SOURCE, f"{path} answered without a result list")
        return data

    def _send(self, method: str, path: str, **request: Any) -> Json:
        """The answer's body when Prometheus says ``success``; else why it could not be read."""
        try:
            response = self._client.request(method, path, **request)
        except httpx.TimeoutException as exc:
            raise SourceUnavailable(SOURCE, f"no answer from {self.label} in time") from exc
        except httpx.HTTPError as exc:
            raise SourceUnavailable(
                SOURCE, f"cannot reach {self.label} ({type(exc).__name__})"
            ) from exc
        body = _json(response)
        if response.status_code != httpx.codes.OK or body.get("status") != "success":
            raise SourceUnavailable(SOURCE, _failure(response, body))
        return body


def to_samples(result: list[Any]) -> list[Sample]:
    """Map an instant vector's ``result`` to samples."""
    try:
        return [
            Sample(
                labels=_labels(item["metric"]),
                timestamp=float(item["value"][0]),
                value=float(item["value"][1]),
            )
            for item in result
        ]
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise SourceUnavailable(SOURCE, "a vector result has an unexpected shape") from exc


def to_series(result: list[Any]) -> list[Series]:
    """Map a range query's ``result`` (a matrix) to series, emptying ``result`` as it goes.

    Each row's decoded JSON (a list per point) is let go as soon as its series is made: a
    page's answers hold about 13,000 points, and lists still held while the next rows are
    mapped outlive young collections and are promoted, which brings on full collections
    of the whole heap.
    """
    series = []
    try:
        for i, item in enumerate(result):
            series.append(
                Series(
                    labels=_labels(item["metric"]),
                    # A list first: the tuple then knows its size, no generator runs per point.
                    points=tuple([(float(t), float(v)) for t, v in item["values"]]),
                )
            )
            result[i] = None
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise SourceUnavailable(SOURCE, "a matrix result has an unexpected shape") from exc
    return series


def _labels(raw: object) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise TypeError("labels are not an object")
    return {str(key): str(value) for key, value in raw.items()}


def _json(response: httpx.Response) -> Json:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _failure(response: httpx.Response, body: Json) -> str:
    """Prometheus's own words when it gave them (``bad_data: parse error ...``), else the status."""
    error = body.get("error")
    if isinstance(error, str) and error:
        kind = body.get("errorType")
        text = f"{kind}: {error}" if isinstance(kind, str) and kind else error
        return f"{text[:500]} (HTTP {response.status_code})"
    if response.status_code == httpx.codes.OK:
        return f"{response.request.url.path} answered with something not a Prometheus answer"
    return f"HTTP {response.status_code} from {response.request.url.path}"


def _unix(moment: datetime) -> str:
    return f"{moment.timestamp():.3f}"
