"""How ``trellis check-update`` and ``trellis update`` tell a person what happened (Rich)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.markdown import Markdown
from rich.text import Text

from trellis.blueprints import Release
from trellis.redact import scrub_url
from trellis.services.updates import UpdateResult, UpdateStatus

__all__ = ["print_releases", "print_result", "print_status"]


def print_releases(console: Console, releases: Sequence[Release]) -> None:
    """Each release's notes from the blueprint's changelog, newest first."""
    if not releases:
        return
    console.print()
    console.print(Text("What changes (from the blueprint's CHANGELOG.md):", style="bold"))
    for release in releases:
        console.print()
        heading = release.version + (f" - {release.date}" if release.date else "")
        console.print(Text(heading, style="bold cyan"))
        console.print(Markdown(release.body or "(no notes)"))


def print_status(console: Console, status: UpdateStatus) -> None:
    """Blueprint, version in use, newest version, and the notes of every release between."""
    rows = [
        ("repository", status.location),
        ("blueprint", status.blueprint),
        ("source", scrub_url(status.source)),
        ("in use", status.current),
        ("newest", status.newest or "(no release)"),
    ]
    for label, value in rows:
        console.print(Text.assemble((f"{label:>10}  ", "dim"), value), soft_wrap=True)
    if status.note:
        console.print(Text(f"note: {status.note}", style="yellow"), soft_wrap=True)
    for warning in status.warnings:
        console.print(Text(f"warning: {warning}", style="yellow"), soft_wrap=True)
    if status.behind is None:
        return
    if status.up_to_date:
        console.print(Text("✓ up to date", style="green"))
        return
    plural = "s" if status.behind != 1 else ""
    console.print(Text(f"{status.behind} newer release{plural}", style="bold yellow"))
    print_releases(console, status.releases)
    console.print()
    console.print(
        Text.assemble("Update with: ", (f"trellis update {status.location}", "bold")),
        soft_wrap=True,
    )


def print_result(console: Console, result: UpdateResult) -> None:
    """The version change, the release notes, and any files left in conflict with the fix."""
    if not result.changed:
        console.print(
            Text(f"✓ {result.blueprint} is already at {result.to_version}", style="green")
        )
        return
    console.print(
        Text.assemble(
            (f"{result.blueprint} ", "bold"),
            f"{result.from_version} → ",
            (result.to_version, "bold green"),
        )
    )
    print_releases(console, result.releases)
    if not result.conflicts:
        console.print(Text("✓ merged cleanly; review with `git diff`, then commit", style="green"))
        return
    console.print()
    console.print(
        Text(
            f"✗ {len(result.conflicts)} file(s) need you: the blueprint changed lines next to "
            "your own edits",
            style="bold red",
        )
    )
    for name in result.conflicts:
        console.print(Text(f"  {name}"), soft_wrap=True)
    console.print(
        "Resolve each one: edit the file, keep what should stay between the "
        "`<<<<<<< before updating` and `>>>>>>> after updating` markers and delete the "
        "markers; then `git add` the files and commit.",
        markup=False,
        highlight=False,
    )
