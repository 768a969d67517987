"""Blueprint changelogs: tolerant parsing and the releases an update brings."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from packaging.version import Version

from trellis.blueprints import Release, parse_changelog, releases_between

REPO = Path(__file__).resolve().parents[3]

CHANGELOG = """\
# Changelog

Notes for the owners of generated repositories.

## [Unreleased]

- not released yet

## [1.3.0](https://example.invalid/compare/1.2.0...1.3.0) - 2026-12-20

- Adds a drift monitor.

### To do by hand

- Set `DRIFT_THRESHOLD`.

## v1.2.0

- Renames the lint job.

## 1.1.0 \u2013 2026-12-01
- Bumps MLflow.

## not a version

text that belongs to no release

## 1.0.0 - 2026-11-28

- First release.
"""


def test_every_heading_form_is_read_with_its_date_and_notes():
    releases = parse_changelog(CHANGELOG)
    assert [(r.version, r.date) for r in releases] == [
        ("1.3.0", "2026-12-20"),
        ("v1.2.0", None),
        ("1.1.0", "2026-12-01"),
        ("1.0.0", "2026-11-28"),
    ]
    assert (
        releases[0].body
        == "- Adds a drift monitor.\n\n### To do by hand\n\n- Set `DRIFT_THRESHOLD`."
    )
    assert releases[2].body == "- Bumps MLflow."
    assert all("no release" not in r.body and "not released" not in r.body for r in releases)


@pytest.mark.parametrize(
    ("current", "newest", "expected"),
    [
        ("1.0.0", "1.3.0", ["1.3.0", "v1.2.0", "1.1.0"]),
        ("1.1.0", "1.2.0", ["v1.2.0"]),
        ("1.2.0", "1.2.0", []),
        ("v1.1.0", "1.3.0", ["1.3.0", "v1.2.0"]),
        # A commit after 1.1.0, as `git describe` (and so Copier's _commit) writes it.
        ("1.1.0-3-g0a1b2c3", "1.3.0", ["1.3.0", "v1.2.0"]),
        # A bare commit cannot be ordered: everything up to the newest is news.
        ("0a1b2c3d", "1.1.0", ["1.1.0", "1.0.0"]),
    ],
)
def test_releases_between_is_exclusive_below_inclusive_above_newest_first(
    current, newest, expected
):
    releases = parse_changelog(CHANGELOG)
    assert [r.version for r in releases_between(releases, current, newest)] == expected


def test_order_comes_from_versions_not_from_the_file():
    shuffled = [
        Release("1.1.0", None, "b"),
        Release("1.10.0", None, "c"),
        Release("1.2.0", None, "a"),
    ]
    assert [r.version for r in releases_between(shuffled, "1.0.0", "2.0.0")] == [
        "1.10.0",
        "1.2.0",
        "1.1.0",
    ]


def test_text_without_releases_has_none():
    assert parse_changelog("") == []
    assert parse_changelog("# Changelog\n\nNothing yet.\n") == []


def test_the_ml_model_changelog_follows_the_format():
    """Every section of the shipped changelog parses, newest first, dated, with notes."""
    text = (REPO / "blueprints" / "ml-model" / "CHANGELOG.md").read_text()
    releases = parse_changelog(text)
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert len(releases) == len(headings) >= 2
    assert [r.version for r in releases_between(releases, "0.0.0", releases[0].version)] == [
        r.version for r in releases
    ]
    for release in releases:
        assert release.date and len(release.date) == len("2026-11-28"), release
        assert release.body.startswith("- "), release


@pytest.mark.parametrize(
    "folder", sorted(p.parent.name for p in (REPO / "blueprints").glob("*/blueprint.yaml"))
)
def test_each_blueprints_version_is_its_changelogs_newest_release(folder):
    """The version in blueprint.yaml makes the release; its notes must be there with it."""
    meta = yaml.safe_load((REPO / "blueprints" / folder / "blueprint.yaml").read_text())
    version = Version(str(meta["version"]))  # a PEP 440 version, or this raises
    releases = parse_changelog((REPO / "blueprints" / folder / "CHANGELOG.md").read_text())
    assert releases, f"{folder}/CHANGELOG.md has no release section"
    assert max(Version(r.version) for r in releases) == version, (
        f"{folder}: blueprint.yaml says {version}; CHANGELOG.md's newest section must be it"
    )
