"""Generated repositories: which blueprint and version they use, and updating a checkout.

A repository is read from a local checkout or from the http(s) base URL of its raw files
(``https://raw.githubusercontent.com/acme/fraud-detector/main``): its ``.copier-answers.yml``
says which blueprint, version and source; its ``catalog-info.yaml`` which entity it is.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

from trellis.entity_refs import ref_of
from trellis.errors import ConfigError, SourceUnavailable
from trellis.model import BlueprintInstance
from trellis.sources.git import git

__all__ = [
    "ANSWERS_FILE",
    "CATALOG_FILE",
    "CONFLICT_MARKER",
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
HTTP_TIMEOUT_SECONDS = 10.0
_ENV_LOCK = threading.Lock()
MAX_FILE_BYTES = 1_000_000


def read_instance(
    location: str, *, client: httpx.Client | None = None, entity: bool = True
) -> BlueprintInstance:
    """The blueprint, version and source a generated repository records, and its entity.

    ``location`` is a local directory or an http(s) base URL. A repository without
    ``catalog-info.yaml`` has no entity reference; one without ``.copier-answers.yml`` (or
    without a ``blueprint`` answer) was not generated from a blueprint and is refused.
    ``entity=False`` skips ``catalog-info.yaml`` (an update must not depend on it).
    """
    answers = _mapping(location, ANSWERS_FILE, _read(location, ANSWERS_FILE, client))
    blueprint, version = answers.get("blueprint"), answers.get("_commit")
    if not blueprint or not version:
        raise ConfigError(
            f"{location}: {ANSWERS_FILE} has no `blueprint` or `_commit`; it was not "
            "generated from a Trellis blueprint"
        )
    catalog = _read(location, CATALOG_FILE, client, required=False) if entity else None
    return BlueprintInstance(
        location=location,
        blueprint=str(blueprint),
        version=str(version),
        source=str(answers.get("_src_path", "")),
        entity_ref=_entity_ref(location, catalog) if catalog is not None else None,
    )


def read_answers(repo: Path) -> dict[str, Any]:
    """The answers file of a local checkout, as a mapping."""
    return _mapping(str(repo), ANSWERS_FILE, _read(str(repo), ANSWERS_FILE, None))


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
    from copier.errors import CopierError, DirtyLocalWarning
    from plumbum import local  # Copier runs git through plumbum

    try:
        # plumbum's environment is the process's: one update at a time may change it.
        with _ENV_LOCK, local.env(**(git_env or {})), warnings.catch_warnings():
            warnings.simplefilter("ignore", DirtyLocalWarning)
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


def _read(location: str, name: str, client: httpx.Client | None, *, required: bool = True) -> Any:
    if location.startswith(("http://", "https://")):
        return _fetch(f"{location.rstrip('/')}/{name}", location, name, client, required)
    path = Path(location) / name
    if not Path(location).is_dir():
        raise ConfigError(f"{location}: no such directory")
    if not path.is_file():
        if required:
            raise ConfigError(f"{location}: no {name}; is it a repository generated by Trellis?")
        return None
    return path.read_text(encoding="utf-8")


def _fetch(
    url: str, location: str, name: str, client: httpx.Client | None, required: bool
) -> str | None:
    owned = client is None
    http = client or httpx.Client(timeout=HTTP_TIMEOUT_SECONDS, follow_redirects=True)
    try:
        response = http.get(url)
    except httpx.HTTPError as exc:
        raise SourceUnavailable(location, f"cannot read {name}: {exc}") from exc
    finally:
        if owned:
            http.close()
    if response.status_code == httpx.codes.NOT_FOUND:
        if required:
            raise ConfigError(
                f"{location}: no {name} (404); is it a repository generated by Trellis?"
            )
        return None
    if response.status_code != httpx.codes.OK:
        raise SourceUnavailable(location, f"reading {name} answered HTTP {response.status_code}")
    if len(response.content) > MAX_FILE_BYTES:
        raise ConfigError(f"{location}: {name} is larger than {MAX_FILE_BYTES} bytes")
    return response.text


def _mapping(location: str, name: str, text: str) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{location}: {name} is not valid YAML: {_one_line(exc)}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"{location}: {name} must hold a mapping")
    return loaded


def _entity_ref(location: str, text: str) -> str | None:
    """``kind:namespace/name`` of the first entity in ``catalog-info.yaml``."""
    try:
        documents = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"{location}: {CATALOG_FILE} is not valid YAML: {_one_line(exc)}"
        ) from exc
    for entity in documents:
        ref = ref_of(entity)
        if ref is not None:
            return ref
    raise ConfigError(f"{location}: {CATALOG_FILE} holds no entity with a kind and a name")


def _one_line(exc: yaml.YAMLError) -> str:
    """The YAML error's problem and position, on one line."""
    return " ".join(str(exc).split())
