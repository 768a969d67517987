"""A blueprint's CHANGELOG.md as releases, and the releases an update brings.

The format is deliberately loose so a hand-written changelog parses: one ``## `` heading per
release (``## 1.2.0 - 2026-11-28``, ``## [1.2.0] - 2026-11-28``, ``## v1.2.0``), newest first,
its notes below. Headings that are not versions (``## Unreleased``) are skipped with their text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

__all__ = ["Release", "base_version", "parse_changelog", "parse_version", "releases_between"]

_HEADING = re.compile(
    r"^##\s+\[?(?P<version>[^\]\s]+)\]?(?:\([^)]*\))?(?:\s*[-\u2013\u2014]\s*(?P<date>\S.*?))?\s*$"
)
#: ``git describe`` output, which Copier records as ``_commit`` for a commit after a tag.
_DESCRIBE = re.compile(r"^(?P<base>.+)-(?P<distance>\d+)-g(?P<sha>[0-9a-f]{4,40})$")


@dataclass(frozen=True, slots=True)
class Release:
    """One release of a blueprint: its version as written, its date if given, its notes."""

    version: str
    date: str | None
    body: str


def parse_version(text: str) -> Version | None:
    """``text`` as a PEP 440 version, or None when it is not one."""
    try:
        return Version(text)
    except InvalidVersion:
        return None


def base_version(version: str) -> str:
    """The tag a ``git describe`` version counts from (``0.1.0-3-gabc`` → ``0.1.0``)."""
    match = _DESCRIBE.match(version)
    return match["base"] if match is not None else version


def parse_changelog(text: str) -> list[Release]:
    """Every release in the changelog, in the order written (newest first by convention)."""
    releases: list[Release] = []
    current: tuple[str, str | None] | None = None
    lines: list[str] = []

    def close() -> None:
        if current is not None:
            releases.append(Release(current[0], current[1], "\n".join(lines).strip()))

    for line in text.splitlines():
        if line.startswith("## "):
            close()
            lines = []
            match = _HEADING.match(line)
            current = None
            if match is not None and parse_version(match["version"]) is not None:
                current = (match["version"], match["date"])
        elif line.startswith("# "):  # the document's title ends any section
            close()
            current, lines = None, []
        else:
            lines.append(line)
    close()
    return releases


def releases_between(releases: Iterable[Release], current: str, newest: str) -> list[Release]:
    """Releases after ``current`` up to and including ``newest``, newest first.

    ``current`` may be a ``git describe`` version: releases after its base tag count. When it
    is no version at all (a bare commit), every release up to ``newest`` is returned.
    """
    upper = parse_version(base_version(newest))
    if upper is None:
        return []
    lower = parse_version(base_version(current))
    chosen = []
    for release in releases:
        version = parse_version(release.version)
        if version is not None and version <= upper and (lower is None or version > lower):
            chosen.append((version, release))
    chosen.sort(key=lambda pair: pair[0], reverse=True)
    return [release for _, release in chosen]
