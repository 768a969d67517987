"""Champion details: signature, dataset lineage and metrics of many versions, read and kept.

The runs are read in batches of ``attributes.run_id IN (...)`` searches, and each version's
``MLmodel`` file a few in parallel (``ARTIFACT_READS``). The file is the only place MLflow 3
keeps a signature: a version's REST answer and its logged model's (``logged-models/get``)
carry none, as the tests against a real server check. What was read whole from a run that
has ended is kept, since a version's run and logged model do not change.

Failures are remembered two ways, and neither makes a fact false: a version whose file
could not be read is not asked for again for ``MLMODEL_RETRY_SECONDS``, and within one read,
once ``STORAGE_FAILURES`` files in a row from one storage failed on the server's side (and
none of it could be read), the rest of that storage is not asked for until the next read.
Their signatures are unknown, with the reason. The adapters lend the I/O; this module
decides what to read and what to keep.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import yaml
from cachetools import LRUCache, TTLCache

from trellis.errors import NotFound, SourceUnavailable
from trellis.model import ChampionDetails, ModelVersion
from trellis.redact import scrub_text
from trellis.sources.mlflow.mapping import SOURCE, Json, RunFacts, run_facts

__all__ = [
    "ARTIFACT_READS",
    "DETAILS_KEPT",
    "EXPERIMENT_PAGE",
    "MLMODEL",
    "MLMODEL_RETRY_SECONDS",
    "RUN_BATCH",
    "RUN_ID",
    "STORAGE_FAILURES",
    "DetailsReader",
    "Unreadable",
    "run_filter",
]

#: Experiments per ``experiments/search`` page (the server takes up to 50,000).
EXPERIMENT_PAGE = 10_000
#: Run ids per ``runs/search``: one ``IN`` list, far below any database's bound-parameter limit.
RUN_BATCH = 100
#: Experiment ids per ``runs/search``; a registry with more experiments costs more searches.
_EXPERIMENTS_PER_SEARCH = 10_000
#: Versions whose details are kept; one entry is a few hundred bytes.
DETAILS_KEPT = 100_000
#: ``MLmodel`` files read at once.
ARTIFACT_READS = 8
#: How long an ``MLmodel`` that could not be read is not asked for again: twelve runs at the
#: default interval. Its signature stays unknown meanwhile (never false), and a registry
#: whose artifact store Trellis cannot read costs one request per version an hour, not one
#: per version and run.
MLMODEL_RETRY_SECONDS = 3_600.0
#: Server-side failures in a row, with no success, after which one read stops asking the
#: same storage (twice the reads in flight, so one slow batch is not enough).
STORAGE_FAILURES = 2 * ARTIFACT_READS
MLMODEL = "MLmodel"
#: MLflow's own rule for run ids; anything else cannot be quoted into a search filter.
RUN_ID = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")


class Unreadable(Exception):
    """One version's ``MLmodel`` file could not be read; the text says why.

    ``storage`` is true when the server or the storage failed (a 5xx, a timeout, a storage
    client's error) rather than the version itself (no such file, not an ``MLmodel``): such
    a failure is likely shared by every version kept in the same place.
    """

    def __init__(self, reason: str, *, storage: bool = False) -> None:
        super().__init__(reason)
        self.storage = storage


@dataclass(frozen=True, slots=True)
class _Problem:
    """Why a signature was not read; ``kept`` when the version should not be asked again soon."""

    text: str
    kept: bool = True


class _Breaker:
    """Per storage, within one read: stop asking once it failed ``STORAGE_FAILURES`` in a row.

    A storage that answered once is never cut off: its failures are its versions' own.
    """

    def __init__(self) -> None:
        self._failures: dict[str, int] = {}
        self._answered: set[str] = set()
        self._why: dict[str, str] = {}
        self._lock = threading.Lock()

    def refusal(self, storage: str) -> str | None:
        """Why ``storage`` is not asked any more in this read, or None to ask it."""
        with self._lock:
            if self._failures.get(storage, 0) < STORAGE_FAILURES or storage in self._answered:
                return None
            # The same words on every read, so that a fact's history does not change for them.
            return (
                f"not asked: {STORAGE_FAILURES} MLmodel reads from {storage} failed in a row "
                f"in this read (the last: {self._why[storage]}); asked again next read"
            )

    def answered(self, storage: str) -> None:
        with self._lock:
            self._answered.add(storage)

    def failed(self, storage: str, reason: str) -> None:
        with self._lock:
            self._failures[storage] = self._failures.get(storage, 0) + 1
            self._why[storage] = reason


_Key = tuple[str, int]
_Identity = tuple[str, str | None]


class DetailsReader:
    """Champion details for one adapter: the ones kept, and how the others are read.

    The adapter lends its I/O: the active experiments' ids, a run search for some run ids in
    some experiments (REST-shaped JSON), and one version's ``MLmodel`` text. Details are kept
    only when read whole from a run that has ended (a running run may log more); whatever
    failed is read again, and only that: a signature read while the run could not be is kept
    on its own. An ``MLmodel`` that could not be read is tried again only after
    ``MLMODEL_RETRY_SECONDS`` (an hour), so artifacts Trellis cannot reach (a bucket it has no
    credentials for) do not cost a request per champion on every run. ``deadline`` bounds
    each ``MLmodel`` read for adapters whose reads cannot time out on their own.
    """

    def __init__(
        self,
        run_batch: int,
        *,
        deadline: float | None,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._run_batch = run_batch
        self._deadline = deadline
        self._kept: LRUCache[_Key, tuple[_Identity, ChampionDetails]] = LRUCache(DETAILS_KEPT)
        self._signed: LRUCache[_Key, tuple[_Identity, bool]] = LRUCache(DETAILS_KEPT)
        # Bounded like the others: past DETAILS_KEPT failures, the oldest is asked again early.
        self._unreadable: TTLCache[_Key, tuple[_Identity, str]] = TTLCache(
            DETAILS_KEPT, ttl=MLMODEL_RETRY_SECONDS, timer=timer
        )
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(ARTIFACT_READS, thread_name_prefix="trellis-mlmodel")

    def read(
        self,
        versions: Sequence[ModelVersion],
        experiment_ids: Callable[[], list[str]],
        search_runs: Callable[[list[str], list[str]], list[Json]],
        mlmodel: Callable[[ModelVersion], str],
    ) -> dict[_Key, ChampionDetails]:
        """Kept details, and the others read: runs in batches, ``MLmodel`` files in parallel."""
        result, todo, signatures = self._known(versions)
        if not todo:
            return result
        # The MLmodel files are read while the runs are searched.
        breaker = _Breaker()
        futures: dict[_Key, Future[bool | _Problem]] = {
            key: self._pool.submit(_signature, version, mlmodel, breaker)
            for key, version in todo.items()
            if key not in signatures
        }
        try:
            runs = self._runs(list(todo.values()), experiment_ids, search_runs)
        except BaseException:
            _cancel(futures.values())
            raise
        read = self._signatures(todo, futures)
        with self._lock:
            for key, outcome in read.items():
                if isinstance(outcome, _Problem):
                    signatures[key] = outcome.text
                    if outcome.kept:
                        self._unreadable[key] = (_identity(todo[key]), outcome.text)
                else:
                    signatures[key] = outcome
            for key, version in todo.items():
                details, keep = _details(version, runs, signatures[key])
                result[key] = details
                if keep:
                    self._kept[key] = (_identity(version), details)
                    self._signed.pop(key, None)
                elif details.has_signature is not None:
                    self._signed[key] = (_identity(version), details.has_signature)
        return result

    def _known(
        self, versions: Sequence[ModelVersion]
    ) -> tuple[dict[_Key, ChampionDetails], dict[_Key, ModelVersion], dict[_Key, bool | str]]:
        """Details kept whole; the versions to read; signatures (or problems) kept alone."""
        result: dict[_Key, ChampionDetails] = {}
        todo: dict[_Key, ModelVersion] = {}
        signatures: dict[_Key, bool | str] = {}
        with self._lock:
            for version in versions:
                key, identity = (version.model_name, version.version), _identity(version)
                kept = self._kept.get(key)
                if kept is not None and kept[0] == identity:
                    result[key] = kept[1]
                    continue
                todo[key] = version
                for cache in (self._signed, self._unreadable):
                    alone = cache.get(key)
                    if alone is not None and alone[0] == identity:
                        signatures[key] = alone[1]
                        break
        return result, todo, signatures

    def close(self) -> None:
        """Start no new read; running ones end on their own."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _runs(
        self,
        versions: list[ModelVersion],
        experiment_ids: Callable[[], list[str]],
        search_runs: Callable[[list[str], list[str]], list[Json]],
    ) -> dict[str, RunFacts]:
        wanted = sorted({v.run_id for v in versions if v.run_id and RUN_ID.match(v.run_id)})
        if not wanted:
            return {}
        found: dict[str, RunFacts] = {}
        try:
            experiments = experiment_ids()
            for start in range(0, len(wanted), self._run_batch):
                batch = wanted[start : start + self._run_batch]
                for first in range(0, len(experiments), _EXPERIMENTS_PER_SEARCH):
                    within = experiments[first : first + _EXPERIMENTS_PER_SEARCH]
                    for run in search_runs(within, batch):
                        info = run.get("info") or {}
                        found[str(info.get("run_id") or info.get("run_uuid"))] = run_facts(run)
        except NotFound as exc:  # a search does not name one thing: the registry misbehaved
            raise SourceUnavailable(SOURCE, str(exc)) from exc
        return found

    def _signatures(
        self,
        versions: Mapping[_Key, ModelVersion],
        futures: Mapping[_Key, Future[bool | _Problem]],
    ) -> dict[_Key, bool | _Problem]:
        """Each version's ``has_signature``, or the problem that kept it from being read."""
        rounds = math.ceil(len(futures) / ARTIFACT_READS)
        timeout = None if self._deadline is None else self._deadline * rounds
        done, pending = wait(futures.values(), timeout=timeout, return_when=FIRST_EXCEPTION)
        _cancel(pending)
        for future in done:
            if future.exception() is not None:  # the registry itself could not be reached
                _cancel(futures.values())
                future.result()
        return {
            key: (
                future.result()
                if future in done
                else _Problem(
                    _mlmodel_problem(versions[key], f"no answer within {self._deadline:g} s")
                )
            )
            for key, future in futures.items()
        }


