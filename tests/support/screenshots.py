"""Which code each screenshot in docs/images/ was taken with, recorded by content hash.

A clone resets modification times, so freshness is judged by hashes: the browser test
records, beside the screenshots, the hash of the sources that render them and the hash of
each image; tests/test_screenshots.py recomputes both and fails when the sources changed
after the screenshots were taken (or an image was replaced by hand).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["MANIFEST", "RENDERING_SOURCES", "file_hash", "record_screenshots", "sources_hash"]

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "docs" / "images" / "screenshots.json"
#: What draws the pages in the screenshots: the plugin and the test app around it.
RENDERING_SOURCES = (
    REPO / "frontend" / "plugin-trellis" / "src",
    REPO / "tests" / "browser" / "app",
)


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sources_hash(roots: Iterable[Path] = RENDERING_SOURCES) -> str:
    """One hash over every file's path (relative to the repository) and content."""
    digest = hashlib.sha256()
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            digest.update(path.relative_to(REPO).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def record_screenshots(manifest: Path, screenshots: Iterable[Path]) -> None:
    """Record each screenshot's hash and the hash of the sources it was taken with.

    Entries of other screenshots already in the manifest are kept as they are.
    """
    data: dict[str, Any] = {"screenshots": {}}
    if manifest.exists():
        data = json.loads(manifest.read_text(encoding="utf-8"))
    data["sources"] = [root.relative_to(REPO).as_posix() for root in RENDERING_SOURCES]
    taken_with = sources_hash()
    for path in screenshots:
        data["screenshots"][path.name] = {"sha256": file_hash(path), "sourcesSha256": taken_with}
    data["screenshots"] = dict(sorted(data["screenshots"].items()))
    manifest.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
