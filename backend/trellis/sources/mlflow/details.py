"""Champion details: signature, dataset lineage and metrics of many versions, read and kept.

The runs are read in batches of ``attributes.run_id IN (...)`` searches, and each version's
``MLmodel`` file (the only place MLflow 3 keeps a signature) a few in parallel. What was read
whole from a run that has ended is kept, since a version's run and logged model do not
change. The adapters lend the I/O; this module decides what to read and what to keep.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from types import MappingProxyType
from typing import Any

import yaml
from cachetools import LRUCache, TTLCache

from trellis.errors import NotFound, SourceUnavailable
from trellis.model import ChampionDetails, ModelVersion
from trellis.sources.mlflow.mapping import SOURCE, Json, RunFacts, run_facts

__all__ = [
    "ARTIFACT_READS",
    "DETAILS_KEPT",
    "EXPERIMENT_PAGE",
    "MLMODEL",
    "MLMODEL_RETRY_SECONDS",
    "RUN_BATCH",
    "RUN_ID",
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
#: How long an ``MLmodel`` that could not be read is not asked for again.
MLMODEL_RETRY_SECONDS = 3_600.0
MLMODEL = "MLmodel"
#: MLflow's own rule for run ids; anything else cannot be quoted into a search filter.
RUN_ID = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")


class Unreadable(Exception):
    """One version's ``MLmodel`` file could not be read; the text says why."""


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

    def __init__(self, run_batch: int, *, deadline: float | None) -> None:
        self._run_batch = run_batch
        self._deadline = deadline
        self._kept: LRUCache[_Key, tuple[_Identity, ChampionDetails]] = LRUCache(DETAILS_KEPT)
        self._signed: LRUCache[_Key, tuple[_Identity, bool]] = LRUCache(DETAILS_KEPT)
        self._unreadable: TTLCache[_Key, tuple[_Identity, str]] = TTLCache(
            DETAILS_KEPT, ttl=MLMODEL_RETRY_SECONDS
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
        futures: dict[_Key, Future[bool | str]] = {
            key: self._pool.submit(_signature, version, mlmodel)
            for key, version in todo.items()
            if key not in signatures
        }
        try:
            runs = self._runs(list(todo.values()), experiment_ids, search_runs)
        except BaseException:
            _cancel(futures.values())
            raise
        read = self._signatures(todo, futures)
        signatures.update(read)
        with self._lock:
            for key, problem in read.items():
                if isinstance(problem, str):
                    self._unreadable[key] = (_identity(todo[key]), problem)
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
        self, versions: Mapping[_Key, ModelVersion], futures: Mapping[_Key, Future[bool | str]]
    ) -> dict[_Key, bool | str]:
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
                else _mlmodel_problem(versions[key], f"no answer within {self._deadline:g} s")
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


def _signature(version: ModelVersion, mlmodel: Callable[[ModelVersion], str]) -> bool | str:
    """Whether the version's logged model has a signature, or why that could not be read."""
    try:
        text = mlmodel(version)
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise Unreadable("not valid YAML") from exc
        if not isinstance(document, dict):
            raise Unreadable("not an MLmodel file")
    except Unreadable as exc:
        return _mlmodel_problem(version, str(exc))
    return bool(document.get("signature"))


def _mlmodel_problem(version: ModelVersion, reason: str) -> str:
    return f"MLmodel of {version.model_name} version {version.version} could not be read: {reason}"


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
