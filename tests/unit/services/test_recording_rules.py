"""``RecordedSeries``: which of the hub's recorded names Prometheus has, asked once per interval.

The source is a fake of the ``MetricNameSource`` port; the real request is covered against a
real Prometheus in ``tests/integration/test_recorded_signals.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from trellis.errors import SourceUnavailable
from trellis.observability.queries import hub_recorded_names
from trellis.services.recording_rules import LOOKBACK, RecordedSeries

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
HUB = frozenset(hub_recorded_names())


class Names:
    """Answers with ``names``, or fails while ``down``; keeps every window asked about."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names
        self.down = False
        self.asked: list[tuple[datetime, datetime, str]] = []

    def metric_names(self, start: datetime, end: datetime, prefix: str = "") -> frozenset[str]:
        self.asked.append((start, end, prefix))
        if self.down:
            raise SourceUnavailable("prometheus", "HTTP 503 from /api/v1/label/__name__/values")
        return self.names


def recorded(source: Names | None, clock: list[float]) -> RecordedSeries:
    return RecordedSeries(
        source, ttl_seconds=300, retry_seconds=30, clock=lambda: clock[0], now=lambda: NOW
    )


def test_only_the_hub_s_names_are_kept_and_asked_once_per_interval():
    source, clock = Names(HUB | {"up", "server:vllm_prompt_tokens:rate5m"}), [0.0]
    series = recorded(source, clock)
    assert series.available() == HUB
    clock[0] = 299.9
    assert series.available() == HUB
    # Only the names the hub's could be among: all of them begin "server:".
    assert source.asked == [(NOW - LOOKBACK, NOW, "server:")]
    source.names = frozenset({"server:requests:rate5m"})
    clock[0] = 300.1
    assert series.available() == {"server:requests:rate5m"}
    assert len(source.asked) == 2


def test_a_failed_question_means_raw_queries_until_it_is_asked_again():
    source, clock = Names(HUB), [0.0]
    source.down = True
    series = recorded(source, clock)
    assert series.available() == frozenset() == series.available()
    assert len(source.asked) == 1
    source.down = False
    clock[0] = 30.5  # the retry interval, not the full one
    assert series.available() == HUB


def test_without_prometheus_nothing_is_recorded_and_nothing_asked():
    assert recorded(None, [0.0]).available() == frozenset()
