"""Cookiecutter templates as blueprints: read from git, rendered by cookiecutter itself.

Each render runs cookiecutter's own command line in a subprocess with a deadline: plain
templates through ``python -m cookiecutter``, templates with their own entry point (a
``[project.scripts]`` command whose ``<name>.json`` holds the questions, as
``cookiecutter-data-science`` v2 has ``ccds`` and ``ccds.json``) through that command. A
hanging hook is stopped with its whole process group at the deadline. Hooks and Jinja
extensions of the template's own are code: they run only for a template configured as
trusted, and an untrusted template that has them is refused before anything runs.

Versions are the template's git tags that parse as PEP 440 versions (``v2.2.0``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import tomllib
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from trellis.errors import AnswerError, ConfigError, SourceUnavailable, TimedOut
from trellis.model import Blueprint, CruftRecord, Page, Publish, Question
from trellis.ports import RenderedFile, Rendering
from trellis.redact import scrub_url
from trellis.sources.cookiecutter_context import (
    HOST_QUESTION,
    RENDER_KEYS,
    REPOSITORY_QUESTION,
    choose_nested,
    cruft_json,
    nested_choice,
    questions_from_context,
    unsafe_extensions,
)
from trellis.sources.git import git, git_url

__all__ = ["CookiecutterRender", "CookiecutterSource", "CookiecutterSpec", "TemplateRelease"]

#: How long a clone of a remote template serves before its tags are fetched again.
_REFETCH_SECONDS = 60.0
_HOOK_NAMES = ("pre_prompt", "pre_gen_project", "post_gen_project")
#: What a render inherits of Trellis's environment: where programs are, locale, scratch space.
_PASSED_ENV = frozenset({"PATH", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ"})
#: owner/name (GitLab: group/subgroup/name), no ``.`` or ``..`` segments.
_REPOSITORY_PATTERN = r"^(?![.]+(/|$))[A-Za-z0-9_.-]+(/(?![.]+(/|$))[A-Za-z0-9_.-]+)+$"


@dataclass(frozen=True, slots=True)
class CookiecutterSpec:
    """A cookiecutter template registered as a blueprint (from the settings).

    ``entry_point`` is the command of a template with its own entry point; ``{version}`` in
    it becomes the version rendered (``v2.2.0`` gives ``2.2.0``), so each version can render
    with its own command.
    """

    name: str
    source: str
    ref: str | None = None
    trusted: bool = False
    entry_point: str | None = None
    title: str = ""
    description: str = ""
    owner: str = ""
    tags: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    timeout_seconds: float = 120.0
    repository_url: str | None = None
    form: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    #: Where Backstage publishes a new repository: ``{kind: host}``, e.g. ``{"github": ...}``.
    publish_hosts: Mapping[str, str] = field(default_factory=lambda: {"github": "github.com"})


@dataclass(frozen=True, slots=True)
class TemplateRelease:
    """One version of a template: its tag and commit."""

    version: str
    commit: str

    @property
    def parsed(self) -> Version:
        """The version, for ordering."""
        return Version(self.version)


@dataclass(frozen=True, slots=True)
class CookiecutterRender:
    """One render on disk and the ``.cruft.json`` record that goes with it."""

    path: Path
    record: CruftRecord


class CookiecutterSource:
    """One registered cookiecutter template: questions, versions, renders and records."""

    def __init__(self, spec: CookiecutterSpec, *, max_bytes: int = 20_000_000) -> None:
        self.spec = spec
        self.max_bytes = max_bytes
        self.template_url = scrub_url(spec.repository_url or _canonical(spec.source))
        self._bare: Path | None = None  # the clone of a remote template, removed with self
        self._fetched = 0.0
        self._lock = threading.Lock()  # one clone or fetch at a time (API threads)

    def __getstate__(self) -> dict[str, Any]:
        """Picklable for a render worker: the scratch clone stays with this process."""
        return {"spec": self.spec, "max_bytes": self.max_bytes, "template_url": self.template_url}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.spec = state["spec"]
        self.max_bytes = state["max_bytes"]
        self.template_url = state["template_url"]
        self._bare = None
        self._fetched = 0.0
        self._lock = threading.Lock()

    # --- versions ---------------------------------------------------------------------

    @contextmanager
    def _repository(self) -> Iterator[Path]:
        """A local git repository with the template's history (the source, or one clone)."""
        local = Path(self.spec.source)
        if local.is_dir() and (local / ".git").exists():
            yield local
            return
        with self._lock:
            self._refresh()
        assert self._bare is not None  # noqa: S101  # _refresh made it
        yield self._bare

    def _refresh(self) -> None:
        """Clone the remote template once; fetch its tags again once the clone is old."""
        if self._bare is None:
            scratch = Path(tempfile.mkdtemp(prefix="trellis-cookiecutter-"))
            weakref.finalize(self, shutil.rmtree, scratch, ignore_errors=True)
            git(
                "clone", "--quiet", "--bare", "--", git_url(self.spec.source),
                str(scratch / "repo"), what=self.spec.source,
            )  # fmt: skip
            self._bare = scratch / "repo"
            self._fetched = time.monotonic()
        elif time.monotonic() - self._fetched > _REFETCH_SECONDS:
            # A long-running server sees the template's new version tags.
            git(
                "fetch", "--quiet", "--prune", "origin", "+refs/heads/*:refs/heads/*",
                "+refs/tags/*:refs/tags/*", cwd=self._bare,
                what=self.spec.source,
            )  # fmt: skip
            self._fetched = time.monotonic()

    def releases(self) -> list[TemplateRelease]:
        """The version tags of the template, oldest first."""
        with self._repository() as repo:
            listing = git(
                "for-each-ref", "--format=%(refname:short) %(objectname) %(*objectname)",
                "refs/tags", cwd=repo, what=self.spec.source,
            )  # fmt: skip
        found: list[TemplateRelease] = []
        for line in listing.splitlines():
            name, commit, *peeled = line.split()
            try:
                Version(name)
            except InvalidVersion:
                continue
            found.append(TemplateRelease(name, peeled[0] if peeled else commit))
        return sorted(found, key=lambda r: r.parsed)

    def versions(self) -> list[str]:
        """The final versions an update can move to, oldest first."""
        return [r.version for r in self.releases() if not r.parsed.is_prerelease]

    def default_ref(self) -> str:
        """The configured ref, or the newest version, or HEAD for a template without tags."""
        if self.spec.ref:
            return self.spec.ref
        versions = self.versions()
        return versions[-1] if versions else "HEAD"

    def commit(self, ref: str) -> str:
        """The commit ``ref`` names; ``SourceUnavailable`` when it names none."""
        with self._repository() as repo:
            return git(
                "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=repo,
                what=self.spec.source,
            ).strip()  # fmt: skip

    def version_of(self, commit: str) -> str | None:
        """The version whose tag points at ``commit``."""
        for release in self.releases():
            if commit and release.commit.startswith(commit.lower()):
                return release.version
        return None

    @contextmanager
    def checkout(self, ref: str | None = None) -> Iterator[tuple[Path, str]]:
        """The template's files at ``ref`` in a scratch folder, and the commit they are."""
        ref = ref or self.default_ref()
        with self._repository() as repo, tempfile.TemporaryDirectory(prefix="trellis-cc-") as tmp:
            commit = self.commit(ref)
            archive = subprocess.run(  # noqa: S603 - fixed git arguments, no shell
                [shutil.which("git") or "git", "archive", "--format=tar", commit],
                cwd=repo,
                capture_output=True,
                check=False,
                timeout=60,
            )
            if archive.returncode != 0:
                raise SourceUnavailable(self.spec.source, f"cannot read {ref}")
            folder = Path(tmp) / "template"
            with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
                tar.extractall(folder, filter="tar")
            yield folder, commit

    # --- questions ----------------------------------------------------------------------

    def blueprint(self, ref: str | None = None) -> Blueprint:
        """The template as a blueprint: its questions at ``ref`` and its presentation.

        Trellis adds the questions Backstage's publish step needs (the repository's
        owner/name, and the Git host when several are configured); they never reach the
        template.
        """
        with self.checkout(ref) as (folder, _):
            context = _context(folder, self._entry_name(folder))
            help_texts = _help_texts(folder, self._entry_name(folder))
        spec = self.spec
        questions = list(questions_from_context(context, help_texts))
        form = {k: dict(v) for k, v in spec.form.items()}
        for question in questions:
            if question.type == "json":  # a dict variable: an object in the form
                form.setdefault(question.name, {}).setdefault("type", "object")
        added = self._publish_questions(context)
        publish = None
        if REPOSITORY_QUESTION in added:
            selector = HOST_QUESTION if HOST_QUESTION in added else None
            publish = Publish(REPOSITORY_QUESTION, selector, dict(spec.publish_hosts))
            form.setdefault(REPOSITORY_QUESTION, {}).setdefault("pattern", _REPOSITORY_PATTERN)
        questions += added.values()
        title = spec.title or spec.name
        required = tuple(dict.fromkeys([*spec.required, *added]))
        return Blueprint(
            name=spec.name,
            title=title,
            description=spec.description,
            owner=spec.owner,
            type="service",
            tags=spec.tags,
            questions=tuple(questions),
            pages=(Page(title=title, questions=tuple(q.name for q in questions)),),
            required=required,
            form=form,
            publish=publish,
        )

    def _publish_questions(self, context: Mapping[str, Any]) -> dict[str, Question]:
        """The questions Trellis adds for publishing, by name (none the template has)."""
        added: dict[str, Question] = {}
        if not self.spec.publish_hosts or REPOSITORY_QUESTION in context:
            return added
        added[REPOSITORY_QUESTION] = Question(
            REPOSITORY_QUESTION, "str", "Repository path on the Git host, owner/name", None
        )
        if len(self.spec.publish_hosts) > 1 and HOST_QUESTION not in context:
            kinds = list(self.spec.publish_hosts)
            added[HOST_QUESTION] = Question(
                HOST_QUESTION, "str", "Git host", kinds[0], choices={k: k for k in kinds}
            )
        return added

    def _entry_name(self, folder: Path) -> str | None:
        """The entry point the template declares: a script whose ``<name>.json`` exists."""
        pyproject = folder / "pyproject.toml"
        if not pyproject.is_file():
            return None
        try:
            scripts = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            return None
        for name in (scripts.get("project") or {}).get("scripts") or {}:
            if (folder / f"{name}.json").is_file():
                return str(name)
        return None

    # --- rendering ----------------------------------------------------------------------

    def render(
        self, destination: Path, answers: Mapping[str, Any], *, ref: str | None = None
    ) -> CookiecutterRender:
        """Render at ``ref`` with ``answers`` into ``destination`` (created; must be empty).

        The template's own defaults answer what ``answers`` leaves out. Returns the record
        cruft would write; the caller decides whether to write it.
        """
        ref = ref or self.default_ref()
        with self.checkout(ref) as (folder, commit):
            entry = self._entry_name(folder)
            context_file = folder / f"{entry or 'cookiecutter'}.json"
            context = _context(folder, entry)
            self._refuse_untrusted(folder, context)
            added = self._publish_questions(context)
            answers = {k: v for k, v in answers.items() if k not in added}
            known = {k for k in context if not k.startswith("_")}
            unknown = sorted(set(answers) - known)
            if unknown:
                raise AnswerError(
                    [(name, f"not a question of {self.spec.name} at {ref}") for name in unknown]
                )
            given: dict[str, Any] = {}
            rewritten = OrderedDict(context)
            for name, value in answers.items():
                if nested_choice(context[name]):
                    rewritten[name] = choose_nested(context[name], value, name)
                else:
                    given[name] = value
            context_file.write_text(json.dumps(rewritten, indent=2), encoding="utf-8")
            command = self._command(entry, ref)
            with tempfile.TemporaryDirectory(prefix="trellis-cc-run-") as run:
                output = self._run(command, folder, Path(run), given)
                _move_contents(output, destination)
                replay = _replay(Path(run) / "replay")
        recorded = {k: v for k, v in replay.items() if k not in RENDER_KEYS}
        recorded["_template"] = self.template_url
        recorded["_commit"] = commit
        record = CruftRecord(
            template=self.template_url,
            commit=commit,
            context=recorded,
            checkout=ref if ref != "HEAD" else None,
        )
        return CookiecutterRender(destination, record)

    def render_repository(
        self, destination: Path, answers: Mapping[str, Any], *, ref: str | None = None
    ) -> CookiecutterRender:
        """A new repository: the render plus its ``.cruft.json``, as ``cruft create`` makes it."""
        rendered = self.render(destination, answers, ref=ref)
        (destination / ".cruft.json").write_text(cruft_json(rendered.record), encoding="utf-8")
        return rendered

    @property
    def name(self) -> str:
        """The blueprint name the template is registered under."""
        return self.spec.name

    def render_tree(
        self, answers: Mapping[str, Any], *, ref: str
    ) -> tuple[dict[str, RenderedFile], CruftRecord]:
        """The files rendered at ``ref`` for ``answers``, held in memory, and the record."""
        with tempfile.TemporaryDirectory(prefix="trellis-render-") as scratch:
            rendered = self.render(Path(scratch) / "repo", answers, ref=ref)
            return _files(rendered.path, self.max_bytes, self.spec.name), rendered.record

    def render_files(self, answers: Mapping[str, Any], *, ref: str | None = None) -> Rendering:
        """A new repository's files, held in memory; bounded by ``max_bytes``."""
        with tempfile.TemporaryDirectory(prefix="trellis-render-") as scratch:
            rendered = self.render_repository(Path(scratch) / "repo", answers, ref=ref)
            files = _files(rendered.path, self.max_bytes, self.spec.name)
        version = self.version_of(rendered.record.commit) or rendered.record.commit
        return Rendering(blueprint=self.spec.name, version=version, files=tuple(files.values()))

    def _refuse_untrusted(self, folder: Path, context: Mapping[str, Any]) -> None:
        """``ConfigError`` for an untrusted template that would run code of its own."""
        if self.spec.trusted:
            return
        hooks = sorted(
            p.relative_to(folder).as_posix()
            for p in (folder / "hooks").glob("*")
            if p.is_file() and p.stem in _HOOK_NAMES
        )
        extensions = unsafe_extensions(context)
        if hooks or extensions:
            code = ", ".join([*hooks, *(f"_extensions: {e}" for e in extensions)])
            raise ConfigError(
                f"cookiecutter template {self.spec.name} runs code of its own ({code}) and is not "
                f"trusted; review it, then set `trusted: true` for {self.spec.name} in "
                "TRELLIS_BLUEPRINTS__COOKIECUTTER to render it"
            )

    def _command(self, entry: str | None, ref: str) -> list[str]:
        if entry is None:
            return [sys.executable, "-m", "cookiecutter"]
        if not self.spec.entry_point:
            raise ConfigError(
                f"cookiecutter template {self.spec.name} is rendered by its own command "
                f"`{entry}`; set `entry_point` for {self.spec.name} in "
                "TRELLIS_BLUEPRINTS__COOKIECUTTER (e.g. the path of an installed `{entry}`)"
            )
        version = ref.removeprefix("v")
        return [self.spec.entry_point.replace("{version}", version)]

    def _run(
        self, command: list[str], template: Path, run: Path, answers: Mapping[str, Any]
    ) -> Path:
        """Run cookiecutter's command line; the single folder it generated."""
        config = run / "config.json"  # JSON is YAML: cookiecutter reads it as its config
        config.write_text(
            json.dumps(
                {
                    "cookiecutters_dir": str(run / "cookiecutters"),
                    "replay_dir": str(run / "replay"),
                    "default_context": dict(answers),
                }
            ),
            encoding="utf-8",
        )
        output = run / "output"
        output.mkdir()
        arguments = [
            *command, str(template), "--no-input", "--output-dir", str(output),
            "--config-file", str(config), "--accept-hooks", "yes" if self.spec.trusted else "no",
        ]  # fmt: skip
        # The render sees none of Trellis's settings (tokens, database URLs): hooks are the
        # template's code, trusted to render, not to read the platform's secrets.
        env = {k: v for k, v in os.environ.items() if k in _PASSED_ENV}
        env |= {"HOME": str(run), "GIT_TERMINAL_PROMPT": "0", "PYTHONDONTWRITEBYTECODE": "1"}
        try:
            process = subprocess.Popen(  # noqa: S603 - the configured command, no shell
                arguments,
                cwd=run,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its hooks' children are stopped with it
            )
        except OSError as exc:
            raise ConfigError(f"cannot run {command[0]} for {self.spec.name}: {exc}") from exc
        try:
            out, _ = process.communicate(timeout=self.spec.timeout_seconds)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # its hooks and what they started
            process.communicate()
            raise TimedOut(
                f"rendering {self.spec.name} took longer than {self.spec.timeout_seconds:g} s "
                "(a hook that waits for input or hangs); it was stopped"
            ) from None
        text = out.decode(errors="replace").strip()
        if process.returncode != 0:
            raise SourceUnavailable(
                f"cookiecutter template {self.spec.name}",
                text[-600:] or f"exit {process.returncode}",
            )
        made = list(output.iterdir())
        if len(made) != 1 or not made[0].is_dir():
            raise SourceUnavailable(
                f"cookiecutter template {self.spec.name}", "did not generate one project folder"
            )
        return made[0]


