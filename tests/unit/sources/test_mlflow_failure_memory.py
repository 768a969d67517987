"""What champion details remember of ``MLmodel`` reads that failed, and what they stop asking.

``DetailsReader`` is driven with fakes of the I/O an adapter lends it (versions without runs,
so only the ``MLmodel`` reads matter); one test goes through ``RestRegistry`` to check which
HTTP answers count as the storage failing.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from support.domain import T0
from support.recorded import client
from trellis.model import ModelVersion
from trellis.sources.mlflow import RestRegistry
from trellis.sources.mlflow.details import (
    ARTIFACT_READS,
    MLMODEL_RETRY_SECONDS,
    RUN_BATCH,
    STORAGE_FAILURES,
    DetailsReader,
    Unreadable,
    _Breaker,
    storage_of,
)

SIGNED = "flavors: {}\nsignature:\n  inputs: '[]'\n"
#: Reads that may still be in flight when a storage is cut off.
MOST_ASKED = STORAGE_FAILURES + ARTIFACT_READS


def versions(count: int, storage: str = "s3://models", model: str = "m") -> list[ModelVersion]:
    return [
        ModelVersion(name, 1, "READY", f"{storage}/{name}/1", None, "", {}, T0, T0)
        for name in (f"{model}-{i:03d}" for i in range(count))
    ]


class Artifacts:
    """A fake ``MLmodel`` read: per storage, an answer; counts what was asked."""

    def __init__(self, answer: Callable[[ModelVersion], str]) -> None:
        self.answer = answer
        self.asked: Counter[tuple[str, int]] = Counter()
        self._lock = threading.Lock()

    def __call__(self, version: ModelVersion) -> str:
        with self._lock:
            self.asked[(version.model_name, version.version)] += 1
        return self.answer(version)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def reader(clock: Clock):
    made = DetailsReader(RUN_BATCH, deadline=None, timer=clock)
    yield made
    made.close()


def read(reader: DetailsReader, wanted: list[ModelVersion], artifacts: Artifacts):
    return reader.read(wanted, lambda: [], lambda experiments, runs: [], artifacts)


def failing_storage(version: ModelVersion) -> str:
    raise Unreadable("HTTP 500 (INTERNAL_ERROR)", storage=True)


def test_a_storage_that_fails_every_read_is_not_asked_for_the_rest_of_the_read(reader):
    artifacts = Artifacts(failing_storage)
    wanted = versions(200)

    details = read(reader, wanted, artifacts)

    assert STORAGE_FAILURES <= sum(artifacts.asked.values()) <= MOST_ASKED
    assert all(d.has_signature is None for d in details.values())  # unknown, never false
    asked = [d for key, d in details.items() if key in artifacts.asked]
    skipped = [d for key, d in details.items() if key not in artifacts.asked]
    assert all(d.problems[0].endswith("HTTP 500 (INTERNAL_ERROR)") for d in asked)
    assert len(skipped) == 200 - len(asked)
    pattern = (
        rf"MLmodel of m-\d+ version 1 could not be read: not asked: {STORAGE_FAILURES} MLmodel "
        r"reads from "
        r"s3://models failed in a row in this read \(the last: HTTP 500 \(INTERNAL_ERROR\)\); "
        r"asked again next read"
    )
    assert skipped and all(re.fullmatch(pattern, d.problems[0]) for d in skipped)


def test_a_signed_url_in_a_storage_reason_reaches_no_problem(reader):
    """A storage client's error can quote the URL it was handed, signature and all."""

    def leaking(version: ModelVersion) -> str:
        url = f"https://bob:hunter2@store/{version.model_name}?X-Amz-Signature=SECRET"
        raise Unreadable(f"403 for url: {url}", storage=True)

    details = read(reader, versions(40), Artifacts(leaking))
    problems = [p for d in details.values() for p in d.problems]
    assert len(problems) == 40  # the asked and the skipped
    assert not any("hunter2" in p or "SECRET" in p for p in problems)
    assert all("https://store/" in p for p in problems)


