"""Blueprint releases read from the tree, and a tagged copy of the source for Copier.

A release of a blueprint is the commit where its ``blueprint.yaml`` ``version`` became that
version (``git log`` of the file), so any clone with history knows every release: tags are
not needed. Copier still wants tags to check out, describe and order versions, so it is
handed a temporary clone of the source whose only tags are those releases: to render, as the
source itself; to update, through git's ``url.<mirror>.insteadOf``, since ``copier update``
clones the source its answers file records. The user's checkout is
never written to.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml
from packaging.version import InvalidVersion, Version

from trellis.sources.git import git, git_url

__all__ = [
    "BlueprintRelease",
    "as_version",
    "find_releases",
    "metadata_path",
    "redirect_env",
    "release_mirror",
    "tag_mismatches",
]

log = logging.getLogger(__name__)

_OBJECT_NAME = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
"""A commit's full name (SHA-1 or SHA-256), as ``git log --format=%H`` prints it."""

VERSION_KEY = "version"
"""The key of ``blueprint.yaml`` that holds the blueprint's current release."""


@dataclass(frozen=True, slots=True)
class BlueprintRelease:
    """One release of a blueprint: its PEP 440 version and the commit that made it."""

    version: str
    commit: str

    @property
    def parsed(self) -> Version:
        """The version, for ordering."""
        return Version(self.version)


def as_version(text: str) -> Version | None:
    """``text`` as a PEP 440 version (a release or a ref naming one), or None."""
    try:
        return Version(text)
    except InvalidVersion:
        return None


def metadata_path(blueprint: str) -> str:
    """Where a blueprint's ``blueprint.yaml`` lives in the source."""
    return f"blueprints/{blueprint}/blueprint.yaml"


def shallow_boundary(repo: Path, what: str) -> frozenset[str]:
    """The commits where a shallow clone's history is cut (none in a full clone)."""
    if git("rev-parse", "--is-shallow-repository", cwd=repo, what=what).strip() != "true":
        return frozenset()
    listed = Path(git("rev-parse", "--git-path", "shallow", cwd=repo, what=what).strip())
    shallow = listed if listed.is_absolute() else repo / listed
    return (
        frozenset(shallow.read_text(encoding="ascii").split()) if shallow.is_file() else frozenset()
    )


def find_releases(repo: Path, blueprint: str, *, what: str) -> list[BlueprintRelease]:
    """Every release of ``blueprint`` in the history of ``repo``'s HEAD, oldest first.

    A shallow clone cannot tell where the version at its cut first appeared: that release is
    taken at the cut (the oldest commit present that has it), with a warning saying how to
    get the exact one; the releases after the cut are exact, the ones before it unknown.
    """
    cut = shallow_boundary(repo, what)
    path = metadata_path(blueprint)
    commits = git(
        "log", "--reverse", "--topo-order", "--diff-merges=first-parent", "--no-patch",
        "--format=%H",
        "-G", rf"^{VERSION_KEY}\s*:",
        "HEAD", "--", path, cwd=repo, what=what,
    ).split()  # fmt: skip
    # Only object names: a user's git config may add lines (log.showSignature), and each
    # line would otherwise cost a `git show`.
    commits = [line for line in commits if _OBJECT_NAME.fullmatch(line)]
    first: dict[Version, BlueprintRelease] = {}
    for commit in commits:
        version = _version_at(repo, commit, path, what)
        if version is not None and version not in first:
            first[version] = BlueprintRelease(str(version), commit)
            if commit in cut:
                log.warning(
                    "%s is a shallow clone: release %s of %s is taken at %s, where its history "
                    "is cut, and older releases are unknown; fetch the history with "
                    "`git fetch --unshallow` (in CI: a full-depth checkout, fetch-depth: 0)",
                    what, version, blueprint, commit[:12],
                )  # fmt: skip
    return [first[version] for version in sorted(first)]


