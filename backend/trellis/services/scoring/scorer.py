"""The scorer: the pipeline run in the background, and the query side answering from it.

Replicas sharing one fact store share one ``Lease``: before each run a scorer asks it, and
only the holder runs. A follower skips the run (reading the definitions and the catalog
again, so its routes answer as the leader's do) and asks again next interval; when the
leader dies, the first follower to ask after the lease is freed takes over. Without a lease
(one process, SQLite) the scorer always runs.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from trellis.errors import NotReady, SourceUnavailable
from trellis.ports import Lease, PromQLSource, ScorecardStore
from trellis.redact import scrub_text
from trellis.scorecards import DefinitionError
from trellis.services.runner import Runner
from trellis.services.scaffolding import Scaffolder
from trellis.services.scoring.definitions import Definitions
from trellis.services.scoring.options import ScoringOptions
from trellis.services.scoring.pipeline import CatalogView, LeaseLost, Pipeline, by_ref
from trellis.services.scoring.queries import ScoreQueries
from trellis.services.scoring.state import RunReport, RunState
from trellis.services.scoring.store_guard import StoreGuard

__all__ = ["Scorer"]

log = logging.getLogger("trellis.services.scoring")  # one logger for every part of scoring

_RETRY_SECONDS = 15.0
"""How soon a run that could not reach the fact store tries again (at most the interval)."""
_NOT_READ_SECONDS = 1.0
"""How soon a run tries again while the catalog has not been read."""


class Scorer:
    """Keeps every entity's scorecard results current; ``queries`` answers from them."""

    def __init__(
        self,
        *,
        catalog: CatalogView,
        store: ScorecardStore,
        directory: Path | None,
        options: ScoringOptions,
        prometheus: PromQLSource | None,
        scaffolder: Scaffolder | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        lease: Lease | None = None,
        replica: str | None = None,
        recorded: Callable[[], frozenset[str]] = frozenset,
    ) -> None:
        """``lease`` None: the only replica, which always runs.

        ``recorded`` names the recorded series Prometheus has now; fleet queries read them.
        """
        definitions = Definitions(directory)
        self.lease = lease
        self.replica = replica or f"{socket.gethostname()}:{os.getpid()}"
        #: Whether this replica led at its last try; None before the first.
        self._leading: bool | None = None
        guard = StoreGuard(store)
        self.state = RunState()
        self.options = options
        self.pipeline = Pipeline(
            catalog=catalog,
            store=guard,
            definitions=definitions,
            options=options,
            state=self.state,
            prometheus=prometheus,
            scaffolder=scaffolder,
            clock=clock,
            still_leading=self._still_leading,
            replica=self.replica,
            recorded=recorded,
        )
        self.queries = ScoreQueries(definitions=definitions, store=guard, state=self.state)
        self._runner = Runner(
            self.run_round,
            interval_seconds=options.interval_seconds,
            name="trellis-scorer",
            what="scorecard run",
            log=log,
            join_seconds=10,
        )

    @property
    def leading(self) -> bool:
        """Whether this replica runs the scorer (always, without a lease)."""
        return self.lease is None or bool(self._leading)

    def run_once(self) -> RunReport:
        """One run of the pipeline (whoever holds the lease: ``trellis score`` asks none)."""
        return self.pipeline.run_once()

    def start(self) -> None:
        """Run every ``interval_seconds`` in a background thread until ``stop``.

        Until the first run ends, answers come from the kept results of the catalog's
        entities, so a restart serves what was worked out before it.
        """
        try:
            document = self.pipeline.catalog.document()
        except NotReady:
            pass
        else:
            with self.state.lock:
                self.state.entities = by_ref(document)
        self._runner.start()

    def stop(self) -> None:
        """End the loop, give the lease up, then release the pool, Prometheus and the store."""
        self._runner.stop()
        if self.lease is not None:
            self.lease.release()
            self._leading = False
        self.pipeline.close()
        self.queries.store.close()

    def _ask_lease(self) -> bool:
        """Whether this replica runs now; a change of leadership is logged."""
        if self.lease is None:
            return True
        held = self.lease.try_acquire()
        if held and self._leading is False:
            # Another replica may have led meanwhile: what this one believes it wrote (and the
            # entities it would not score again) may have been replaced since.
            self.pipeline.forget()
        if held != self._leading:
            if held:
                log.info(
                    "this replica (%s) now runs the scorer: it holds the %s",
                    self.replica,
                    self.lease.name,
                )
            else:
                log.info(
                    "another replica runs the scorer; this one (%s) answers from the shared "
                    "store and asks the %s every interval",
                    self.replica,
                    self.lease.name,
                )
        self._leading = held
        return held

    def _still_leading(self) -> bool:
        """Asked by a run before it keeps anything: a replica that lost the lease keeps nothing."""
        return self._ask_lease()

    def _follow(self) -> None:
        """A follower's round: the store reached, the definitions and the catalog read again."""
        try:
            # Definitions first: a store never reached must make the routes say so, not say
            # that the definitions were never read.
            self.pipeline.definitions.reload()
            self.pipeline.store.open()  # a store never reached makes the scorecards unavailable
        except (SourceUnavailable, DefinitionError, NotReady) as exc:
            self.state.last_error = str(exc)
            return
        try:
            document = self.pipeline.catalog.document()
        except NotReady as exc:
            self.state.last_error = str(exc)
            return
        with self.state.lock:
            self.state.entities = by_ref(document)
        self.state.last_error = None

    def run_round(self) -> float | None:
        """One run; a failure is kept for ``/readyz``, and says how soon to try again."""
        if not self._ask_lease():
            self._follow()
            return None
        try:
            self.run_once()
        except LeaseLost as exc:  # another replica leads now: its run is the one kept
            log.warning("%s", exc)
        except NotReady as exc:  # the catalog has not been read yet: try again soon
            self.state.last_error = str(exc)
            return _NOT_READ_SECONDS
        except SourceUnavailable as exc:  # the fact store: the catalog serves on
            retry = min(_RETRY_SECONDS, self.options.interval_seconds)
            self.state.last_error = str(exc)
            log.warning("%s; trying again in %g s", exc, retry)
            return retry
        except DefinitionError as exc:  # never a valid set: nothing to run until fixed
            self.state.last_error = f"no valid scorecard definitions: {exc}"
            log.error("scorecards unavailable, no valid definitions:\n%s", exc)
        except Exception as exc:  # a bug must not end the loop that keeps results fresh
            self.state.last_error = scrub_text(f"{type(exc).__name__}: {exc}")
            log.exception("scorecard run crashed")
        return None
