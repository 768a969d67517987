"""What a test starts, checked against the markers it carries.

Each support function that starts a real service or runs an outside tool calls
:func:`starting` with the marker that names it. The test running at that moment must carry
the marker. A session or module fixture starts its service once, for the first test that asks
for it; the later tests that reuse it are held to the same marker through the fixture's name
(:func:`unmarked_services`). So ``pytest -m "not backstage"`` really runs without Backstage,
and a test that starts something new cannot hide it. The markers are registered, with
what each means, in ``pyproject.toml``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

__all__ = ["fixture_setup", "running", "starting", "unmarked_services"]

_current: pytest.Item | None = None
_fixtures: list[tuple[str, str]] = []  # (name, baseid) of the fixtures being set up
_started_by: dict[tuple[str, str], set[str]] = {}


@contextmanager
def running(item: pytest.Item) -> Iterator[None]:
    """Make ``item`` the test that the starts which follow are charged to."""
    global _current
    _current = item
    try:
        yield
    finally:
        _current = None


@contextmanager
def fixture_setup(name: str, baseid: str) -> Iterator[None]:
    """Charge what starts during this fixture's setup to the fixture as well as to the test."""
    _fixtures.append((name, baseid))
    try:
        yield
    finally:
        _fixtures.pop()


def _hint(item: pytest.Item, markers: set[str]) -> str:
    marks = " ".join(f"@pytest.mark.{m}" for m in sorted(markers))
    return (
        f"{item.nodeid} starts {', '.join(sorted(markers))} without its marker: add {marks} "
        "to the test (or `pytestmark` to its module); see support/markers.py"
    )


def starting(marker: str) -> None:
    """Fail unless the running test carries ``marker``; called just before a start."""
    for fixture in _fixtures:
        _started_by.setdefault(fixture, set()).add(marker)
    item = _current
    if item is not None and item.get_closest_marker(marker) is None:
        raise pytest.fail.Exception(_hint(item, {marker}), pytrace=False)


def unmarked_services(item: pytest.Item) -> str | None:
    """Why ``item`` fails: it uses a fixture that started a service it is not marked with."""
    needed: set[str] = set()
    for (name, baseid), markers in _started_by.items():
        if name in item.fixturenames and item.nodeid.startswith(baseid):
            needed |= markers
    missing = {m for m in needed if item.get_closest_marker(m) is None}
    return _hint(item, missing) if missing else None
