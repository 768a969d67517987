"""The working tree of a repository generated from a cookiecutter template (``.cruft.json``).

Reads the record (from a checkout or a repository's raw-file URL), lists and writes files,
and merges one file three ways with ``git merge-file``: git's own line merge, so conflicts
carry the markers every editor and ``git diff`` know.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from trellis.errors import ConfigError, SourceUnavailable
from trellis.model import CruftRecord
from trellis.ports import RenderedFile
from trellis.sources.cookiecutter_context import CRUFT_FILE, cruft_json, parse_cruft
from trellis.sources.git import git
from trellis.sources.repositories import Repositories, is_dirty

__all__ = ["CruftCheckouts"]


class CruftCheckouts:
    """Repositories recorded in ``.cruft.json``; remote ones are read through ``reader``."""

    def __init__(self, reader: Repositories | None = None) -> None:
        self.reader = reader or Repositories()

    def is_checkout(self, repo: Path) -> bool:
        """Whether ``repo`` is the top of a git working tree."""
        try:
            top = git("rev-parse", "--show-toplevel", cwd=repo).strip()
        except SourceUnavailable:
            return False
        return Path(top).resolve() == repo.resolve()

    def is_dirty(self, repo: Path) -> bool:
        """Whether the checkout has uncommitted changes or untracked files."""
        return is_dirty(repo)

    def read_record(self, location: str) -> CruftRecord:
        """The repository's ``.cruft.json``."""
        text = self.reader.read_text(location, CRUFT_FILE)
        return parse_cruft(text, where=f"{location}/{CRUFT_FILE}")

    def write_record(self, repo: Path, record: CruftRecord) -> None:
        """Write ``.cruft.json`` as cruft writes it."""
        (repo / CRUFT_FILE).write_text(cruft_json(record), encoding="utf-8")

    def files(self, repo: Path) -> dict[str, RenderedFile]:
        """Every file git tracks in the checkout, by path."""
        listing = git("ls-files", "-z", cwd=repo)
        found: dict[str, RenderedFile] = {}
        for name in filter(None, listing.split("\0")):
            path = repo / name
            if path.is_symlink() or not path.is_file():
                continue
            found[name] = RenderedFile(name, path.read_bytes(), bool(path.stat().st_mode & 0o111))
        return found

    def write(self, repo: Path, file: RenderedFile) -> None:
        """Write one file (content and executable bit), making its folders."""
        path = _inside(repo, file.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(file.content)
        mode = path.stat().st_mode
        path.chmod(mode | 0o111 if file.executable else mode & ~0o111)

    def delete(self, repo: Path, path: str) -> None:
        """Remove one file, and folders it leaves empty."""
        target = _inside(repo, path)
        target.unlink(missing_ok=True)
        parent = target.parent
        while parent != repo.resolve() and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent

    def merge(
        self, ours: bytes, base: bytes, theirs: bytes, labels: tuple[str, str, str]
    ) -> tuple[bytes, bool]:
        """``git merge-file -p``: the merged contents, and whether conflicts were left.

        Binary contents are not merged line by line: ours are kept, as a conflict.
        """
        if any(b"\0" in content for content in (ours, base, theirs)):
            return ours, True
        with tempfile.TemporaryDirectory(prefix="trellis-merge-") as scratch:
            paths = []
            for name, content in (("ours", ours), ("base", base), ("theirs", theirs)):
                path = Path(scratch) / name
                path.write_bytes(content)
                paths.append(str(path))
            result = subprocess.run(  # noqa: S603 - fixed git arguments, no shell
                [shutil.which("git") or "git", "merge-file", "-p",
                 "-L", labels[0], "-L", labels[1], "-L", labels[2], *paths],
                capture_output=True, check=False, timeout=60,
                env={**os.environ, "LC_ALL": "C"},
            )  # fmt: skip
        if result.returncode < 0 or result.returncode > 127:  # git could not merge at all
            return ours, True
        return result.stdout, result.returncode > 0


def _inside(repo: Path, relative: str) -> Path:
    """``repo / relative``, refusing a path that leaves the repository."""
    root = repo.resolve()
    path = (root / relative).resolve()
    if root not in path.parents:
        raise ConfigError(f"{relative} is outside {repo}")
    return path
