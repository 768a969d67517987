"""The update use case against fakes of its two ports: no git, no Copier, no network.

``check_update`` and ``update`` decide from what a repository records and what its source
releases; the fakes hold both and record what was asked, so each rule (refusals before any
change, counting from a release a commit belongs to, notes for versions that are not
releases) is checked here, and the real ``copier update`` runs only in tests/cli.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from trellis.errors import ConfigError, SourceUnavailable
from trellis.model import BlueprintInstance
from trellis.services.updates import check_update, known_instances, update

SOURCE = "https://git.example.com/platform/trellis.git"
CHANGELOG = """# Changelog

## 1.2.0 - 2026-11-30

- Two.

## 1.1.0 - 2026-11-20

- One.

## 1.0.0 - 2026-11-01

- First.
"""


@dataclass(frozen=True)
class _Release:
    version: str
    commit: str


@dataclass
class FakeSource:
    """A blueprint source with releases 1.0.0, 1.1.0 and 1.2.0 of ``ml-model``."""

    versions_: tuple[str, ...] = ("1.0.0", "1.1.0", "1.2.0")
    failing: str | None = None
    changelogs_read: list[str | None] = field(default_factory=list)
    updating_entered: int = 0

    def versions(self, blueprint: str) -> list[str]:
        if self.failing:
            raise SourceUnavailable("blueprints", self.failing)
        return list(self.versions_)

    def releases(self, blueprint: str) -> list[_Release]:
        return [_Release(v, f"{i:x}" * 40) for i, v in enumerate(self.versions_, start=10)]

    def changelog(self, blueprint: str, *, ref: str | None = None) -> str:
        self.changelogs_read.append(ref)
        return CHANGELOG

    def tag_warnings(self, blueprint: str) -> list[str]:
        return []

    @contextmanager
    def updating(self, blueprint: str) -> Iterator[dict[str, str]]:
        self.updating_entered += 1
        yield {"GIT_CONFIG_COUNT": "0"}


@dataclass
class FakeRepositories:
    """Generated repositories by location; a checkout's state is set by each test."""

    recorded: dict[str, str] = field(default_factory=dict)  # location -> version
    checkout: bool = True
    dirty: bool = False
    conflicts: list[str] = field(default_factory=list)
    left_in_conflict: list[str] = field(default_factory=list)
    updates: list[tuple[Path, str | None, Mapping[str, str] | None]] = field(default_factory=list)

    def read_instance(self, location: str, *, entity: bool = True) -> BlueprintInstance:
        if location not in self.recorded:
            raise SourceUnavailable(location, "404 Not Found")
        return BlueprintInstance(
            location=location, blueprint="ml-model", version=self.recorded[location], source=SOURCE
        )

    def read_answers(self, repo: Path) -> dict[str, Any]:
        return {"_commit": self.recorded[str(repo)], "blueprint": "ml-model"}

    def is_checkout(self, repo: Path) -> bool:
        return self.checkout

    def is_dirty(self, repo: Path) -> bool:
        return self.dirty

    def conflicted_files(self, repo: Path) -> list[str]:
        return list(self.conflicts)

    def run_update(
        self, repo: Path, *, to: str | None = None, git_env: Mapping[str, str] | None = None
    ) -> list[str]:
        self.updates.append((repo, to, git_env))
        self.recorded[str(repo)] = to or "1.2.0"
        return list(self.left_in_conflict)

    def close(self) -> None:
        pass


def _ports(tmp_path: Path, version: str) -> tuple[Path, FakeRepositories, FakeSource]:
    repo = tmp_path / "fraud-detector"
    repo.mkdir()
    return repo, FakeRepositories(recorded={str(repo): version}), FakeSource()


def _factory(source: FakeSource) -> Any:
    asked: list[str] = []

    def factory(url: str) -> FakeSource:
        asked.append(url)
        return source

    factory.asked = asked  # type: ignore[attr-defined]
    return factory


@pytest.mark.parametrize(
    ("version", "behind", "notes"),
    [
        ("1.0.0", 2, ["1.2.0", "1.1.0"]),
        ("1.1.0", 1, ["1.2.0"]),
        ("1.2.0", 0, []),
    ],
)
def test_check_update_counts_the_releases_after_the_recorded_one(tmp_path, version, behind, notes):
    repo, repositories, source = _ports(tmp_path, version)
    factory = _factory(source)
    status = check_update(repo, repositories=repositories, source_factory=factory)
    assert factory.asked == [SOURCE]  # the source the repository records, not a setting
    assert (status.current, status.newest, status.behind) == (version, "1.2.0", behind)
    assert [r.version for r in status.releases] == notes
    assert status.up_to_date is (behind == 0)
    assert source.changelogs_read == (["1.2.0"] if behind else [])