def _version_at(repo: Path, commit: str, path: str, what: str) -> Version | None:
    text = git("show", f"{commit}:{path}", cwd=repo, what=what, ok_codes=(0, 128))
    try:
        loaded = yaml.safe_load(text) if text else None
    except yaml.YAMLError:
        return None
    raw = loaded.get(VERSION_KEY) if isinstance(loaded, dict) else None
    version = as_version(str(raw)) if raw is not None else None
    if raw is not None and version is None:
        log.warning("%s at %s: version %r is not a PEP 440 version; ignored", path, commit, raw)
    return version


def tag_mismatches(source: str, releases: Sequence[BlueprintRelease]) -> list[str]:
    """Tags of ``source`` that disagree with the releases in the tree (the tree wins).

    A version tag on another commit than its release, or a version tag with no release in
    the tree, is reported; other tags (``nightly``) are nobody's business here.
    """
    by_version = {release.parsed: release for release in releases}
    tags: dict[str, str] = {}
    for line in git("ls-remote", "--tags", "--", git_url(source), what=source).splitlines():
        sha, _, ref = line.partition("\t")
        name = ref.removeprefix("refs/tags/")
        if name.endswith("^{}"):
            tags[name[:-3]] = sha  # the commit an annotated tag points at
        else:
            tags.setdefault(name, sha)
    problems = []
    for name, sha in sorted(tags.items()):
        version = as_version(name)
        if version is None:
            continue
        release = by_version.get(version)
        if release is None:
            problems.append(
                f"tag {name} is not a release in the tree (no blueprint.yaml ever had version "
                f"{version}); ignored"
            )
        elif release.commit != sha:
            problems.append(
                f"tag {name} points at {sha[:12]}, but release {release.version} is "
                f"{release.commit[:12]} (where blueprint.yaml's version became it); the tree wins"
            )
    return problems


@contextmanager
def release_mirror(
    source: str, releases: Sequence[BlueprintRelease], *, what: str
) -> Iterator[Path]:
    """A temporary clone of ``source`` (no files checked out) whose only tags are ``releases``.

    Copier describes a checkout with ``git describe --tags``: with the release tags alone,
    a release renders as its version and any later commit as ``<version>-<n>-g<sha>``, the
    same as in a clone whose tags agree with the tree.
    """
    scratch = Path(tempfile.mkdtemp(prefix="trellis-releases-"))
    try:
        mirror = scratch / "source"  # not bare: Copier takes only a work tree's root for git
        local = Path(source).is_dir()
        url = source if local else git_url(source)
        shared = ["--shared"] if local else []  # borrow the checkout's objects: no copy
        git(
            "clone", "--quiet", "--no-checkout", "--no-tags", *shared, "--", url, str(mirror),
            what=what,
        )  # fmt: skip
        for release in releases:
            git("update-ref", f"refs/tags/{release.version}", release.commit, cwd=mirror, what=what)
        yield mirror
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def redirect_env(source: str, mirror: Path) -> dict[str, str]:
    """Environment that makes git fetch ``mirror`` whenever it is asked for ``source``.

    Git's ``url.<base>.insteadOf`` rewrites every spelling of the source that Copier may pass
    to git (the path as written, a ``gh:`` shorthand expanded, with or without ``.git``).
    Entries already in ``GIT_CONFIG_COUNT`` are kept.
    """
    spellings = {source, git_url(source), Path(source).as_posix()}
    spellings |= {f"{s}.git" for s in list(spellings) if s.startswith("https://")}
    start = _config_count(os.environ)
    env = {"GIT_CONFIG_COUNT": str(start + len(spellings))}
    for index, spelling in enumerate(sorted(spellings), start=start):
        env[f"GIT_CONFIG_KEY_{index}"] = f"url.{mirror.as_posix()}.insteadOf"
        env[f"GIT_CONFIG_VALUE_{index}"] = spelling
    return env


def _config_count(environ: Mapping[str, str]) -> int:
    try:
        return max(0, int(environ.get("GIT_CONFIG_COUNT", "0")))
    except ValueError:
        return 0
