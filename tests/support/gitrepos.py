"""Scratch blueprint sources and generated repositories, with real git and real Copier.

A scratch source is this repository's ``copier.yml`` and ``blueprints/`` in a new git
repository with its own releases (``version`` in ``blueprint.yaml``, plus a mirroring tag
unless asked not to), so tests never depend on this checkout's history or tags.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from support.blueprints import REPO, render
from support.timing import scaled

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Trellis Tests",
    "GIT_AUTHOR_EMAIL": "tests@trellis.invalid",
    "GIT_COMMITTER_NAME": "Trellis Tests",
    "GIT_COMMITTER_EMAIL": "tests@trellis.invalid",
}


def template_dir(blueprint: str = "ml-model") -> Path:
    """A blueprint's Copier template folder, relative to the source's root."""
    return Path("blueprints") / blueprint / "template"


def changelog_path(blueprint: str = "ml-model") -> Path:
    """A blueprint's ``CHANGELOG.md``, relative to the source's root."""
    return Path("blueprints") / blueprint / "CHANGELOG.md"


def metadata_path(blueprint: str = "ml-model") -> Path:
    """A blueprint's ``blueprint.yaml`` (its release), relative to the source's root."""
    return Path("blueprints") / blueprint / "blueprint.yaml"


TEMPLATE = template_dir()
CHANGELOG = changelog_path()
METADATA = metadata_path()


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` as the test identity; its output."""
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def commit_all(repo: Path, message: str, *, tag: str | None = None) -> None:
    """Commit everything in ``repo`` (creating the repository first if needed)."""
    if not (repo / ".git").exists():
        git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    if tag:
        git(repo, "tag", tag)


def set_version(src: Path, version: str, blueprint: str = "ml-model") -> None:
    """Set a blueprint's release in its ``blueprint.yaml``."""
    path = src / metadata_path(blueprint)
    text, count = re.subn(r"(?m)^version: .*$", f"version: {version}", path.read_text())
    assert count == 1, f"{path} has {count} version lines"
    path.write_text(text)


def blueprint_source(
    path: Path,
    tag: str = "1.0.0",
    files: Mapping[str, str] | None = None,
    *,
    tags: bool = True,
    blueprint: str = "ml-model",
) -> Path:
    """This checkout's blueprints as a new git repository, ``blueprint`` released as ``tag``.

    ``files`` adds files to that blueprint's template (path under it to text) before the
    release.
    ``tags=False`` releases in the tree only (``blueprint.yaml``), as a clone without tags
    would see it.
    """
    path.mkdir(parents=True)
    shutil.copy(REPO / "copier.yml", path / "copier.yml")
    shutil.copytree(REPO / "blueprints", path / "blueprints")
    for relative, text in (files or {}).items():
        (path / template_dir(blueprint) / relative).write_text(text)
    set_version(path, tag, blueprint)
    commit_all(path, f"blueprints {tag}", tag=tag if tags else None)
    return path


SLOW_PROJECT = "Slow Render"
"""The project name for which :func:`slow_blueprint_source` renders for about a minute."""

_SLOW_TEMPLATE = (
    '{% if project_name == "' + SLOW_PROJECT + '" %}'
    "{% for a in range(800) %}{% for b in range(800) %}{% for c in range(800) %}"
    "{% endfor %}{% endfor %}{% endfor %}{% endif %}"
)


def slow_blueprint_source(path: Path) -> Path:
    """A scratch source whose ml-model is slow to render for one project name, fast otherwise.

    The slowness is real template work (5e8 Jinja loop steps, about a minute on an idle
    machine), as in a careless template: nothing in Trellis is told to be slow.
    """
    return blueprint_source(path, files={"slow.txt.jinja": _SLOW_TEMPLATE})


def replace_in(path: Path, old: str, new: str) -> None:
    """Replace ``old`` (which must occur exactly once) with ``new`` in ``path``."""
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {path}"
    path.write_text(text.replace(old, new))


def release(
    src: Path,
    version: str,
    notes: str,
    edits: Mapping[str, tuple[str, str]] | None = None,
    *,
    tags: bool = True,
    blueprint: str = "ml-model",
) -> None:
    """Release ``version`` of ``blueprint`` in the scratch source: template edits, a changelog
    entry, the version in ``blueprint.yaml`` and (unless ``tags=False``) a tag mirroring it.

    ``edits`` maps a path under the blueprint's template to ``(old, new)`` text.
    """
    for relative, (old, new) in (edits or {}).items():
        replace_in(src / template_dir(blueprint) / relative, old, new)
    changelog = src / changelog_path(blueprint)
    replace_in(changelog, "# Changelog\n", f"# Changelog\n\n## {version} - 2026-12-01\n\n{notes}\n")
    set_version(src, version, blueprint)
    commit_all(src, f"blueprints {version}", tag=version if tags else None)


def generated_repo(
    src: Path,
    dst: Path,
    answers: dict[str, Any],
    vcs_ref: str = "1.0.0",
    blueprint: str = "ml-model",
) -> Path:
    """Render ``blueprint`` from ``src`` at ``vcs_ref`` into ``dst`` and commit it on ``main``."""
    render(answers, dst, src=src, vcs_ref=vcs_ref, blueprint=blueprint)
    commit_all(dst, "Generated by Trellis")
    return dst


@contextmanager
def serve_directory(root: Path) -> Iterator[str]:
    """Serve ``root``'s files over real HTTP (as a raw-file host would); yields the base URL."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=scaled(5))
