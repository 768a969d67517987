"""A model folder's identity: its size, a SHA-256 over its files, and its card's licence."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Fingerprint:
    """Total size in bytes and one SHA-256 over every file's relative path and contents."""

    size_bytes: int
    sha256: str


def fingerprint(folder: Path) -> Fingerprint:
    """Size and SHA-256 of `folder`; the same files give the same digest on any machine."""
    digest = hashlib.sha256()
    size = 0
    files = sorted(p for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts)
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
    return Fingerprint(size_bytes=size, sha256=digest.hexdigest())


def card_license(folder: Path) -> str | None:
    """The `license` of the model card's front matter (README.md), if it states one."""
    card = folder / "README.md"
    if not card.is_file():
        return None
    text = card.read_text(encoding="utf-8", errors="replace")
    if not text.startswith("---"):
        return None
    front, _, _ = text[3:].partition("\n---")
    try:
        meta = yaml.safe_load(front)
    except yaml.YAMLError:
        return None
    value = meta.get("license") if isinstance(meta, dict) else None
    return str(value).lower() if value else None