def _cancel(futures: Iterable[Future[Any]]) -> None:
    """Drop the reads that have not started; running ones end on their own."""
    for future in futures:
        future.cancel()


def _identity(version: ModelVersion) -> _Identity:
    """What a kept entry must match: a model deleted and made again reuses version numbers."""
    return version.source, version.run_id


def run_filter(run_ids: Sequence[str]) -> str:
    """A search filter for these runs; the ids match ``RUN_ID``, so none holds a quote."""
    return "attributes.run_id IN (" + ", ".join(f"'{run_id}'" for run_id in run_ids) + ")"


def _signature(
    version: ModelVersion, mlmodel: Callable[[ModelVersion], str], breaker: _Breaker
) -> bool | _Problem:
    """Whether the version's logged model has a signature, or why that could not be read."""
    storage = storage_of(version.source)
    refusal = breaker.refusal(storage)
    if refusal is not None:  # not tried, so nothing to remember of this version
        return _Problem(_mlmodel_problem(version, refusal), kept=False)
    try:
        text = mlmodel(version)
    except Unreadable as exc:
        if exc.storage:
            breaker.failed(storage, str(exc))
        return _Problem(_mlmodel_problem(version, str(exc)))
    breaker.answered(storage)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        return _Problem(_mlmodel_problem(version, "not valid YAML"))
    if not isinstance(document, dict):
        return _Problem(_mlmodel_problem(version, "not an MLmodel file"))
    return bool(document.get("signature"))


