"""Blueprints: Copier templates in one git repository, one folder each under ``blueprints/``.

The repository's root ``copier.yml`` picks the folder from the ``blueprint`` answer and
includes each blueprint's questions, so ``copier copy`` and ``copier update`` work from the
repository itself. Versions are the releases recorded in the tree (``trellis.sources.releases``);
git tags are optional mirrors of them. Rendering never runs Copier's unsafe features (tasks,
migrations, Jinja extensions).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from trellis.errors import AnswerError, ConfigError, SourceUnavailable
from trellis.model import Blueprint, Page, Publish, Question
from trellis.ports import RenderedFile, Rendering
from trellis.redact import scrub_url
from trellis.sources.git import git, git_url
from trellis.sources.releases import (
    BlueprintRelease,
    as_version,
    find_releases,
    metadata_path,
    redirect_env,
    release_mirror,
    tag_mismatches,
)
from trellis.yaml_text import dump

__all__ = [
    "BlueprintRelease",
    "BlueprintSource",
    "find_checkout",
]

ANSWERS_FILE = ".copier-answers.yml"
_BLUEPRINT_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")

# `when` conditions Trellis can show as form conditionals: `name`, `not name`, `name == 'v'`.
_GUARD = re.compile(r"""^blueprint\s*==\s*['"][^'"]+['"]$""")
_TRUTHY = re.compile(r"^(?P<not>not\s+)?(?P<name>[a-z_][a-z0-9_]*)$")
_EQUALS = re.compile(r"""^(?P<name>[a-z_][a-z0-9_]*)\s*==\s*(['"])(?P<value>[^'"]*)\2$""")


def find_checkout() -> Path | None:
    """The Trellis source checkout this package runs from, when it has the blueprints."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / "copier.yml").is_file() and (root / "blueprints").is_dir() else None


class BlueprintSource:
    """The blueprints of one Copier source (a local checkout or a git URL).

    ``repository_url`` is what generated repos record as their Copier source
    (``_src_path``): the blueprint repository's canonical git URL, so that ``copier update``
    in a generated repo finds the blueprints wherever Trellis itself read them from.
    """

    def __init__(
        self,
        source: str,
        *,
        local_root: Path | None = None,
        repository_url: str | None = None,
        max_bytes: int = 20_000_000,
    ) -> None:
        self.source = source
        # Recorded in every generated repository: never with the credentials it was read with.
        self.repository_url = scrub_url(repository_url or source)
        self.max_bytes = max_bytes
        self._root = local_root

    @property
    def root(self) -> Path:
        """The local checkout holding the blueprint definitions."""
        if self._root is None:
            raise ConfigError(
                f"blueprint definitions are read from a local checkout; {self.source} is remote"
            )
        return self._root

    def names(self) -> list[str]:
        """Every blueprint that has a template folder."""
        return sorted(
            p.name for p in (self.root / "blueprints").iterdir() if (p / "template").is_dir()
        )

    def blueprint(self, name: str, *, ref: str | None = None) -> Blueprint:
        """A blueprint's questions (``copier.yml``) and presentation (``blueprint.yaml``).

        They are read from the local checkout whatever ``ref`` says: Copier itself judges a
        render's answers against the questions of the release it renders.
        """
        self._known(name)
        folder = self.root / "blueprints" / name
        meta = _load_mapping(folder / "blueprint.yaml")
        questions = self.questions(name)
        pages = tuple(
            Page(title=str(page["title"]), questions=tuple(page.get("questions", ())))
            for page in meta.get("pages", ())
        ) or (Page(title=str(meta.get("title", name)), questions=tuple(q.name for q in questions)),)
        return Blueprint(
            name=name,
            title=str(meta.get("title", name)),
            description=" ".join(str(meta.get("description", "")).split()),
            owner=str(meta.get("owner", "")),
            type=str(meta.get("type", "service")),
            tags=tuple(str(tag) for tag in meta.get("tags", ())),
            questions=tuple(questions),
            pages=pages,
            required=tuple(str(q) for q in meta.get("required", ())),
            form={str(k): dict(v) for k, v in (meta.get("form") or {}).items()},
            publish=_publish(name, meta.get("publish")),
        )

    def questions(self, blueprint: str) -> list[Question]:
        """The blueprint's own questions, in the order Copier asks them."""
        self._known(blueprint)
        raw = _load_mapping(self.root / "blueprints" / blueprint / "copier.yml")
        return [
            Question(
                name=name,
                type=str(spec.get("type", "str")),
                help=str(spec.get("help", "")),
                default=spec.get("default"),
                choices=_choices(spec.get("choices")),
                condition=_condition(name, spec.get("when")),
                secret=bool(spec.get("secret", False)),
            )
            for name, spec in raw.items()
            # `when: false` marks a computed value, never asked and never answered.
            if not name.startswith("_")
            and isinstance(spec, Mapping)
            and spec.get("when") is not False
        ]

    def render(
        self,
        blueprint: str,
        destination: Path,
        answers: Mapping[str, Any],
        *,
        defaults: bool,
        vcs_ref: str | None = None,
    ) -> Path:
        """Render ``blueprint`` into ``destination`` with Copier (no tasks, no migrations).

        ``vcs_ref`` is a release (default: the newest) or any git ref for a development render
        (``HEAD`` includes uncommitted edits of a local source). Answers are expected to be
        checked already (``trellis.blueprints.check_answers``); Copier's validators, which
        relate answers to each other, still refuse bad ones here.
        """
        self._known(blueprint)
        from copier import run_copy  # importing Copier costs 0.3 s; only when rendering
        from copier.errors import CopierError, DirtyLocalWarning, ShallowCloneWarning
        from plumbum import ProcessExecutionError  # Copier runs git through plumbum

        try:
            with self._copier_view(blueprint, vcs_ref) as (src, ref), warnings.catch_warnings():
                # A local template with uncommitted edits renders them; that is the point.
                warnings.simplefilter("ignore", DirtyLocalWarning)
                # A shallow source is warned about once, when its releases are read.
                warnings.simplefilter("ignore", ShallowCloneWarning)
                run_copy(
                    src,
                    destination,
                    data={"blueprint": blueprint, **answers},
                    defaults=defaults,
                    vcs_ref=ref,
                    unsafe=False,
                    quiet=True,
                    overwrite=False,
                )
        except ValueError as exc:  # Copier's validators and type casts raise ValueError
            answer_error = _answer_error(exc)
            if answer_error is None:
                raise SourceUnavailable("blueprint source", f"{self.source}: {exc}") from exc
            raise answer_error from exc
        except (OSError, subprocess.SubprocessError, CopierError, ProcessExecutionError) as exc:
            raise SourceUnavailable("blueprint source", f"{self.source}: {exc}") from exc
        self._record_canonical_source(destination, src)
        return destination

    def render_files(
        self, blueprint: str, answers: Mapping[str, Any], *, vcs_ref: str | None = None
    ) -> Rendering:
        """Render into a scratch folder and return the files; bounded by ``max_bytes``."""
        scratch = Path(tempfile.mkdtemp(prefix="trellis-render-"))
        try:
            destination = self.render(
                blueprint, scratch / "repo", answers, defaults=True, vcs_ref=vcs_ref
            )
            files: list[RenderedFile] = []
            total = 0
            for path in sorted(destination.rglob("*")):
                if path.is_symlink() or not path.is_file():
                    continue
                content = path.read_bytes()
                total += len(content)
                if total > self.max_bytes:
                    raise ConfigError(
                        f"{blueprint} renders more than {self.max_bytes} bytes "
                        "(TRELLIS_BLUEPRINTS__MAX_RENDER_BYTES)"
                    )
                files.append(
                    RenderedFile(
                        path=path.relative_to(destination).as_posix(),
                        content=content,
                        executable=bool(path.stat().st_mode & 0o111),
                    )
                )
            recorded = _load_mapping(destination / ANSWERS_FILE)
            return Rendering(
                blueprint=blueprint, version=str(recorded.get("_commit", "")), files=tuple(files)
            )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _record_canonical_source(self, destination: Path, rendered_from: str) -> None:
        """Point the answers file at the canonical repository, not where Trellis read it."""
        answers = destination / ANSWERS_FILE
        if self.repository_url == rendered_from or not answers.is_file():
            return
        line = dump({"_src_path": self.repository_url}).strip()
        text = re.sub(r"(?m)^_src_path: .*$", lambda _: line, answers.read_text(encoding="utf-8"))
        answers.write_text(text, encoding="utf-8")

    def releases(self, blueprint: str) -> list[BlueprintRelease]:
        """The releases of ``blueprint`` recorded in the source's tree, oldest first.

        Read from the history of its ``blueprint.yaml`` (``trellis.sources.releases``), so a
        clone without tags knows them as well as a tagged one; tags are not read.
        """
        if not _BLUEPRINT_NAME.match(blueprint):
            raise ConfigError(f"{blueprint!r} is not a blueprint name")
        with self._history() as repo:
            return find_releases(repo, blueprint, what=self.source)

    def versions(self, blueprint: str) -> list[str]:
        """The final releases of ``blueprint`` an update can move to, oldest first."""
        with self._history() as repo:
            return _final(find_releases(repo, blueprint, what=self.source))

    def versions_by_blueprint(self) -> dict[str, list[str]]:
        """Each blueprint's final releases (PEP 440, no pre-releases), oldest first.

        Each blueprint releases on its own, so one's versions never count for another.
        Pre-releases are left out, as Copier leaves them out when it picks the newest version.
        """
        with self._history() as repo:
            return {
                name: _final(find_releases(repo, name, what=self.source))
                for name in _names_at_head(repo, self.source)
            }

    def tag_warnings(self, blueprint: str) -> list[str]:
        """Version tags of the source that disagree with the tree's releases of ``blueprint``."""
        return tag_mismatches(self.source, self.releases(blueprint))

    def changelog(self, blueprint: str, *, ref: str | None = None) -> str:
        """A blueprint's ``CHANGELOG.md`` at ``ref`` (a release or a git ref; default: HEAD).

        An empty text when the blueprint has no changelog (at that version).
        """
        if not _BLUEPRINT_NAME.match(blueprint):
            raise ConfigError(f"{blueprint!r} is not a blueprint name")
        relative = f"blueprints/{blueprint}/CHANGELOG.md"
        if ref is None and _is_local(self.source):
            path = Path(self.source) / relative
            return path.read_text(encoding="utf-8") if path.is_file() else ""
        with self._history() as repo:
            wanted = as_version(ref) if ref is not None else None
            if wanted is None:
                return _read_at(repo, ref or "HEAD", relative, self.source)
            for release in find_releases(repo, blueprint, what=self.source):
                if release.parsed == wanted:
                    return _read_at(repo, release.commit, relative, self.source)
            return ""  # no such release of this blueprint

    @contextmanager
    def _history(self) -> Iterator[Path]:
        """A local repository with the source's history: the checkout, or a scratch clone."""
        if _is_local(self.source):
            yield Path(self.source)
            return
        with tempfile.TemporaryDirectory(prefix="trellis-history-") as scratch:
            url = git_url(self.source)
            git(
                "clone", "--quiet", "--bare", "--no-tags", "--filter=blob:none", "--", url,
                scratch, what=self.source,
            )  # fmt: skip
            yield Path(scratch)

    @contextmanager
    def _copier_view(self, blueprint: str, vcs_ref: str | None) -> Iterator[tuple[str, str | None]]:
        """The Copier source and ref to render ``vcs_ref`` of ``blueprint`` from.

        A release (or no ref: the newest release) is rendered from a scratch clone tagged with
        the tree's releases, so Copier records the version, never a commit hash. Any other ref
        is a development render straight from the source, as Copier does it.
        """
        wanted = as_version(vcs_ref) if vcs_ref is not None else None
        if vcs_ref is not None and wanted is None:
            yield self.source, vcs_ref
            return
        releases = self.releases(blueprint)
        if wanted is None:
            finals = [r for r in releases if not r.parsed.is_prerelease]
            if not finals:
                raise SourceUnavailable(
                    "blueprint source",
                    f"{blueprint} has no release in {self.source}: "
                    f"{metadata_path(blueprint)} has no `version` in its history; add one "
                    "(a PEP 440 version) and commit it, or pass a git ref such as HEAD",
                )
            chosen = finals[-1]
        else:
            match = [r for r in releases if r.parsed == wanted]
            if not match:
                known = ", ".join(r.version for r in reversed(releases[-5:])) or "none"
                raise SourceUnavailable(
                    "blueprint source",
                    f"{vcs_ref} is not a release of {blueprint} in {self.source} "
                    f"(newest releases: {known}); releases come from {metadata_path(blueprint)}",
                )
            chosen = match[0]
        with release_mirror(self.source, releases, what=self.source) as mirror:
            yield str(mirror), chosen.version

    @contextmanager
    def updating(self, blueprint: str) -> Iterator[dict[str, str]]:
        """The git environment in which ``copier update`` finds every release as a tag.

        ``copier update`` clones the source the answers file records; git's ``insteadOf``
        in this environment sends it to the tagged scratch clone instead.
        """
        releases = self.releases(blueprint)
        with release_mirror(self.source, releases, what=self.source) as mirror:
            yield redirect_env(self.source, mirror)

    def _known(self, blueprint: str) -> None:
        names = self.names()
        if blueprint not in names:
            raise AnswerError.one(
                "blueprint", f"unknown blueprint {blueprint!r}; choose from {', '.join(names)}"
            )


def _final(releases: list[BlueprintRelease]) -> list[str]:
    """The versions of the releases that are not pre-releases, oldest first."""
    found = {r.parsed: r.version for r in releases if not r.parsed.is_prerelease}
    return [found[version] for version in sorted(found)]


def _is_local(source: str) -> bool:
    return Path(source).is_dir()


def _names_at_head(repo: Path, what: str) -> list[str]:
    """The blueprint folders of the source's HEAD."""
    listing = git("ls-tree", "-d", "--name-only", "HEAD", "blueprints/", cwd=repo, what=what)
    return sorted(line.removeprefix("blueprints/") for line in listing.split() if line)


def _read_at(root: Path, ref: str, relative: str, what: str) -> str:
    """A file's text at ``ref`` in the repository at ``root``; empty when it is not there."""
    if not git("ls-tree", "--name-only", ref, "--", relative, cwd=root, what=what).strip():
        return ""
    return git("show", f"{ref}:{relative}", cwd=root, what=what)


def _load_mapping(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path} must hold a mapping")
    return loaded


def _publish(blueprint: str, raw: object) -> Publish | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or "repository" not in raw or not raw.get("hosts"):
        raise ConfigError(
            f"{blueprint}/blueprint.yaml: publish needs `repository` (a question) and `hosts`"
        )
    selector = raw.get("selector")
    return Publish(
        repository=str(raw["repository"]),
        selector=str(selector) if selector else None,
        hosts={str(k): str(v) for k, v in raw["hosts"].items()},
    )


def _choices(raw: object) -> dict[str, str]:
    """Copier's choices as ``{value: title}`` (Copier writes them ``{title: value}``)."""
    if isinstance(raw, Mapping):
        return {str(value): str(title) for title, value in raw.items()}
    if isinstance(raw, list):
        return {str(value): str(value) for value in raw}
    return {}


def _condition(question: str, when: object) -> tuple[str, object] | None:
    """The one answer a question depends on, read from its ``when`` expression."""
    if when is None or when is True:
        return None
    text = str(when).strip()
    if text.startswith("{{") and text.endswith("}}"):
        text = text[2:-2]
    terms = [term.strip() for term in text.split(" and ") if not _GUARD.match(term.strip())]
    if not terms:
        return None
    if len(terms) == 1:
        if match := _TRUTHY.match(terms[0]):
            return match["name"], not match["not"]
        if match := _EQUALS.match(terms[0]):
            return match["name"], match["value"]
    raise ConfigError(
        f"question {question}: `when: {when}` is more than one condition on another answer "
        "(`name`, `not name` or `name == 'value'`); Backstage's form could not show it"
    )


_VALIDATION = re.compile(r"Validation error for question '(?P<q>[^']+)': (?P<m>.*)", re.S)
_REQUIRED = re.compile(r'Question "(?P<q>[^"]+)" is required')


def _answer_error(exc: ValueError) -> AnswerError | None:
    """The question Copier refused, or None when the error is not about an answer."""
    text = str(exc).strip()
    for pattern in (_VALIDATION, _REQUIRED):
        match = pattern.search(text)
        if match:
            message = match.groupdict().get("m") or "an answer is required (or pass --defaults)"
            return AnswerError.one(match["q"], " ".join(message.split()))
    return None
