"""Whether a read that lost many entities may be published, or is held until confirmed.

Backstage orphans and then deletes every entity that disappears from a location. A registry
restarted against an empty database, or a cluster behind a context that suddenly lists
nothing, answers "ok, zero": indistinguishable from a real mass deletion in one read. So a
read that loses everything, or more than a set share, of what is served is held: the served
snapshot stays until later reads confirm the drop over a set period, or an operator confirms
it. Pure logic (no I/O, no clock of its own), so every rule is unit-tested.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

__all__ = ["DropGuard", "DropPolicy", "Hold", "Judgement", "Verdict"]


@dataclass(frozen=True, slots=True)
class DropPolicy:
    """When a read counts as a drop, and how long reads must repeat it to confirm it.

    ``max_share`` is the largest share of the kept items one read may lose and still be
    published at once; a drop to zero is always held (``max_share=1`` holds only that).
    ``only_to_zero`` holds drops to zero alone, for sources whose counts are small and change
    by design (a cluster's model servers).
    """

    max_share: float = 0.5
    confirm_seconds: float = 3600.0
    only_to_zero: bool = False

    def is_drop(self, kept: int, read: int) -> bool:
        """Whether a read of ``read`` items, where ``kept`` are served, must be held."""
        if kept <= 0 or read >= kept:
            return False
        if read <= 0:
            return True
        return not self.only_to_zero and (kept - read) / kept > self.max_share


@dataclass(frozen=True, slots=True)
class Hold:
    """A drop being held for one source: what is served, what the reads say, since when."""

    source: str
    kept: int
    read: int
    since: datetime
    last_read: datetime
    reads: int
    confirm_seconds: float

    @property
    def confirms_at(self) -> datetime:
        """When a read still showing the drop publishes it."""
        return self.since + timedelta(seconds=self.confirm_seconds)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready view for ``/readyz`` and the confirm route."""
        return {
            "source": self.source,
            "kept": self.kept,
            "read": self.read,
            "since": self.since.isoformat(),
            "last_read": self.last_read.isoformat(),
            "reads": self.reads,
            "confirms_at": self.confirms_at.isoformat(),
        }


class Verdict(StrEnum):
    """What to do with one source's read."""

    PUBLISH = "publish"
    """Not a drop: publish it (and end a hold, if there was one)."""
    HOLD = "hold"
    """A drop not yet confirmed: keep serving what is served."""
    CONFIRMED = "confirmed"
    """A drop that reads have shown for the whole confirmation period: publish it."""


@dataclass(frozen=True, slots=True)
class Judgement:
    """A verdict, with the hold it began, continued or ended (None when there was none)."""

    verdict: Verdict
    hold: Hold | None


class DropGuard:
    """The holds of every source, judged read by read; one per catalog service.

    A read that failed says nothing about the fleet and is simply not judged: it neither
    confirms nor ends a hold.
    """

    def __init__(self) -> None:
        self._holds: dict[str, Hold] = {}

    def judge(
        self, source: str, *, kept: int, read: int, now: datetime, policy: DropPolicy
    ) -> Judgement:
        """Judge one successful read of ``source`` against the ``kept`` items served."""
        held = self._holds.get(source)
        if not policy.is_drop(kept, read):
            self._holds.pop(source, None)
            return Judgement(Verdict.PUBLISH, held)
        if held is None:
            hold = Hold(source, kept, read, now, now, 1, policy.confirm_seconds)
            self._holds[source] = hold
            return Judgement(Verdict.HOLD, hold)
        hold = replace(held, kept=kept, read=read, last_read=now, reads=held.reads + 1)
        if now >= hold.confirms_at:
            del self._holds[source]
            return Judgement(Verdict.CONFIRMED, hold)
        self._holds[source] = hold
        return Judgement(Verdict.HOLD, hold)

    def held(self, source: str) -> Hold | None:
        """The hold of one source, if its last read was held."""
        return self._holds.get(source)

    @property
    def holds(self) -> tuple[Hold, ...]:
        """Every hold, by source."""
        return tuple(self._holds[source] for source in sorted(self._holds))

    def release_all(self) -> tuple[Hold, ...]:
        """End every hold (an operator confirmed the drops); the holds that ended."""
        released = self.holds
        self._holds.clear()
        return released
