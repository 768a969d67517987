"""What the last kept run worked out for each entity, so an unchanged one costs nothing again.

A fleet's models mostly read the same facts run after run: their checks, rows and encoding
were most of a warm run. An entity is scored again only when its entity differs, or the
facts of one of its retrievers do, or the checks changed; otherwise its outcomes stand (the
store keeps them) and only the latest reading of its facts moves. Facts are compared by a
``fingerprint`` per retriever, which tells ``True``, ``1`` and ``1.0`` apart as the checks
and the stored JSON do; a value that cannot be fingerprinted always counts as changed.

What is kept must be what the store holds: it is replaced only once a write committed, and
dropped when a write failed or another replica may have written (``forget``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from trellis.fingerprints import fingerprint
from trellis.scorecards import Scorecard
from trellis.scorecards.scoring import (
    CheckOutcome,
    CompiledChecks,
    Outcome,
    entity_levels,
    run_checks,
)

__all__ = ["Evaluation", "LastRun", "Scored", "digests_of"]

_T = TypeVar("_T")
_SIZE = 16  # bytes of a fingerprint


@dataclass(frozen=True, slots=True)
class Scored:
    """One entity as a run scored it: what it read, and each check's outcome and level."""

    entity: Mapping[str, Any]
    #: Its retrievers, in the order the facts came.
    retrievers: tuple[str, ...]
    #: Each retriever's facts, fingerprinted, 16 bytes each in ``retrievers`` order (one
    #: object, not one per retriever: a fleet keeps one per entity).
    digests: bytes
    #: Each check that applies, with its outcome, in the order they ran.
    outcomes: tuple[tuple[str, Outcome], ...]
    #: Per scorecard, the level reached (see ``entity_levels``).
    levels: tuple[str | None, ...]

    def reads_like(self, entity: Mapping[str, Any], retrievers: tuple[str, ...]) -> bool:
        """Whether ``entity`` with facts from ``retrievers`` is scored as this was.

        Else every check runs: other scorecards may apply to another entity, and a check
        whose retriever is gone is unknown now.
        """
        return retrievers == self.retrievers and (entity is self.entity or entity == self.entity)

    def unchanged(self, digests: bytes) -> set[str]:
        """The retrievers whose facts are those this scored (of an entity that reads like it)."""
        if digests == self.digests:
            return set(self.retrievers)
        return {
            retriever
            for i, retriever in enumerate(self.retrievers)
            if digests[i * _SIZE : (i + 1) * _SIZE] == self.digests[i * _SIZE : (i + 1) * _SIZE]
        }


def digests_of(facts: Mapping[str, Mapping[str, object]]) -> bytes:
    """Each retriever's facts fingerprinted, in their order, as one ``bytes``.

    A value that cannot be fingerprinted gets random bytes: it never equals what was kept.
    """
    return b"".join(fingerprint(values) or os.urandom(_SIZE) for values in facts.values())


class LastRun:
    """Each entity as the last committed run scored it, valid for the checks it was run with."""

    def __init__(self) -> None:
        self._checks: CompiledChecks | None = None
        self._scored: dict[str, Scored] = {}

    def get(self, checks: CompiledChecks, ref: str) -> Scored | None:
        """How ``ref`` was scored by the last committed run, if it ran the same checks."""
        return self._scored.get(ref) if checks is self._checks else None

    def keep(self, checks: CompiledChecks, scored: dict[str, Scored]) -> None:
        """A run's entities, once the store committed what it wrote of them."""
        self._checks, self._scored = checks, scored

    def forget(self) -> None:
        """Keep nothing: the next run scores every entity and writes all of it."""
        self._checks, self._scored = None, {}


class Evaluation:
    """One run's checks, each entity's run again only where what it reads changed."""

    def __init__(
        self, checks: CompiledChecks, scorecards: Sequence[Scorecard], last_run: LastRun
    ) -> None:
        self.checks = checks
        self.scorecards = scorecards
        self.last_run = last_run
        #: Every entity as this run scored it.
        self.scored: dict[str, Scored] = {}
        #: The outcomes of the checks that ran, by entity and check id: the results to write.
        self.by_entity: dict[str, dict[str, CheckOutcome]] = {}
        #: The facts to write, by entity and retriever.
        self.changed: dict[str, Mapping[str, Mapping[str, object]]] = {}
        #: (entity, retriever) read again with the values last written.
        self.unchanged: list[tuple[str, str]] = []
        self._shared: dict[Any, Any] = {}  # one copy of equal tuples: most entities' are alike

    def evaluate(
        self, ref: str, entity: Mapping[str, Any], facts: Mapping[str, Mapping[str, object]]
    ) -> None:
        """Score ``ref``: not at all if nothing it reads changed, else the checks that read it.

        An entity that does not read like the last run's (``Scored.reads_like``) runs every
        check.
        """
        retrievers = self._share(tuple(facts))
        digests = digests_of(facts)
        last = self.last_run.get(self.checks, ref)
        if last is not None and not last.reads_like(entity, retrievers):
            last = None
        same = last.unchanged(digests) if last is not None else set()
        self.unchanged.extend((ref, retriever) for retriever in same)
        if last is not None and len(same) == len(retrievers):
            self.scored[ref] = last if last.entity is entity else replace(last, entity=entity)
            return
        changed = self.changed[ref] = (
            {r: v for r, v in facts.items() if r not in same} if same else facts
        )
        ran = run_checks(self.checks, entity, facts, changed=changed if last else None)
        if ran:
            self.by_entity[ref] = {o.check_id: o for o in ran}
        outcomes = dict(last.outcomes) if last is not None else {}
        outcomes.update((o.check_id, o.outcome) for o in ran)
        levels = entity_levels(self.scorecards, entity, outcomes)
        self.scored[ref] = Scored(
            entity, retrievers, digests, self._share(tuple(outcomes.items())), self._share(levels)
        )

    def counts(self) -> dict[str, int]:
        """How many checks of the run's entities ended in each outcome."""
        counts = dict.fromkeys((o.value for o in Outcome), 0)
        for scored in self.scored.values():
            for _, outcome in scored.outcomes:
                counts[outcome.value] += 1
        return counts

    def _share(self, value: _T) -> _T:
        return self._shared.setdefault(value, value)  # type: ignore[no-any-return]
