"""Durations and the limits of one observability answer."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from trellis.observability import Limits, WindowError, parse_duration, plan_window

END = datetime(2026, 3, 1, 12, 34, 56, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("6h", 21_600), ("7d", 604_800), ("1w", 604_800),
     ("1h30m", 5_400), (" 2d ", 172_800)],
)  # fmt: skip
def test_durations_read_like_prometheus(text, seconds):
    assert parse_duration(text, what="range") == seconds


@pytest.mark.parametrize("text", ["", "10", "1x", "-5m", "1.5h", "m", "5m1h", "0s", "9" * 30 + "s"])
def test_a_malformed_duration_is_refused_naming_the_parameter(text):
    with pytest.raises(WindowError, match="range"):
        parse_duration(text, what="range")


def test_a_window_is_aligned_to_its_step():
    window = plan_window("1h", "60s", Limits(), end=END)
    assert window.end == datetime(2026, 3, 1, 12, 34, tzinfo=UTC)
    assert window.start == datetime(2026, 3, 1, 11, 34, tzinfo=UTC)
    assert (window.points, window.step_seconds, window.rate_seconds) == (61, 60, 300)
    assert window.stale_after_seconds == 300


def test_without_a_step_a_series_has_about_sixty_points():
    assert plan_window("1h", None, Limits(), end=END).step_seconds == 60
    week = plan_window("7d", None, Limits(), end=END)
    assert (week.step_seconds, week.points, week.rate_seconds) == (10_080, 61, 10_080)


def test_a_year_at_one_second_steps_names_both_limits_it_breaks():
    with pytest.raises(WindowError) as error:
        plan_window("365d", "1s", Limits(max_points=1100, max_range_days=30), end=END)
    message = str(error.value)
    assert "TRELLIS_PROMETHEUS__MAX_RANGE_DAYS" in message and "30d" in message
    assert "31536001 points" in message and "TRELLIS_PROMETHEUS__MAX_POINTS" in message


def test_too_many_points_says_which_step_would_do():
    with pytest.raises(WindowError, match="at least 4s"):
        plan_window("1h", "1s", Limits(max_points=1100), end=END)
    assert plan_window("1h", "4s", Limits(max_points=1100), end=END).points == 901


def test_a_step_longer_than_the_range_is_refused():
    with pytest.raises(WindowError, match="longer than the range"):
        plan_window("5m", "1h", Limits(), end=END)


@pytest.mark.parametrize(
    "end",
    [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(1, 1, 1, 0, 30, tzinfo=UTC),
        datetime(1970, 1, 1, 0, 10, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime.max.replace(tzinfo=UTC),
    ],
)
def test_an_end_out_of_range_is_a_window_error(end):
    with pytest.raises(WindowError, match="end"):
        plan_window("1h", None, Limits(), end=end)


def test_an_end_after_the_epoch_plus_the_range_is_planned():
    window = plan_window("1h", "1m", Limits(), end=datetime(1970, 1, 1, 2, tzinfo=UTC))
    assert window.start == datetime(1970, 1, 1, 1, tzinfo=UTC)
