"""The scorecards' query side: what the routes and ``trellis score`` answer from what was kept.

Every answer comes from the fact store, not from this process's last run, so replicas
sharing one store answer alike whichever of them ran the scorer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from trellis.errors import NotFound
from trellis.ports import FactRow, ScorecardStore
from trellis.scorecards import Scorecard
from trellis.scorecards.facts import RETRIEVERS
from trellis.scorecards.scoring import CheckOutcome, Outcome, applicable, fleet_rollup, view
from trellis.services.scoring.definitions import Definitions
from trellis.services.scoring.state import RunState
from trellis.services.scoring.store_guard import StoreGuard

__all__ = ["ScoreQueries"]

_RETRIEVER_IDS = [retriever.id for retriever in RETRIEVERS]


class ScoreQueries:
    """Answers from the last run and the fact store; never runs a check itself."""

    def __init__(self, *, definitions: Definitions, store: StoreGuard, state: RunState) -> None:
        self.definitions = definitions
        self.guard = store
        self.state = state

    @property
    def store(self) -> ScorecardStore:
        """The fact store answers come from."""
        return self.guard.store

    def scorecards(self) -> tuple[Scorecard, ...]:
        """The last valid definitions, or ``NotReady``."""
        return self.definitions.scorecards()

    def entity(self, ref: str) -> Mapping[str, Any] | None:
        """The entity scored under ``ref`` in the last run (None when it was not)."""
        with self.state.lock:
            return self.state.entities.get(ref)

    def entities(self) -> dict[str, Mapping[str, Any]]:
        """Every entity scored in the last run, by ref."""
        with self.state.lock:
            return dict(self.state.entities)

    def kept(
        self, refs: Sequence[str] | None = None
    ) -> tuple[dict[str, dict[str, CheckOutcome]], datetime | None]:
        """The kept outcome of each check by entity ref and check id, and when it was worked out.

        ``refs`` None means every entity.
        """
        kept = self.guard.use(lambda store: store.latest_results(refs))
        outcomes = {
            ref: {
                row.check_id: CheckOutcome(
                    row.check_id, Outcome(row.outcome), tuple(row.reasons), row.facts
                )
                for row in rows
            }
            for ref, rows in kept.items()
        }
        newest = max((row.timestamp for rows in kept.values() for row in rows), default=None)
        return outcomes, newest

    def entity_report(self, ref: str) -> dict[str, Any]:
        """Every scorecard of one entity with each check's kept outcome and the level reached.

        Raises:
            NotFound: when no scorecard applies to ``ref`` and nothing was kept for it.
        """
        scorecards = self.scorecards()
        kept, evaluated = self.kept([ref])
        outcomes = kept.get(ref, {})
        entity = self.entity(ref)
        if entity is not None:
            chosen = applicable(scorecards, entity)
        else:  # not in this replica's catalog yet: the kept results say which scorecards apply
            chosen = [s for s in scorecards if any(c.id in outcomes for c in s.checks)]
        if not chosen:
            raise NotFound(f"no scorecard applies to {ref!r}, or it is not in the catalog")
        # Every run reads each entity's facts: their latest reading is when it was evaluated.
        read = self.latest_facts(ref, _RETRIEVER_IDS)
        evaluated = max((row.timestamp for row in read.values()), default=evaluated)
        return {
            "entity": ref,
            "evaluatedAt": evaluated.isoformat() if evaluated else None,
            "scorecards": [view(scorecard, outcomes).as_json() for scorecard in chosen],
        }

    def fleet_report(self) -> dict[str, Any]:
        """Per scorecard, entities at each level (``none``: no level): all, by owner, by system.

        The roll-up of the latest run kept in the store, whichever replica ran it.
        """
        run = self.guard.use(lambda store: store.last_run())
        if run is not None and "rollup" in run.report:
            report = run.report
            return {
                "entities": run.entities,
                "lastRun": {
                    "at": run.at.isoformat(),
                    "seconds": round(run.seconds, 3),
                    "entities": run.entities,
                    "outcomes": report.get("outcomes", {}),
                    "unavailable": report.get("unavailable", {}),
                },
                "scorecards": report["rollup"],
            }
        entities = self.entities()
        rollup = self.state.rollup
        if rollup is None:  # not run since a restart: once from the kept results
            rollup = fleet_rollup(self.scorecards(), entities, self.kept(None)[0])
            with self.state.lock:
                self.state.rollup = self.state.rollup or rollup
        return {
            "entities": len(entities),
            "lastRun": self.health()["last_run"],
            "scorecards": rollup,
        }

    def latest_facts(self, ref: str, retrievers: Sequence[str]) -> dict[str, FactRow]:
        """The latest facts of ``ref`` from each retriever that has any."""
        return self.guard.use(lambda store: store.latest_facts(ref, retrievers))

    def facts_range(
        self, ref: str, retrievers: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, list[FactRow]]:
        """Each change of ``ref``'s facts between ``start`` and ``end``, by retriever."""
        return self.guard.use(lambda store: store.facts_range(ref, retrievers, start, end))

    def health(self) -> dict[str, object]:
        """The scorecards' part of ``/readyz``.

        ``state`` is ``unavailable``, with a ``reason``, while the fact store cannot be used
        or no valid definitions were ever read.
        """
        report = self.state.last
        definitions = self.definitions
        reason = self.guard.error
        if reason is None and not definitions.ever_valid and definitions.error is not None:
            reason = f"no valid scorecard definitions: {definitions.error}"
        return {
            "state": "ok" if reason is None else "unavailable",
            "reason": reason,
            "definitions": "ok" if definitions.error is None else definitions.error,
            "last_run": None
            if report is None
            else {
                "at": report.at.isoformat(),
                "seconds": round(report.seconds, 3),
                "entities": report.entities,
                "outcomes": dict(report.outcomes),
                "unavailable": dict(report.unavailable),
            },
            "last_error": self.state.last_error,
        }
