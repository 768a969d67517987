"""Seconds written as Prometheus durations, for pages, messages and facts alike."""

from __future__ import annotations

from trellis.durations import format_duration


def test_format_duration_is_the_shortest_form():
    assert [format_duration(s) for s in (30, 60, 3600, 5400, 86_400 * 30)] == [
        "30s", "1m", "1h", "1h30m", "4w2d",
    ]  # fmt: skip


def test_nothing_is_zero_seconds():
    assert format_duration(0) == "0s"
