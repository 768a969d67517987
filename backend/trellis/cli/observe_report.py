"""How ``trellis observe`` shows an observability answer: a line per signal, with a sparkline.

It renders the same JSON the API answers with, so the terminal and Backstage never disagree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.text import Text

__all__ = ["BARS", "format_value", "print_page", "sparkline"]

BARS = "▁▂▃▄▅▆▇█"
WIDTH = 30
TITLE = 18

Json = Mapping[str, Any]


def sparkline(values: Sequence[float | None], width: int = WIDTH) -> str:
    """``values`` as at most ``width`` bars (a column averages its values; blank: no value)."""
    if not values:
        return ""
    columns = min(width, len(values))
    cells: list[float | None] = []
    for column in range(columns):
        part = values[column * len(values) // columns : (column + 1) * len(values) // columns]
        present = [v for v in part if v is not None and math.isfinite(v)]
        cells.append(sum(present) / len(present) if present else None)
    known = [c for c in cells if c is not None]
    if not known:
        return " " * columns
    low, high = min(known), max(known)
    span = high - low
    return "".join(
        " "
        if c is None
        else BARS[0 if span == 0 else min(len(BARS) - 1, int((c - low) / span * len(BARS)))]
        for c in cells
    )


def format_value(value: float | None, unit: str) -> str:
    """A value in its unit, the way a person reads it (``120 ms``, ``0.40 %``, ``1.5 GiB``)."""
    if value is None:
        return "-"
    if unit == "ratio":
        return f"{value * 100:.2f} %"
    if unit == "s":
        return f"{value * 1000:.3g} ms" if value < 1 else f"{value:.3g} s"
    if unit == "bytes":
        for size, name in ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
            if abs(value) >= size:
                return f"{value / size:.3g} {name}"
        return f"{value:.0f} B"
    if unit == "%":
        return f"{value:.3g} %"
    return f"{value:.3g} {unit}"


def print_page(console: Console, page: Json) -> None:
    """The entity, each server's signals, the model's, and the training history."""
    entity, window, sources = page["entity"], page["window"], page["sources"]
    _line(
        console,
        (str(entity["ref"]), "bold"),
        f"  last {window['range']}, every {window['step']}  ",
        _source("prometheus", sources["prometheus"]),
        "  ",
        _source("mlflow", sources["mlflow"]),
    )
    for server in page["servers"]:
        _section(
            console,
            f"{server['name']}  {server['region']}  {server['runtime']}  "
            f"{server['readyReplicas']}/{server['desiredReplicas']} ready",
        )
        for signal in server["signals"]:
            _signal(console, signal, window)
    model = page["model"]
    if not page["servers"]:
        _section(console, "no servers")
    elif model["servers"] > 1:
        _section(console, f"all {model['servers']} servers")
        for signal in model["signals"]:
            _signal(console, signal, window)
    for run in page["training"]:
        _section(console, f"training  {run['alias']} v{run['version']}  run {run['runId'] or '-'}")
        if run["reason"]:
            _line(console, ("  " + str(run["reason"]), "dim"))
        for key, points in run["metrics"].items():
            last = points[-1] if points else None
            shown = "-"
            if last is not None and last["value"] is not None:
                shown = f"{last['value']:.4g} at step {last['step']}"
            spark = sparkline([p["value"] for p in points])
            _line(console, f"  {key:<{TITLE}} {spark:<{WIDTH}}  {shown}")


def _line(console: Console, *parts: str | Text | tuple[str, str]) -> None:
    """One line, never cut: a narrow terminal wraps it instead."""
    console.print(Text.assemble(*parts), soft_wrap=True, highlight=False)


def _section(console: Console, title: str) -> None:
    _line(console, (title, "bold cyan"))


def _signal(console: Console, signal: Json, window: Json) -> None:
    status, unit = signal["status"], signal["unit"]
    current = signal["current"]
    value = format_value(current["value"] if current else None, unit)
    spark = sparkline(_on_grid(signal["series"], window))
    mark: Text | str = ""
    if status == "stale":
        mark = Text(f"  ⚠ stale: {signal['reason']}", style="yellow")
    elif status == "missing":
        mark = Text("  - no data", style="dim")
    elif status == "unavailable":
        mark = Text(f"  ✗ unavailable: {signal['reason']}", style="red")
    _line(console, f"  {signal['title']:<{TITLE}} {spark:<{WIDTH}}  {value:>12}", mark)


def _on_grid(series: Sequence[Sequence[Any]], window: Json) -> list[float | None]:
    """The series at every evaluation time of the window (None where it has no point)."""
    step = float(window["stepSeconds"])
    count = int(window["points"])
    first = datetime.fromisoformat(str(window["start"])).timestamp()
    values: list[float | None] = [None] * count
    for timestamp, value in series:
        index = round((float(timestamp) - first) / step)
        if 0 <= index < count:
            values[index] = value
    return values


def _source(name: str, state: Json) -> Text:
    if state["status"] == "ok":
        return Text(f"{name} ✓", style="green")
    return Text(f"{name} ✗ {state['reason']}", style="red")
