"""Generated repositories: which blueprint and version they use, and updating a checkout.

A repository is read from a local checkout or from the http(s) base URL of its raw files
(``https://raw.githubusercontent.com/acme/fraud-detector/main``): its ``.copier-answers.yml``
says which blueprint, version and source; its ``catalog-info.yaml`` which entity it is.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trellis import annotations as ann
from trellis.entity_refs import ref_of
from trellis.errors import ConfigError, SourceUnavailable
from trellis.model import BlueprintInstance
from trellis.redact import scrub_url
from trellis.sources.bad_files import schema_problems, yaml_problem
from trellis.sources.cookiecutter_context import CRUFT_FILE, parse_cruft
from trellis.sources.git import git
from trellis.sources.http_read import ReadLimits, read_bounded

__all__ = [
    "ANSWERS_FILE",
    "CATALOG_FILE",
    "CONFLICT_MARKER",
    "Repositories",
    "conflicted_files",
    "is_dirty",
    "read_answers",
    "read_instance",
    "run_update",
]

ANSWERS_FILE = ".copier-answers.yml"
CATALOG_FILE = "catalog-info.yaml"
#: What Copier writes where it could not merge a local edit with a blueprint change.
CONFLICT_MARKER = "<<<<<<< before updating"
_ENV_LOCK = threading.Lock()
#: The annotations that name a repository on its Git host, read from its catalog entity.
_SLUG_ANNOTATIONS = (ann.GITHUB_PROJECT_SLUG, ann.GITLAB_PROJECT_SLUG)


def read_instance(
    location: str,
    *,
    client: httpx.Client | None = None,
    entity: bool = True,
    limits: ReadLimits | None = None,
) -> BlueprintInstance:
    """The blueprint, version and source a generated repository records, and its entity.

    ``location`` is a local directory or an http(s) base URL. A repository without
    ``catalog-info.yaml`` has no entity reference; one without ``.copier-answers.yml`` (or
    without a ``blueprint`` answer) was not generated from a blueprint and is refused.
    ``entity=False`` skips ``catalog-info.yaml`` (an update must not depend on it). Over
    HTTP each file is read within ``limits`` (size, deadline, same-host redirects only).
    """
    reader = _Reader(client, limits or ReadLimits())
    text = reader.read(location, ANSWERS_FILE, required=False)
    if text is None and (record := reader.read(location, CRUFT_FILE, required=False)):
        return _cruft_instance(location, record, reader, entity=entity)
    answers = _answers(location, text if text is not None else reader.read(location, ANSWERS_FILE))
    blueprint, version = answers.get("blueprint"), answers.get("_commit")
    if not blueprint or not version:
        raise ConfigError(
            f"{location}: {ANSWERS_FILE} has no `blueprint` or `_commit`; it was not "
            "generated from a Trellis blueprint"
        )
    catalog = reader.read(location, CATALOG_FILE, required=False) if entity else None
    return BlueprintInstance(
        location=scrub_url(location),  # a label from here on: shown, logged, keyed by
        blueprint=str(blueprint),
        version=str(version),
        source=str(answers.get("_src_path", "")),
        **_entity_facts(location, catalog),
    )


def read_answers(repo: Path) -> dict[str, Any]:
    """The answers file of a local checkout, as a mapping (Copier's own keys checked)."""
    return _answers(str(repo), _Reader(None, ReadLimits()).read(str(repo), ANSWERS_FILE))


def is_dirty(repo: Path) -> bool:
    """Whether the checkout has uncommitted changes or untracked files (Copier refuses those)."""
    return bool(git("status", "--porcelain", "--untracked-files=normal", cwd=repo).strip())


def conflicted_files(repo: Path) -> list[str]:
    """Files an update could not merge: unmerged in git's index, or holding Copier's markers.

    Copier exits normally on a conflict; its markers (and, for tracked files, the unmerged
    index entries) are the only sign, so both are looked for.
    """
    unmerged = git("diff", "--name-only", "--relative", "--diff-filter=U", cwd=repo).split("\n")
    marked = git(
        "grep", "-l", "-I", "--untracked", "-e", f"^{CONFLICT_MARKER}", cwd=repo, ok_codes=(0, 1)
    ).split("\n")
    return sorted({name for name in [*unmerged, *marked] if name})


def run_update(
    repo: Path, *, to: str | None = None, git_env: Mapping[str, str] | None = None
) -> list[str]:
    """``copier update`` of a clean checkout to version ``to`` (default: the newest).

    Answers are kept as recorded; Copier's unsafe features never run. ``git_env`` is added
    to the environment of Copier's git commands (``BlueprintSource.updating`` sends its
    clones of the source to a copy tagged with the releases). Returns the files left in
    conflict, which the caller must report: Copier itself does not fail on them.
    """
    from copier import run_update as copier_update  # importing Copier costs 0.3 s
    from copier.errors import CopierError, DirtyLocalWarning, ShallowCloneWarning
    from plumbum import local  # Copier runs git through plumbum

    try:
        # plumbum's environment is the process's: one update at a time may change it.
        with _ENV_LOCK, local.env(**(git_env or {})), warnings.catch_warnings():
            warnings.simplefilter("ignore", DirtyLocalWarning)
            warnings.simplefilter("ignore", ShallowCloneWarning)  # warned with the releases
            copier_update(
                repo,
                defaults=True,
                overwrite=True,
                unsafe=False,
                quiet=True,
                vcs_ref=to,
                conflict="inline",
            )
    except CopierError as exc:
        raise ConfigError(f"{repo}: copier update refused: {exc}") from exc
    except (OSError, RuntimeError) as exc:  # git failures surface as process errors
        raise SourceUnavailable(str(repo), f"copier update failed: {exc}") from exc
    return conflicted_files(repo)


class Repositories:
    """The ``GeneratedRepositories`` port: these functions, with one HTTP client and limits.

    The client (None: one per read) and the limits apply to repositories read over HTTP.
    """

    def __init__(self, client: httpx.Client | None = None, limits: ReadLimits | None = None):
        self._client = client
        self._limits = limits

    def read_instance(self, location: str, *, entity: bool = True) -> BlueprintInstance:
        """See ``read_instance``."""
        return read_instance(location, client=self._client, entity=entity, limits=self._limits)

    def read_answers(self, repo: Path) -> dict[str, Any]:
        """See ``read_answers``."""
        return read_answers(repo)

    def read_text(self, location: str, name: str) -> str:
        """One file of a checkout or of a raw-file base URL, read within the limits."""
        text = _Reader(self._client, self._limits or ReadLimits()).read(location, name)
        return text or ""

    def is_checkout(self, repo: Path) -> bool:
        """Whether ``repo`` is inside a git working tree."""
        try:
            git("rev-parse", "--show-toplevel", cwd=repo)
        except SourceUnavailable:
            return False
        return True

    def is_dirty(self, repo: Path) -> bool:
        """See ``is_dirty``."""
        return is_dirty(repo)

    def conflicted_files(self, repo: Path) -> list[str]:
        """See ``conflicted_files``."""
        return conflicted_files(repo)

    def run_update(
        self, repo: Path, *, to: str | None = None, git_env: Mapping[str, str] | None = None
    ) -> list[str]:
        """See ``run_update``."""
        return run_update(repo, to=to, git_env=git_env)

    def close(self) -> None:
        """Close the HTTP client's connections, when there is one."""
        if self._client is not None:
            self._client.close()


def _cruft_instance(
    location: str, text: str, reader: _Reader, *, entity: bool
) -> BlueprintInstance:
    """A repository recorded by cruft's ``.cruft.json``, as a blueprint instance.

    Its template URL stands for the blueprint (the scaffolder knows which registered template
    that is); its version is the recorded checkout, else the commit.
    """
    record = parse_cruft(text, where=f"{scrub_url(location)}/{CRUFT_FILE}")
    catalog = reader.read(location, CATALOG_FILE, required=False) if entity else None
    return BlueprintInstance(
        location=scrub_url(location),
        blueprint=record.template,
        version=record.checkout or record.commit,
        source=record.template,
        **_entity_facts(location, catalog),
    )


@dataclass(frozen=True, slots=True)
class _Reader:
    """Reads a repository's files from its checkout or, bounded, from its HTTP base URL."""

    client: httpx.Client | None
    limits: ReadLimits

    def read(self, location: str, name: str, *, required: bool = True) -> str | None:
        if location.startswith(("http://", "https://")):
            return self._fetch(location, name, required=required)
        path = Path(location) / name
        if not Path(location).is_dir():
            raise ConfigError(f"{location}: no such directory")
        if not path.is_file():
            if required:
                raise ConfigError(
                    f"{location}: no {name}; is it a repository generated by Trellis?"
                )
            return None
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start})") from None
        except OSError as exc:
            raise ConfigError(f"{path} cannot be read: {exc.strerror}") from None

    def _fetch(self, location: str, name: str, *, required: bool) -> str | None:
        try:
            base = httpx.URL(location)
        except httpx.InvalidURL as exc:
            raise ConfigError(f"{location}: not a URL ({exc})") from exc
        # The file goes on the path; a query (``?private_token=...``) stays a query.
        url = str(base.copy_with(path=f"{base.path.rstrip('/')}/{name}"))
        client = self.client or httpx.Client(follow_redirects=False)
        try:
            answer = read_bounded(client, url, limits=self.limits, source=scrub_url(location))
        except SourceUnavailable as exc:
            raise SourceUnavailable(exc.source, f"cannot read {name}: {exc.reason}") from exc
        finally:
            if self.client is None:
                client.close()
        if answer.status == httpx.codes.NOT_FOUND:
            if required:
                raise ConfigError(
                    f"{location}: no {name} (HTTP 404); is it a repository generated by Trellis?"
                )
            return None
        if answer.status != httpx.codes.OK:
            raise SourceUnavailable(
                scrub_url(location), f"{answer.url} answered HTTP {answer.status}"
            )
        try:
            return answer.content.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{answer.url} is not UTF-8 text (byte {exc.start})") from None


