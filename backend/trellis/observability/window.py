"""The time window of one answer: range, step, rate window, and the limits that bound it.

Durations are written the way Prometheus writes them (``30s``, ``15m``, ``6h``, ``7d``,
``1h30m``). A window over the limits is refused before any query runs, with every limit
it breaks named, so a year at one-second steps costs nothing but its error message.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from trellis.durations import UNITS, format_duration
from trellis.errors import InvalidQuery

__all__ = [
    "DEFAULT_POINTS",
    "MIN_RATE_WINDOW_SECONDS",
    "Limits",
    "Window",
    "WindowError",
    "parse_duration",
    "plan_window",
]

_DURATION = re.compile(
    r"^(?:(\d{1,6})w)?(?:(\d{1,6})d)?(?:(\d{1,7})h)?(?:(\d{1,9})m)?(?:(\d{1,9})s)?$"
)
#: Points a series gets when no step is asked for.
DEFAULT_POINTS = 60
#: Rates look at least this far back: ten scrapes at the blueprints' 30 s interval.
MIN_RATE_WINDOW_SECONDS = 300
#: Windows lie between the Unix epoch (Prometheus has nothing before it) and this end.
_LATEST_END = datetime(9000, 1, 1, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class WindowError(InvalidQuery):
    """A range or step that cannot be parsed or is over a limit; the message says which."""


@dataclass(frozen=True, slots=True)
class Limits:
    """How big one answer may be (from ``TRELLIS_PROMETHEUS__MAX_*``)."""

    max_points: int = 1100
    max_range_days: int = 30


@dataclass(frozen=True, slots=True)
class Window:
    """Evaluation times ``start, start + step, ..., end`` (aligned to the step) and the rate window.

    ``rate_seconds`` is how far back ``rate()`` looks at each point: never less than a step,
    so consecutive points together cover every sample, and never less than five minutes.
    """

    start: datetime
    end: datetime
    step_seconds: int
    range_seconds: int

    @property
    def points(self) -> int:
        """Evaluation times in the window."""
        return self.range_seconds // self.step_seconds + 1

    @property
    def rate_seconds(self) -> int:
        """The range of every ``rate()`` in the queries."""
        return max(self.step_seconds, MIN_RATE_WINDOW_SECONDS)

    @property
    def stale_after_seconds(self) -> int:
        """A series whose last point is older than this (before ``end``) is stale."""
        return max(2 * self.step_seconds, 300)


def parse_duration(text: str, *, what: str) -> int:
    """Seconds in ``text`` (``90s``, ``30m``, ``6h``, ``7d``, ``1h30m``); errors name ``what``."""
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None:
        raise WindowError(f"{what} {text[:40]!r} is not a duration like 30s, 15m, 6h or 7d")
    seconds = sum(int(n) * unit for n, (_, unit) in zip(match.groups(), UNITS, strict=True) if n)
    if seconds <= 0:
        raise WindowError(f"{what} must be longer than zero")
    return seconds


def plan_window(
    range_text: str,
    step_text: str | None,
    limits: Limits,
    *,
    end: datetime | None = None,
) -> Window:
    """The window for ``range``/``step`` ending at ``end`` (default now), or ``WindowError``."""
    range_seconds = parse_duration(range_text, what="range")
    if step_text:
        step = parse_duration(step_text, what="step")
    else:
        step = max(1, math.ceil(range_seconds / DEFAULT_POINTS))
    problems = []
    max_range = limits.max_range_days * 86_400
    if range_seconds > max_range:
        problems.append(
            f"range {format_duration(range_seconds)} is over the limit of "
            f"{limits.max_range_days}d (TRELLIS_PROMETHEUS__MAX_RANGE_DAYS)"
        )
    if step > range_seconds:
        problems.append(
            f"step {format_duration(step)} is longer than the range "
            f"{format_duration(range_seconds)}"
        )
    points = range_seconds // step + 1
    if points > limits.max_points:
        shortest = math.ceil(range_seconds / (limits.max_points - 1))
        problems.append(
            f"{points} points per series is over the limit of {limits.max_points} "
            f"(TRELLIS_PROMETHEUS__MAX_POINTS); use a step of at least {format_duration(shortest)}"
        )
    if problems:
        raise WindowError("; ".join(problems))
    moment = _end_moment(end or datetime.now(UTC), range_seconds)
    aligned = math.floor(moment.timestamp() / step) * step
    last = datetime.fromtimestamp(aligned, UTC)
    span = (range_seconds // step) * step
    return Window(
        start=last - timedelta(seconds=span),
        end=last,
        step_seconds=step,
        range_seconds=span,
    )


def _end_moment(end: datetime, range_seconds: int) -> datetime:
    """``end`` in UTC, or ``WindowError`` when the window would leave the epoch..9000 span."""
    try:
        moment = end.astimezone(UTC)
    except (OverflowError, ValueError):
        moment = None
    earliest = _EPOCH + timedelta(seconds=range_seconds)
    if moment is None or not earliest <= moment <= _LATEST_END:
        raise WindowError(
            f"end {end.isoformat()} is out of range: a window of {format_duration(range_seconds)} "
            f"must end between {earliest.isoformat()} and {_LATEST_END.isoformat()}"
        )
    return moment
