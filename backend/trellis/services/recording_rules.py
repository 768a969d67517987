"""Which of platform-hub's recorded series Prometheus has, asked once per interval and kept.

Pages and fleet queries read a signal from the hub's recording rules only where Prometheus
has its recorded series (``observability.queries.hub_recorded_names``), and from the raw
series otherwise. Finding out is one request for the metric names of the last minutes (the
TSDB's index, no samples), kept for ``ttl_seconds``: in the steady state a page costs no
extra request. A failed request means "none": the raw queries are always right, only slower,
and the question is asked again after ``retry_seconds``. A served Trellis has one: its
pages and its scorer (before it plans its fleet queries) ask the same object.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from trellis.errors import SourceUnavailable
from trellis.observability.queries import hub_recorded_names
from trellis.ports import MetricNameSource

__all__ = ["LOOKBACK", "RecordedSeries"]

log = logging.getLogger(__name__)

#: How far back a recorded name must have samples: two 5-minute rate windows.
LOOKBACK = timedelta(minutes=10)


class RecordedSeries:
    """The hub's recorded names Prometheus has now, kept for a while (thread-safe)."""

    def __init__(
        self,
        source: MetricNameSource | None,
        *,
        ttl_seconds: float = 300.0,
        retry_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._source = source
        self._ttl = ttl_seconds
        self._retry = retry_seconds
        self._clock = clock
        self._now = now
        self._wanted = frozenset(hub_recorded_names())
        # Only names that could be wanted are asked for (``server:``), not all of Prometheus's.
        self._prefix = os.path.commonprefix(sorted(self._wanted))  # noqa: RUF071  # by character
        self._lock = threading.Lock()
        self._known: frozenset[str] = frozenset()
        self._until = -float("inf")

    def available(self) -> frozenset[str]:
        """The recorded names with recent samples; Prometheus is asked once the kept ones expire."""
        if self._source is None:
            return frozenset()
        with self._lock:
            if self._clock() < self._until:
                return self._known
            end = self._now()
            try:
                names = self._source.metric_names(end - LOOKBACK, end, self._prefix)
            except SourceUnavailable as exc:
                log.warning("recorded series unknown, reading raw series: %s", exc.reason)
                self._known, self._until = frozenset(), self._clock() + self._retry
                return self._known
            self._known, self._until = names & self._wanted, self._clock() + self._ttl
            return self._known