def storage_of(source: str) -> str:
    """Where a version's files are kept, as far as its source tells: ``s3://bucket``.

    ``models:/`` and ``runs:/`` sources are resolved by the server to their experiments'
    storage, which the source does not name: each is one storage here.
    """
    try:
        parts = urlsplit(source)
    except ValueError:  # a source no client could read (``s3://[bucket``): one storage
        return "unparsed"
    if len(parts.scheme) <= 1:  # a plain path (or a Windows drive letter)
        return "file"
    # Without userinfo: the name ends up in a reason that the API shows.
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _mlmodel_problem(version: ModelVersion, reason: str) -> str:
    """The problem a scorecard shows: a storage client's reason can carry a signed URL."""
    return scrub_text(
        f"MLmodel of {version.model_name} version {version.version} could not be read: {reason}"
    )


def _details(
    version: ModelVersion, runs: Mapping[str, RunFacts], signature: bool | str
) -> tuple[ChampionDetails, bool]:
    """The version's details, and whether they are complete and final (worth keeping)."""
    problems: list[str] = []
    if isinstance(signature, str):
        problems.append(signature)
    # A version without a run logged no inputs and no metrics: that is known, not unknown.
    datasets: tuple[str, ...] | None = ()
    metrics: Mapping[str, float] | None = MappingProxyType({})
    finished = True
    if version.run_id:
        facts = runs.get(version.run_id)
        if facts is None:
            datasets = metrics = None
            finished = False
            problems.append(_run_problem(version, version.run_id))
        else:
            datasets, metrics, finished = facts.datasets, facts.metrics, facts.finished
    details = ChampionDetails(
        model_name=version.model_name,
        version=version.version,
        has_signature=signature if isinstance(signature, bool) else None,
        datasets=datasets,
        metrics=metrics,
        problems=tuple(problems),
    )
    return details, finished and not problems


def _run_problem(version: ModelVersion, run_id: str) -> str:
    what = f"{version.model_name} version {version.version}"
    if not RUN_ID.match(run_id):
        return f"the run id of {what} is not an MLflow run id"
    return f"run {run_id} of {what} is not among the active runs of active experiments"
