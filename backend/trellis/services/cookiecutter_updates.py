"""Keeping repositories generated from cookiecutter templates current, as cruft does.

An update renders the recorded version and the target version with the same answers (the
context in ``.cruft.json``), then carries the difference into the repository as a three-way
merge (``trellis.blueprints.merge``): local edits are kept, changes made on one side only
are taken, and what cannot be merged is left with conflict markers (or kept as it is) and
listed. ``adopt`` writes the record into a repository that has none, given the version and
the answers it was generated with.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from trellis.blueprints import check_answers
from trellis.blueprints.merge import Action, Step, plan_merge
from trellis.errors import ConfigError
from trellis.model import CruftRecord, Question
from trellis.ports import CookiecutterTemplate, CruftCheckouts, RenderedFile
from trellis.redact import scrub_url
from trellis.services.updates import UpdateResult, UpdateStatus

__all__ = ["Adopted", "Ask", "TemplateFinder", "adopt", "check_update", "update"]

CRUFT_FILE = ".cruft.json"

#: The template a record names: a registered one (trusted, with its entry point) or a plain one.
TemplateFinder = Callable[[str], CookiecutterTemplate]

#: Asks a person for a new question's answer (the default offered); the answer as typed.
Ask = Callable[[Question], object]


@dataclass(frozen=True, slots=True)
class Adopted:
    """What ``adopt`` recorded, and the files that differ from the template's render."""

    location: str
    blueprint: str
    version: str
    differing: tuple[str, ...]


def check_update(
    location: str, *, checkouts: CruftCheckouts, templates: TemplateFinder
) -> UpdateStatus:
    """Where a repository stands against its template's version tags."""
    record = checkouts.read_record(location)
    template = templates(record.template)
    versions = template.versions()
    if not versions:
        raise ConfigError(f"{record.template} has no version tag (such as v1.2.0) to update to")
    current = template.version_of(record.commit)
    note = None
    behind: int | None
    if current is None:
        behind = None
        note = f"{record.commit[:12]} is not the commit of a version tag of the template"
    else:
        behind = sum(1 for v in versions if _order(v) > _order(current))
    return UpdateStatus(
        location=scrub_url(location),
        blueprint=template.name,
        source=record.template,
        current=current or record.commit,
        newest=versions[-1],
        behind=behind,
        releases=(),
        note=note,
    )


def update(
    repo: Path,
    to: str | None = None,
    *,
    data: Mapping[str, Any] | None = None,
    ask: Ask | None = None,
    checkouts: CruftCheckouts,
    templates: TemplateFinder,
) -> UpdateResult:
    """Move a clean checkout to version ``to`` (default: the newest) by re-render and merge.

    ``data`` answers questions the target version adds (or changes recorded answers); a new
    question without one is put to ``ask`` (a person at a terminal), else takes its default.
    Conflicts are returned; the record moves to the target version either way, as
    ``git merge`` leaves its markers for the owners to resolve.
    """
    _require_clean(repo, checkouts)
    record = checkouts.read_record(str(repo))
    if record.directory:
        raise ConfigError(
            f"{repo}/{CRUFT_FILE} renders the template's folder {record.directory!r}; templates "
            "in a folder of their repository are not updated by Trellis (use cruft update)"
        )
    template = templates(record.template)
    versions = template.versions()
    target = to or (versions[-1] if versions else None)
    if target is None or (to is not None and to not in versions):
        known = ", ".join(reversed(versions[-5:])) or "none"
        raise ConfigError(f"{to or 'a version'} is not a version of {record.template} ({known})")
    current = template.version_of(record.commit)
    if current == target:
        return UpdateResult(str(repo), template.name, target, target, (), ())
    if current is not None and _order(target) < _order(current):
        raise ConfigError(f"{repo} is at {current}; {target} would be a downgrade")
    answers = {k: v for k, v in record.context.items() if not k.startswith("_")}
    target_answers = _target_answers(template, target, answers, data or {}, ask)
    base, _ = template.render_tree(answers, ref=current or record.commit)
    theirs, new_record = template.render_tree(target_answers, ref=target)
    ours = checkouts.files(repo)
    skip = frozenset([CRUFT_FILE, *record.skip])
    labels = ("before updating", current or record.commit[:12], "after updating")
    conflicts = _apply(repo, plan_merge(base, theirs, ours, skip=skip), base, ours, labels,
                       checkouts)  # fmt: skip
    checkouts.write_record(repo, _keep_settings(new_record, record))
    return UpdateResult(
        location=str(repo),
        blueprint=template.name,
        from_version=current or record.commit,
        to_version=target,
        conflicts=tuple(conflicts),
        releases=(),
    )


