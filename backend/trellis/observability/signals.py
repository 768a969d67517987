"""Prometheus's answers shaped into signals: one series per server and one for the model.

Each series says how far it can be trusted: ``ok``; ``stale`` (its last point is older than
two steps or five minutes, whichever is longer: the server stopped reporting); ``missing``
(Prometheus answered, but has nothing for it); ``unavailable`` (Prometheus could not be
asked, with the reason). A value Prometheus computes as NaN or infinite (an error ratio with
no requests) is a point without a value, not a zero.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate, pairwise
from operator import add, itemgetter, le
from typing import Literal

from trellis.model import Series
from trellis.observability.queries import (
    RECORDED_QUANTILE_LABEL,
    RUNTIME_LABEL,
    SCOPE_LABEL,
    SERVER_LABELS,
    ServerKey,
    Signal,
)
from trellis.observability.window import Window

__all__ = [
    "Point",
    "SignalSeries",
    "Status",
    "Unavailable",
    "bucket_quantile",
    "combine_runtimes",
    "judged",
    "model_series",
    "percentile_points",
    "rows_by_server",
    "server_series",
    "split_rows",
]

Status = Literal["ok", "missing", "stale", "unavailable"]
Point = tuple[float, float | None]


@dataclass(frozen=True, slots=True)
class Unavailable:
    """A query that could not be run, and why."""

    reason: str


@dataclass(frozen=True, slots=True)
class SignalSeries:
    """One signal of one server (or of the model): its points, status and current value."""

    signal: Signal
    status: Status
    points: tuple[Point, ...] = ()
    reason: str | None = None

    @property
    def current(self) -> Point | None:
        """The newest point, for cards: the value now (or when the series went stale)."""
        return self.points[-1] if self.points else None

    def as_json(self) -> dict[str, object]:
        """The response shape of one signal."""
        current = self.current
        return {
            "id": self.signal.id,
            "title": self.signal.title,
            "unit": self.signal.unit,
            "status": self.status,
            "reason": self.reason,
            "current": None if current is None else {"at": current[0], "value": current[1]},
            # Pairs kept as tuples (JSON arrays all the same): a tuple of numbers leaves the
            # cyclic collector's care at its first pass, a list would be promoted with the page.
            "series": list(self.points),
        }


def rows_by_server(result: Sequence[Series]) -> dict[ServerKey | str, list[Series]]:
    """Rows of a percentile query (one per bucket or quantile) grouped by server.

    The model's rows (a runtime's buckets summed by Prometheus) are grouped under the name of
    their runtime.
    """
    grouped: dict[ServerKey | str, list[Series]] = defaultdict(list)
    for series in result:
        runtime = _model_runtime(series.labels)
        grouped[_key(series.labels) if runtime is None else runtime].append(series)
    return grouped


def percentile_points(
    quantiles: Sequence[float], rows: Sequence[Series]
) -> dict[float, tuple[Point, ...]]:
    """Each of ``quantiles`` at each time, from rows of one runtime's servers.

    Bucket rows (``le``) are pooled, summed by bound, and read as Prometheus's
    ``histogram_quantile`` reads them; quantile rows (summaries) cannot be pooled, so the
    highest is taken (an upper bound). A server's recorded percentiles
    (``RECORDED_QUANTILE_LABEL``) are its percentiles as they are, a NaN a point without a
    value as for buckets without observations.
    """
    exact = _recorded_quantiles(quantiles, rows)
    if exact is not None:
        return exact
    aligned = _aligned_buckets(rows)
    if aligned is not None:
        return _pooled_aligned(quantiles, *aligned)
    buckets, highest = _columns(quantiles, rows)
    at = _pooled(quantiles, buckets)
    result = {}
    for q in quantiles:
        found = at[q]
        for t, value in highest[q].items():
            known = found.get(t)
            found[t] = value if known is None else max(known, value)
        result[q] = tuple((t, found[t]) for t in sorted(found))
    return result


Columns = dict[float, dict[float, float]]


def _recorded_quantiles(
    quantiles: Sequence[float], rows: Sequence[Series]
) -> dict[float, tuple[Point, ...]] | None:
    """One server's recorded percentiles, if ``rows`` are those; None otherwise.

    Two rows of one quantile are two servers' percentiles, which cannot be pooled: None.
    """
    found: dict[float, tuple[Point, ...]] = {}
    for series in rows:
        quantile = series.labels.get(RECORDED_QUANTILE_LABEL)
        value = None if quantile is None else _float(quantile)
        if value is None or value in found:
            return None
        found[value] = _points(series)
    return {q: found.get(q, ()) for q in quantiles} if found else None


def _aligned_buckets(
    rows: Sequence[Series],
) -> tuple[tuple[float, ...], dict[float, tuple[float, ...]]] | None:
    """The usual case, column by column: bucket rows at the same times, every count a number.

    Then each bound's rows are summed point by point in one pass (in the order the general
    path adds them, so the sums are the same floats) and no time is looked up. None when any
    row is not such a bucket row, times differ or are out of order, or a count is NaN (or
    infinities of both signs meet): the general path takes those.
    """
    times: tuple[float, ...] | None = None
    by_bound: dict[float, tuple[float, ...]] = {}
    for series in rows:
        bound = series.labels.get("le")
        upper = None if bound is None else _float(bound)
        if upper is None or not series.points:
            return None
        found, counts = zip(*series.points, strict=True)
        if times is None:
            if list(found) != sorted(found):
                return None
            times = found
        elif found != times:
            return None
        known = by_bound.get(upper)
        by_bound[upper] = counts if known is None else tuple(map(add, known, counts))
    total = sum(map(sum, by_bound.values()))
    if times is None or total != total:
        return None
    return times, by_bound


def _pooled_aligned(
    quantiles: Sequence[float], times: tuple[float, ...], by_bound: Mapping[float, Sequence[float]]
) -> dict[float, tuple[Point, ...]]:
    """Each quantile at each of ``times`` from bucket columns of one row each, no NaN."""
    bounds = sorted(by_bound)
    columns = [by_bound[bound] for bound in bounds]
    by_time: Iterable[Sequence[float]] = zip(*columns, strict=True)
    if not all(all(map(le, low, high)) for low, high in pairwise(columns)):
        # made non-decreasing as Prometheus does (rates of cumulative counts seldom need it)
        by_time = [list(accumulate(counts, max)) for counts in by_time]
    per_time = [_quantiles(quantiles, bounds, counts, sorted_counts=True) for counts in by_time]
    return {
        q: tuple(zip(times, values, strict=True))
        for q, values in zip(quantiles, zip(*per_time, strict=True), strict=True)
    }


def _columns(quantiles: Sequence[float], rows: Sequence[Series]) -> tuple[Columns, Columns]:
    """Bucket rows summed by bound then time; the highest of summary rows by quantile then time."""
    buckets: Columns = {}
    highest: Columns = {q: {} for q in quantiles}
    for series in rows:
        bound, quantile = series.labels.get("le"), series.labels.get("quantile")
        if bound is not None:
            le = _float(bound)
            if le is None:
                continue
            column = buckets.get(le)
            if column is None:  # the first row of a bound: its points as they are
                buckets[le] = dict(series.points)
                continue
            for t, value in series.points:
                column[t] = column.get(t, 0.0) + value
        elif quantile is not None and _float(quantile) in highest:
            worst = highest[float(quantile)]
            for t, value in series.points:
                if math.isfinite(value):
                    worst[t] = max(value, worst.get(t, -math.inf))
    return buckets, highest


def _pooled(quantiles: Sequence[float], buckets: Columns) -> dict[float, dict[float, float | None]]:
    """Each quantile at each time from the summed buckets (bounds sorted once, not per time)."""
    at: dict[float, dict[float, float | None]] = {q: {} for q in quantiles}
    bounds = sorted(buckets)
    columns = [buckets[bound] for bound in bounds]
    for t in {t for column in columns for t in column}:
        try:  # every bound has a count at t: the usual case, one list at once
            present, counts = bounds, [column[t] for column in columns]
        except KeyError:
            present = [bound for bound, column in zip(bounds, columns, strict=True) if t in column]
            counts = [column[t] for column in columns if t in column]
        total = sum(counts)
        if total == total:  # no NaN: non-decreasing counts, the rank found by bisection
            counts = list(accumulate(counts, max))  # made non-decreasing as Prometheus does
            found = _quantiles(quantiles, present, counts, sorted_counts=True)
        else:
            running = counts[0]
            for i, count in enumerate(counts):  # the same, in Prometheus's order of arguments
                running = counts[i] = max(count, running)
            found = _quantiles(quantiles, present, counts)
        for q, value in zip(quantiles, found, strict=True):
            at[q][t] = value
    return at


def bucket_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """Prometheus's ``histogram_quantile`` over ``(upper bound, cumulative count)`` pairs.

    Linear interpolation inside the bucket the rank falls in; the top finite bound when it
    falls in ``+Inf``; None (no number) without a ``+Inf`` bucket or without observations.
    """
    return _quantiles([q], *_cumulative(buckets))[0]


def _cumulative(buckets: Sequence[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """Bounds and counts, the counts made non-decreasing as Prometheus does."""
    bounds = [bound for bound, _ in buckets]
    counts: list[float] = []
    for _, count in buckets:
        counts.append(max(count, counts[-1]) if counts else count)
    return bounds, counts


def _quantiles(
    quantiles: Sequence[float],
    bounds: Sequence[float],
    counts: Sequence[float],
    *,
    sorted_counts: bool = False,
) -> list[float | None]:
    """``histogram_quantile`` of each of ``quantiles`` over cumulative ``counts``.

    ``sorted_counts``: none is NaN, so the rank's bucket is found by bisection.
    """
    if len(bounds) < 2 or bounds[-1] != math.inf or not counts[-1] > 0:
        return [None] * len(quantiles)
    total, last = counts[-1], len(bounds) - 1
    found: list[float | None] = []
    for q in quantiles:
        rank = q * total
        b = last
        if sorted_counts:  # the first bucket whose count reaches the rank, as the scan finds
            b = bisect_left(counts, rank, 0, last)
        else:
            for i in range(last):
                if counts[i] >= rank:
                    b = i
                    break
        if b == last:
            found.append(bounds[-2])
            continue
        if b == 0 and bounds[0] <= 0:
            found.append(bounds[0])
            continue
        start, below = (bounds[b - 1], counts[b - 1]) if b > 0 else (0.0, 0.0)
        inside = counts[b] - below
        found.append(
            None if inside <= 0 else start + (bounds[b] - start) * ((rank - below) / inside)
        )
    return found


def split_rows(
    result: Sequence[Series],
) -> tuple[dict[ServerKey, Series], dict[str, Series]]:
    """A signal's rows: each server's by its key, and the model's by runtime."""
    servers: dict[ServerKey, Series] = {}
    models: dict[str, Series] = {}
    for series in result:
        runtime = _model_runtime(series.labels)
        if runtime is None:
            servers[_key(series.labels)] = series
        else:
            models[runtime] = series
    return servers, models


