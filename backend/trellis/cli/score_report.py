"""How ``trellis score`` shows scorecards: a table per entity, or the fleet's levels.

It renders the same JSON the API answers with, so the terminal and Backstage never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["print_entity", "print_fleet"]

Json = Mapping[str, Any]

_MARKS = {
    "passed": ("✔", "green"),
    "failed": ("✘", "red"),
    "unknown": ("?", "yellow"),
    "pending": ("·", "dim"),
}
_LEVELS = ("none", "bronze", "silver", "gold")


def print_entity(console: Console, report: Json) -> None:
    """Each scorecard of one entity: its level, then each check with why it did not pass."""
    console.print(Text.assemble(("Scorecards of ", "bold"), (report["entity"], "bold cyan")))
    for scorecard in report["scorecards"]:
        table = Table(
            title=f"{scorecard['title']}: {scorecard['level'] or 'no level'}",
            title_justify="left",
            show_header=True,
            expand=False,
        )
        table.add_column("", width=1)
        table.add_column("check")
        table.add_column("level")
        table.add_column("why", overflow="fold")
        for check in scorecard["checks"]:
            mark, style = _MARKS[check["outcome"]]
            table.add_row(
                Text(mark, style=style),
                check["name"],
                check["level"],
                Text("; ".join(check["reasons"]), style="dim"),
            )
        console.print(table)


def print_fleet(console: Console, report: Json) -> None:
    """Per scorecard, how many entities reached each level, and by owner."""
    console.print(Text(f"{report['entities']} entities scored", style="bold"))
    for scorecard in report["scorecards"]:
        table = Table(title=scorecard["title"], title_justify="left")
        table.add_column("owner")
        for level in _LEVELS:
            table.add_column(level, justify="right")
        rows = {"all": scorecard["levels"], **scorecard["byOwner"]}
        for owner, counts in rows.items():
            table.add_row(owner or "(no owner)", *(str(counts[level]) for level in _LEVELS))
        console.print(table)
