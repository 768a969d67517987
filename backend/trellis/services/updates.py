"""Moving generated repositories to newer blueprint versions: check, update, survey.

Shared by ``trellis check-update``, ``trellis update`` and the API. Versions and changelogs are
read from the repository's own ``_src_path``, the source ``copier update`` will really use,
never from Trellis's settings: the answer is about the update that would run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from packaging.version import Version

from trellis.blueprints import (
    Release,
    newer_releases,
    parse_changelog,
    releases_between,
    versions_behind,
)
from trellis.blueprints.changelog import base_version, parse_version
from trellis.errors import ConfigError, TrellisError
from trellis.model import BlueprintInstance
from trellis.ports import GeneratedRepositories, TemplateSource
from trellis.redact import scrub_url

__all__ = [
    "SourceFactory",
    "UpdateResult",
    "UpdateStatus",
    "check_update",
    "known_instances",
    "update",
]

_HEX = re.compile(r"^[0-9a-fA-F]{7,40}$")

#: Builds the blueprint source a repository records (tests and the API may substitute one).
SourceFactory = Callable[[str], TemplateSource]


@dataclass(frozen=True, slots=True)
class UpdateStatus:
    """Where a generated repository stands against its blueprint's releases.

    ``behind`` counts the releases newer than ``current``; for a version that is not a
    release (a ``git describe`` like ``1.0.0-3-gabc``) it counts from its base tag, and
    ``note`` says so. It is None when the version cannot be ordered at all.
    """

    location: str
    blueprint: str
    source: str
    current: str
    newest: str | None
    behind: int | None
    releases: tuple[Release, ...]
    note: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def up_to_date(self) -> bool:
        """Whether no newer release exists."""
        return self.behind == 0

    def as_json(self) -> dict[str, object]:
        """The status as a JSON object (camelCase, like Backstage's APIs)."""
        return {
            "location": self.location,
            "blueprint": self.blueprint,
            "source": scrub_url(self.source),
            "currentVersion": self.current,
            "latestVersion": self.newest,
            "versionsBehind": self.behind,
            "upToDate": self.up_to_date,
            "note": self.note,
            "warnings": list(self.warnings),
            "releases": [
                {"version": r.version, "date": r.date, "notes": r.body} for r in self.releases
            ],
        }


@dataclass(frozen=True, slots=True)
class UpdateResult:
    """What ``update`` did: the versions before and after, and the files left in conflict."""

    location: str
    blueprint: str
    from_version: str
    to_version: str
    conflicts: tuple[str, ...]
    releases: tuple[Release, ...]

    @property
    def changed(self) -> bool:
        """Whether the repository moved to another version."""
        return self.from_version != self.to_version


def check_update(
    location: str | Path, *, repositories: GeneratedRepositories, source_factory: SourceFactory
) -> UpdateStatus:
    """Compare a repository's blueprint version with its source's releases.

    ``location`` is a local checkout or the http(s) base URL of its raw files.
    """
    instance = repositories.read_instance(str(location), entity=False)
    source = source_factory(_recorded_source(instance))
    versions = _versions(source, instance)
    current = _as_release(source, instance)
    newest = versions[-1]
    behind = versions_behind(current, versions)
    note = None
    if current != instance.version:
        note = f"{instance.version} is the commit of release {current}"
    elif behind is None:
        if _ordered(instance.version) is None:
            note = f"{instance.version} is not a version; cannot tell how far behind it is"
        else:
            behind = len(newer_releases(instance.version, versions))
            base = base_version(instance.version)
            note = (
                f"{instance.version} is not a release of the source; counted from {base}"
                if base != instance.version
                else f"{instance.version} is not a release of the source"
            )
    releases: tuple[Release, ...] = ()
    if behind:
        changelog = parse_changelog(source.changelog(instance.blueprint, ref=newest))
        releases = tuple(releases_between(changelog, current, newest))
    return UpdateStatus(
        location=scrub_url(str(location)),
        blueprint=instance.blueprint,
        source=instance.source,
        current=instance.version,
        newest=newest,
        behind=behind,
        releases=releases,
        note=note,
        warnings=tuple(source.tag_warnings(instance.blueprint)),
    )


def update(
    repo: Path,
    to: str | None = None,
    *,
    repositories: GeneratedRepositories,
    source_factory: SourceFactory,
) -> UpdateResult:
    """``copier update`` a clean checkout to ``to`` (default: the newest release).

    Refuses a dirty tree, an unknown version and a downgrade before touching anything. The
    changelog is read first too, so a source that cannot be read changes nothing.
    """
    if not repo.is_dir():
        raise ConfigError(f"{repo}: no such directory")
    _require_clean_git(repo, repositories)
    instance = repositories.read_instance(str(repo), entity=False)
    source = source_factory(_recorded_source(instance))
    versions = _versions(source, instance)
    target = to or versions[-1]
    if target not in versions:
        raise ConfigError(
            f"{target} is not a release of {instance.source}; newest releases: "
            + ", ".join(reversed(versions[-5:]))
        )
    if target in (instance.version, _as_release(source, instance)):
        return UpdateResult(str(repo), instance.blueprint, target, target, (), ())
    current = _ordered(_as_release(source, instance))
    wanted = parse_version(target)
    if current is not None and wanted is not None and wanted <= current:
        raise ConfigError(
            f"{repo} is at {instance.version}; {target} would be a downgrade, which "
            "copier update does not do"
        )
    changelog = parse_changelog(source.changelog(instance.blueprint, ref=target))
    with source.updating(instance.blueprint) as git_env:
        conflicts = repositories.run_update(repo, to=target, git_env=git_env)
    recorded = str(repositories.read_answers(repo).get("_commit", target))
    return UpdateResult(
        location=str(repo),
        blueprint=instance.blueprint,
        from_version=instance.version,
        to_version=recorded,
        conflicts=tuple(conflicts),
        releases=tuple(releases_between(changelog, _as_release(source, instance), recorded)),
    )


def known_instances(
    locations: Iterable[str], repositories: GeneratedRepositories
) -> tuple[list[BlueprintInstance], list[tuple[str, str]]]:
    """Read every configured repository; one that cannot be read is a problem, not a failure.

    Returns the instances read and ``(location, reason)`` for each one that was not; the
    location is scrubbed of credentials, the reason names a status, never a body.
    """
    instances: list[BlueprintInstance] = []
    problems: list[tuple[str, str]] = []
    for location in locations:
        try:
            instances.append(repositories.read_instance(location))
        except TrellisError as exc:
            problems.append((scrub_url(location), str(exc)))
    return instances, problems


def _versions(source: TemplateSource, instance: BlueprintInstance) -> list[str]:
    """The source's releases of the repository's blueprint; none at all is an error.

    Without a release nothing can be compared or updated to, and saying "up to date" would
    be a guess, so the reason is given instead.
    """
    versions = source.versions(instance.blueprint)
    if not versions:
        raise ConfigError(
            f"no release of {instance.blueprint} could be found in {instance.source}: "
            f"blueprints/{instance.blueprint}/blueprint.yaml has no PEP 440 `version` in the "
            "history of its HEAD (releases are read from the tree, not from git tags)"
        )
    return versions


def _as_release(source: TemplateSource, instance: BlueprintInstance) -> str:
    """The recorded version, or the release whose commit an older render recorded instead.

    Repositories rendered from a clone without tags by earlier Trellis versions record a
    commit hash; when it is a release's commit, it is that release.
    """
    recorded = instance.version
    if not _HEX.match(recorded):
        return recorded
    for release in source.releases(instance.blueprint):
        if release.commit.startswith(recorded.lower()):
            return release.version
    return recorded


def _ordered(version: str) -> Version | None:
    """The version to order ``version`` by; None for a commit hash.

    A hash such as ``287b611`` parses as a PEP 440 beta of 287, past every release.
    """
    return None if _HEX.match(version) else parse_version(base_version(version))


def _recorded_source(instance: BlueprintInstance) -> str:
    if not instance.source:
        raise ConfigError(f"{instance.location}: the answers file records no `_src_path`")
    return instance.source


def _require_clean_git(repo: Path, repositories: GeneratedRepositories) -> None:
    if not repositories.is_checkout(repo):
        raise ConfigError(
            f"{repo} is not a git repository; copier update needs one "
            "(git init, then commit the generated files)"
        )
    if conflicts := repositories.conflicted_files(repo):
        raise ConfigError(
            f"{repo} still has conflicts from an update ({', '.join(conflicts)}); "
            "resolve them, `git add` and commit first"
        )
    if repositories.is_dirty(repo):
        raise ConfigError(
            f"{repo} has uncommitted changes; commit or stash them first "
            "(copier update merges into a clean tree)"
        )
