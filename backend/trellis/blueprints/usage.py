"""Which blueprint versions generated repositories use, and how far behind they are.

``blueprint_fact`` is the ``blueprint`` fact of a scorecard (Tech Insights style): a version
that is not a known release is *unknown* (``None``) rather than a guess, so a check on it is
reported as unknown, not failed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from packaging.version import Version

from trellis.blueprints.changelog import base_version, parse_version
from trellis.model import BlueprintInstance

__all__ = [
    "blueprint_fact",
    "minor_versions_behind",
    "newer_releases",
    "newest_release",
    "usage_by_version",
    "versions_behind",
]


def newer_releases(version: str, versions: Iterable[str]) -> list[str]:
    """The releases in ``versions`` newer than ``version`` (or its base tag), oldest first."""
    current = parse_version(base_version(version))
    if current is None:
        return []
    newer = [
        (parsed, release)
        for release in versions
        if (parsed := parse_version(release)) is not None and parsed > current
    ]
    return [release for _, release in sorted(newer)]


def versions_behind(version: str, versions: Sequence[str]) -> int | None:
    """How many releases are newer than ``version``; None when it is not a known release.

    A ``git describe`` version (``0.1.0-3-gabc``, a commit after the tag ``0.1.0``) is not a
    release: ``newer_releases`` counts from its base tag for callers that want to say so.
    """
    current = parse_version(version)
    if current is None or all(parse_version(v) != current for v in versions):
        return None
    return len(newer_releases(version, versions))


def minor_versions_behind(version: str, versions: Sequence[str]) -> int | None:
    """How many newer minor lines (``major.minor``) have releases; None as ``versions_behind``.

    Patch releases do not count: a repository on 0.2.0 is one minor version behind 0.3.4.
    """
    if versions_behind(version, versions) is None:
        return None
    lines = {(v.major, v.minor) for v in map(parse_version, newer_releases(version, versions)) if v}
    current = parse_version(version)
    assert current is not None  # noqa: S101  # versions_behind said it is a release
    return len(lines - {(current.major, current.minor)})


def _parsed(version: str) -> Version | None:
    return parse_version(base_version(version))


def newest_release(versions: Sequence[str]) -> str | None:
    """The newest of ``versions`` that parses as a release; None when none does."""
    parsed = [(v, release) for release in versions if (v := parse_version(release)) is not None]
    return max(parsed)[1] if parsed else None


def blueprint_fact(instance: BlueprintInstance, versions: Sequence[str]) -> dict[str, object]:
    """The ``blueprint`` fact of one generated repository, given its source's releases."""
    return {
        "blueprint": instance.blueprint,
        "version": instance.version,
        "latestVersion": newest_release(versions),
        "versionsBehind": versions_behind(instance.version, versions),
        "minorVersionsBehind": minor_versions_behind(instance.version, versions),
    }


def usage_by_version(instances: Iterable[BlueprintInstance]) -> dict[str, dict[str, int]]:
    """How many repositories use each version of each blueprint, versions newest first."""
    counts: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for instance in instances:
        counts[instance.blueprint][instance.version] += 1

    result: dict[str, dict[str, int]] = {}
    for blueprint in sorted(counts):
        known = [(parsed, v) for v in counts[blueprint] if (parsed := _parsed(v)) is not None]
        unknown = sorted(v for v in counts[blueprint] if _parsed(v) is None)
        ordered = [v for _, v in sorted(known, reverse=True)] + unknown
        result[blueprint] = {v: counts[blueprint][v] for v in ordered}
    return result