def test_failed_versions_are_remembered_and_skipped_ones_are_asked_next_read(reader, clock):
    artifacts = Artifacts(failing_storage)
    wanted = versions(200)
    read(reader, wanted, artifacts)
    first = set(artifacts.asked)
    artifacts.asked.clear()

    read(reader, wanted, artifacts)

    # The versions tried the first time are not asked again; others are probed instead.
    assert not first & set(artifacts.asked)
    assert STORAGE_FAILURES <= sum(artifacts.asked.values()) <= MOST_ASKED


def test_a_remembered_failure_is_asked_again_after_the_retry_period_and_can_recover(reader, clock):
    wanted = versions(3)
    broken = Artifacts(failing_storage)
    first = read(reader, wanted, broken)
    assert all(d.has_signature is None for d in first.values())

    healed = Artifacts(lambda version: SIGNED)
    clock.now += MLMODEL_RETRY_SECONDS - 1
    within = read(reader, wanted, healed)
    assert healed.asked == Counter()
    assert [d.problems for d in within.values()] == [d.problems for d in first.values()]

    clock.now += 2
    after = read(reader, wanted, healed)
    assert set(healed.asked) == set(after)
    assert all(d.has_signature is True and d.problems == () for d in after.values())
    healed.asked.clear()
    read(reader, wanted, healed)
    assert healed.asked == Counter()  # read whole now: kept


def test_a_storage_that_answered_once_is_never_cut_off():
    breaker = _Breaker()
    for _ in range(STORAGE_FAILURES - 1):
        breaker.failed("s3://a", "HTTP 503")
    breaker.answered("s3://a")
    for _ in range(3 * STORAGE_FAILURES):
        breaker.failed("s3://a", "HTTP 503")
        breaker.failed("s3://b", "HTTP 503")

    assert breaker.refusal("s3://a") is None
    assert breaker.refusal("s3://b") is not None
    assert breaker.refusal("s3://c") is None


def test_one_storage_failing_does_not_cut_off_another(reader):
    def by_storage(version: ModelVersion) -> str:
        if version.source.startswith("s3://broken"):
            raise Unreadable("HTTP 500", storage=True)
        return SIGNED

    artifacts = Artifacts(by_storage)
    good = versions(40, "s3://good", "g")
    wanted = [*versions(100, "s3://broken", "b"), *good]

    details = read(reader, wanted, artifacts)

    assert all(details[(v.model_name, 1)].has_signature is True for v in good)
    assert sum(n for (name, _), n in artifacts.asked.items() if name.startswith("b-")) <= (
        MOST_ASKED
    )


def test_failures_of_the_versions_themselves_never_cut_a_storage_off(reader):
    def missing(version: ModelVersion) -> str:
        raise Unreadable("HTTP 404 (RESOURCE_DOES_NOT_EXIST)")

    artifacts = Artifacts(missing)
    read(reader, versions(60), artifacts)

    assert len(artifacts.asked) == 60


@pytest.mark.parametrize(
    ("source", "storage"),
    [
        ("s3://models/a/1", "s3://models"),
        ("gs://bucket/x", "gs://bucket"),
        ("s3://key:secret@minio:9000/models/1", "s3://minio:9000"),
        ("models:/m-123", "models://"),
        ("runs:/abc/model", "runs://"),
        ("/srv/mlflow/artifacts/1", "file"),
        ("file:///srv/a", "file://"),
        ("s3://[bucket/x", "unparsed"),  # no client reads it; the read goes on
    ],
)
def test_storage_is_what_the_source_names(source, storage):
    assert storage_of(source) == storage


@pytest.mark.parametrize(("status", "cut_off"), [(500, True), (502, True), (404, False)])
def test_server_errors_cut_a_storage_off_and_missing_files_do_not(status, cut_off):
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.params["name"])
        body = {"error_code": "RESOURCE_DOES_NOT_EXIST" if status == 404 else "INTERNAL_ERROR"}
        return httpx.Response(status, json=body)

    registry = RestRegistry(client(answer), label="mock")
    try:
        details = registry.version_details(versions(80))
    finally:
        registry.close()

    assert all(d.has_signature is None for d in details.values())
    if cut_off:
        assert STORAGE_FAILURES <= len(asked) <= MOST_ASKED
    else:
        assert len(asked) == 80