def _files(root: Path, max_bytes: int, name: str) -> dict[str, RenderedFile]:
    """Every file under ``root`` by path (symbolic links left out), at most ``max_bytes``."""
    files: dict[str, RenderedFile] = {}
    total = 0
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        content = path.read_bytes()
        total += len(content)
        if total > max_bytes:
            raise ConfigError(f"{name} renders more than {max_bytes} bytes")
        relative = path.relative_to(root).as_posix()
        files[relative] = RenderedFile(
            path=relative, content=content, executable=bool(path.stat().st_mode & 0o111)
        )
    return files


def _canonical(source: str) -> str:
    """How a source is recorded: an absolute path for a local one, else the URL."""
    path = Path(source)
    return str(path.resolve()) if path.exists() else source


def _context(folder: Path, entry: str | None) -> dict[str, Any]:
    path = folder / f"{entry or 'cookiecutter'}.json"
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=OrderedDict)
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read the template's {path.name}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"the template's {path.name} must hold a JSON object")
    return loaded


def _help_texts(folder: Path, entry: str | None) -> dict[str, str]:
    """Help the template ships beside its questions (``ccds-help.json``), by question."""
    path = folder / f"{entry or 'cookiecutter'}-help.json"
    if not path.is_file():
        return {}
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    texts: dict[str, str] = {}
    for item in loaded if isinstance(loaded, list) else []:
        if isinstance(item, dict) and isinstance(item.get("help"), dict):
            texts[str(item.get("field"))] = str(item["help"].get("description", ""))
    return texts


def _replay(folder: Path) -> dict[str, Any]:
    """The context cookiecutter rendered with, from the replay file it wrote."""
    files = sorted(folder.glob("*.json"))
    if not files:
        return {}
    loaded = json.loads(files[0].read_text(encoding="utf-8"), object_pairs_hook=OrderedDict)
    context = loaded.get("cookiecutter", {})
    return dict(context) if isinstance(context, dict) else {}


def _move_contents(source: Path, destination: Path) -> None:
    """Move a render's files into ``destination`` (made when missing; must be empty)."""
    destination.mkdir(parents=True, exist_ok=True)
    if any(destination.iterdir()):
        raise ConfigError(f"{destination} exists and is not empty")
    for item in source.iterdir():
        shutil.move(str(item), str(destination / item.name))