def adopt(
    repo: Path,
    template: CookiecutterTemplate,
    version: str,
    answers: Mapping[str, Any],
    *,
    checkouts: CruftCheckouts,
) -> Adopted:
    """Record in ``.cruft.json`` that ``repo`` was generated from ``template`` at ``version``.

    The template renders ``version`` with ``answers`` (defaults fill the rest), so the record
    holds the whole context as cruft would have. The tracked files whose content differs
    from that render are listed: local edits, which later updates keep, or a sign that the
    answers were not the ones used.
    """
    if not repo.is_dir():
        raise ConfigError(f"{repo}: no such directory")
    if (repo / CRUFT_FILE).exists():
        raise ConfigError(f"{repo} already has {CRUFT_FILE}; use `trellis update`")
    if version not in template.versions():
        raise ConfigError(f"{version} is not a version of {template.template_url}")
    checked = check_answers(template.blueprint(version), answers, require=False)
    rendered, record = template.render_tree(checked, ref=version)
    ours = checkouts.files(repo) if checkouts.is_checkout(repo) else {}
    differing = sorted(
        path for path, file in rendered.items() if path in ours and not _same(ours[path], file)
    )
    checkouts.write_record(repo, record)
    return Adopted(str(repo), template.name, version, tuple(differing))


def _target_answers(
    template: CookiecutterTemplate,
    target: str,
    answers: dict[str, Any],
    data: Mapping[str, Any],
    ask: Ask | None,
) -> dict[str, Any]:
    """The recorded answers the target version still asks, plus new ones, checked against it.

    A question of the target version with no recorded answer and none in ``data`` is new: it
    is put to ``ask`` when there is someone to ask. The questions Trellis adds for publishing
    are not the template's and are never asked here.
    """
    blueprint = template.blueprint(target)
    publishing = {blueprint.publish.repository, blueprint.publish.selector} if blueprint.publish \
        else set()  # fmt: skip
    given = dict(data)
    if ask is not None:
        for question in blueprint.questions:
            if question.name not in {*answers, *given, *publishing}:
                given[question.name] = ask(question)
    asked = {q.name for q in blueprint.questions}
    checked = check_answers(blueprint, given, require=False) if given else {}
    kept = {k: v for k, v in answers.items() if k in asked}
    return {**kept, **checked}


def _apply(
    repo: Path,
    steps: list[Step[RenderedFile]],
    base: Mapping[str, RenderedFile],
    ours: Mapping[str, RenderedFile],
    labels: tuple[str, str, str],
    checkouts: CruftCheckouts,
) -> list[str]:
    """Carry out the plan; the paths left in conflict, each with its reason."""
    conflicts: list[str] = []
    for step in steps:
        if step.action is Action.WRITE and step.target is not None:
            checkouts.write(repo, step.target)
        elif step.action is Action.CHMOD and step.target is not None:
            mine = ours[step.path]
            checkouts.write(repo, RenderedFile(step.path, mine.content, step.target.executable))
        elif step.action is Action.DELETE:
            checkouts.delete(repo, step.path)
        elif step.action is Action.MERGE and step.target is not None:
            mine = ours[step.path]
            old = base.get(step.path)
            merged, conflicted = checkouts.merge(
                mine.content, old.content if old else b"", step.target.content, labels
            )
            executable = step.target.executable if old and old.executable == mine.executable \
                else mine.executable  # fmt: skip
            checkouts.write(repo, RenderedFile(step.path, merged, executable))
            if conflicted:
                conflicts.append(step.path)
        elif step.action is Action.CONFLICT:
            conflicts.append(f"{step.path} ({step.reason})")
    return conflicts


def _keep_settings(new: CruftRecord, old: CruftRecord) -> CruftRecord:
    """The new render's record with the repository's own settings (``skip``, ``directory``)."""
    return CruftRecord(
        template=old.template,
        commit=new.commit,
        context={**new.context, "_template": old.template},
        checkout=new.checkout,
        directory=old.directory,
        skip=old.skip,
    )


def _same(one: RenderedFile, other: RenderedFile) -> bool:
    return one.content == other.content


def _order(version: str) -> Version:
    try:
        return Version(version)
    except InvalidVersion:
        return Version("0")


def _require_clean(repo: Path, checkouts: CruftCheckouts) -> None:
    if not repo.is_dir():
        raise ConfigError(f"{repo}: no such directory")
    if not checkouts.is_checkout(repo):
        raise ConfigError(
            f"{repo} is not the top of a git repository; an update merges into a committed "
            "tree (git init, then commit the generated files)"
        )
    if checkouts.is_dirty(repo):
        raise ConfigError(f"{repo} has uncommitted changes; commit or stash them first")
