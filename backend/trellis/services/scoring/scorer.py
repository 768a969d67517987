"""The scorer: the pipeline run in the background, and the query side answering from it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from trellis.errors import NotReady, SourceUnavailable
from trellis.ports import PromQLSource, ScorecardStore
from trellis.redact import scrub_text
from trellis.scorecards import DefinitionError
from trellis.services.runner import Runner
from trellis.services.scaffolding import Scaffolder
from trellis.services.scoring.definitions import Definitions
from trellis.services.scoring.options import ScoringOptions
from trellis.services.scoring.pipeline import CatalogView, Pipeline, by_ref
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
    ) -> None:
        definitions = Definitions(directory)
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
        )
        self.queries = ScoreQueries(definitions=definitions, store=guard, state=self.state)
        self._runner = Runner(
            self._run_in_background,
            interval_seconds=options.interval_seconds,
            name="trellis-scorer",
            what="scorecard run",
            log=log,
            join_seconds=10,
        )

    def run_once(self) -> RunReport:
        """One run of the pipeline."""
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
        """End the loop, then release the pool, Prometheus and the store."""
        self._runner.stop()
        self.pipeline.close()
        self.queries.store.close()

    def _run_in_background(self) -> float | None:
        """One run; a failure is kept for ``/readyz``, and says how soon to try again."""
        try:
            self.run_once()
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