def _model_runtime(labels: Mapping[str, str]) -> str | None:
    """The runtime of a row of the model's (which Prometheus pooled); None for a server's."""
    return labels.get(RUNTIME_LABEL, "") if labels.get(SCOPE_LABEL) == "model" else None


def _key(labels: Mapping[str, str]) -> ServerKey:
    return (
        labels.get(SERVER_LABELS[0], ""),
        labels.get(SERVER_LABELS[1], ""),
        labels.get(SERVER_LABELS[2], ""),
    )


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def server_series(
    signal: Signal,
    answer: Mapping[ServerKey, Series] | Unavailable,
    key: ServerKey,
    window: Window,
) -> SignalSeries:
    """The series of ``signal`` for the server ``key``, with its status."""
    if isinstance(answer, Unavailable):
        return SignalSeries(signal, "unavailable", reason=answer.reason)
    found = answer.get(key)
    return judged(signal, _points(found) if found else (), window)


def model_series(
    signal: Signal, answer: Mapping[str, Series] | Unavailable, window: Window
) -> SignalSeries:
    """The model's series of ``signal``, joined across runtimes when it has several."""
    if isinstance(answer, Unavailable):
        return SignalSeries(signal, "unavailable", reason=answer.reason)
    rows = [_points(answer[runtime]) for runtime in sorted(answer)]
    return judged(signal, combine_runtimes(signal, rows), window)