class _Answers(BaseModel):
    """The keys of an answers file that Trellis and Copier read, with exactly their types."""

    model_config = ConfigDict(strict=True, extra="allow")

    blueprint: str | None = None
    commit: str | None = Field(None, alias="_commit")
    src_path: str | None = Field(None, alias="_src_path")


def _answers(location: str, text: str | None) -> dict[str, Any]:
    """The answers file as a mapping; wrong types are refused, naming the key, not the value."""
    if text is None:
        raise ConfigError(f"{location}: no {ANSWERS_FILE}")
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{location}: {ANSWERS_FILE} is {yaml_problem(exc)}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{location}: {ANSWERS_FILE} must hold a mapping of answers")
    try:
        _Answers.model_validate(loaded)
    except ValidationError as exc:
        problems = "; ".join(schema_problems(exc))
        raise ConfigError(f"{location}: {ANSWERS_FILE} does not fit: {problems}") from None
    return loaded


def _entity_facts(location: str, text: str | None) -> dict[str, Any]:
    """A ``BlueprintInstance``'s ``entity_ref`` and ``project_slugs``, from its catalog file.

    The first entity with a kind and a name is the repository's; its Git host annotations
    say where the repository lives (and where its update requests are opened).
    """
    if text is None:
        return {}
    try:
        documents = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    except yaml.YAMLError as exc:
        raise ConfigError(f"{location}: {CATALOG_FILE} is {yaml_problem(exc)}") from None
    for entity in documents:
        ref = ref_of(entity)
        if ref is None:
            continue
        metadata = entity.get("metadata")
        annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
        slugs = tuple(
            (key, value)
            for key in _SLUG_ANNOTATIONS
            if isinstance(annotations, dict) and isinstance(value := annotations.get(key), str)
        )
        return {"entity_ref": ref, "project_slugs": slugs}
    raise ConfigError(f"{location}: {CATALOG_FILE} holds no entity with a kind and a name")