def test_a_recorded_commit_of_a_release_counts_as_that_release(tmp_path):
    repo, repositories, source = _ports(tmp_path, "b" * 12)  # 1.1.0's commit prefix
    status = check_update(repo, repositories=repositories, source_factory=_factory(source))
    assert status.behind == 1
    assert status.note == f"{'b' * 12} is the commit of release 1.1.0"


@pytest.mark.parametrize(
    ("version", "behind", "note"),
    [
        (
            "1.0.0-3-gabc1234",
            2,
            "1.0.0-3-gabc1234 is not a release of the source; counted from 1.0.0",
        ),
        ("0.9.0", 3, "0.9.0 is not a release of the source"),
        ("fedcba9", None, "fedcba9 is not a version; cannot tell how far behind it is"),
    ],
)
def test_a_version_that_is_not_a_release_says_so(tmp_path, version, behind, note):
    repo, repositories, source = _ports(tmp_path, version)
    status = check_update(repo, repositories=repositories, source_factory=_factory(source))
    assert (status.behind, status.note) == (behind, note)


def test_a_source_without_releases_is_an_error_naming_where_releases_come_from(tmp_path):
    repo, repositories, source = _ports(tmp_path, "1.0.0")
    source.versions_ = ()
    with pytest.raises(ConfigError, match="no release of ml-model could be found in"):
        check_update(repo, repositories=repositories, source_factory=_factory(source))


def test_update_moves_to_the_newest_release_through_the_source_s_tagged_copy(tmp_path):
    repo, repositories, source = _ports(tmp_path, "1.0.0")
    result = update(repo, repositories=repositories, source_factory=_factory(source))
    assert repositories.updates == [(repo, "1.2.0", {"GIT_CONFIG_COUNT": "0"})]
    assert (result.from_version, result.to_version, result.conflicts) == ("1.0.0", "1.2.0", ())
    assert [r.version for r in result.releases] == ["1.2.0", "1.1.0"]
    assert result.changed


def test_conflicts_left_by_copier_are_reported(tmp_path):
    repo, repositories, source = _ports(tmp_path, "1.1.0")
    repositories.left_in_conflict = ["README.md"]
    result = update(repo, repositories=repositories, source_factory=_factory(source))
    assert result.conflicts == ("README.md",)


def test_an_update_to_the_current_release_changes_nothing(tmp_path):
    repo, repositories, source = _ports(tmp_path, "1.2.0")
    result = update(repo, repositories=repositories, source_factory=_factory(source))
    assert not result.changed
    assert repositories.updates == [] and source.updating_entered == 0


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"checkout": False}, "is not a git repository; copier update needs one"),
        ({"conflicts": ["model.py"]}, r"still has conflicts from an update \(model.py\)"),
        ({"dirty": True}, "has uncommitted changes; commit or stash them first"),
    ],
)
def test_an_unfit_checkout_is_refused_before_anything_is_read(tmp_path, state, message):
    repo, repositories, source = _ports(tmp_path, "1.0.0")
    for name, value in state.items():
        setattr(repositories, name, value)
    factory = _factory(source)
    with pytest.raises(ConfigError, match=message):
        update(repo, repositories=repositories, source_factory=factory)
    assert factory.asked == [] and repositories.updates == []


@pytest.mark.parametrize(
    ("to", "message"),
    [
        ("2.0.0", "2.0.0 is not a release of .*; newest releases: 1.2.0, 1.1.0, 1.0.0"),
        ("1.0.0", "is at 1.1.0; 1.0.0 would be a downgrade"),
    ],
)
def test_an_unknown_or_older_target_is_refused_and_nothing_runs(tmp_path, to, message):
    repo, repositories, source = _ports(tmp_path, "1.1.0")
    with pytest.raises(ConfigError, match=message):
        update(repo, to, repositories=repositories, source_factory=_factory(source))
    assert repositories.updates == [] and source.updating_entered == 0


def test_a_missing_directory_is_refused(tmp_path):
    _, repositories, source = _ports(tmp_path, "1.0.0")
    with pytest.raises(ConfigError, match="no such directory"):
        update(tmp_path / "gone", repositories=repositories, source_factory=_factory(source))


def test_known_instances_reports_each_unreadable_repository_and_keeps_the_rest():
    repositories = FakeRepositories(recorded={"https://git.example.com/a": "1.0.0"})
    locations: Sequence[str] = [
        "https://git.example.com/a",
        "https://user:s3cret@git.example.com/b",
    ]
    instances, problems = known_instances(locations, repositories)
    assert [i.location for i in instances] == ["https://git.example.com/a"]
    # The location is shown without its credentials, and the reason never holds them.
    assert problems == [
        ("https://git.example.com/b", "https://git.example.com/b unavailable: 404 Not Found")
    ]