def combine_runtimes(signal: Signal, rows: Sequence[Sequence[Point]]) -> tuple[Point, ...]:
    """Rows of the same signal from different runtimes, joined point by point.

    Amounts add up; ratios, latencies and utilisation take the worst (highest) value.
    """
    if len(rows) == 1:
        return tuple(rows[0])
    at: dict[float, list[float]] = defaultdict(list)
    seen: set[float] = set()
    for row in rows:
        for timestamp, value in row:
            seen.add(timestamp)
            if value is not None:
                at[timestamp].append(value)
    join = sum if signal.across_runtimes == "sum" else max
    return tuple((t, join(at[t]) if at[t] else None) for t in sorted(seen))


def _points(series: Series) -> tuple[Point, ...]:
    points = series.points
    # A finite sum means every value is finite (a NaN or an infinity would carry through):
    # the usual case keeps the points as they are instead of copying them one by one. A sum
    # that overflows is infinite, not an error (``math.fsum`` would raise), and takes the copy.
    if math.isfinite(sum(map(itemgetter(1), points))):
        return points
    return tuple([(t, v if math.isfinite(v) else None) for t, v in points])


def judged(signal: Signal, points: Sequence[Point], window: Window) -> SignalSeries:
    """The series with its status: missing without points, stale when they stop early."""
    if not points:
        return SignalSeries(signal, "missing", reason="Prometheus has no data for it")
    age = window.end.timestamp() - points[-1][0]
    if age > window.stale_after_seconds:
        return SignalSeries(
            signal,
            "stale",
            tuple(points),
            reason=f"no data for the last {age:.0f} s",
        )
    return SignalSeries(signal, "ok", tuple(points))
