"""Backstage-valid names and tags derived from free text, deterministically.

MLflow names are free text; Backstage names are ``[A-Za-z0-9][-A-Za-z0-9_.]*[A-Za-z0-9]``
of at most 63 characters and are compared case-insensitively, tags are
``[a-z0-9:+#]+(-[a-z0-9:+#]+)*``. The rules here:

* a name that is already valid and lower-case is kept as it is;
* any other name is folded to ASCII, lower-cased and its runs of invalid characters become
  ``-``; when that is still unique among the names of the set it is used as it is;
* when two names fold to the same result, every one that had to change gets a stable suffix
  ``-`` + the first hex digits of the SHA-256 of its original name (the one that needed no
  change keeps its plain name); a name longer than 63 always gets the suffix, since
  truncation loses what told it apart; a name that folds to nothing becomes ``model-<hash>``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable

__all__ = ["MAX_NAME", "entity_names", "fold_name", "fold_tag", "is_valid_name", "is_valid_tag"]

MAX_NAME = 63
MAX_TAG = 63
_HASH = 10
_NAME_RE = re.compile(r"^[A-Za-z0-9][-A-Za-z0-9_.]*[A-Za-z0-9]$|^[A-Za-z0-9]$")
_TAG_RE = re.compile(r"^[a-z0-9:+#]+(?:-[a-z0-9:+#]+)*$")
_INVALID_NAME_RUN = re.compile(r"[^a-z0-9_.-]+")
_INVALID_TAG_RUN = re.compile(r"[^a-z0-9:+#]+")
_EDGE = "-_."


def is_valid_name(name: str) -> bool:
    """Whether Backstage accepts ``name`` as ``metadata.name``."""
    return len(name) <= MAX_NAME and bool(_NAME_RE.match(name))


def is_valid_tag(tag: str) -> bool:
    """Whether Backstage accepts ``tag`` in ``metadata.tags``."""
    return len(tag) <= MAX_TAG and bool(_TAG_RE.match(tag))


def _ascii_lower(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def fold_name(text: str) -> str:
    """Lower-case ASCII with invalid runs as ``-`` and no separator at either end."""
    return _INVALID_NAME_RUN.sub("-", _ascii_lower(text)).strip(_EDGE)


def fold_tag(text: str) -> str | None:
    """A valid tag for ``text``, or None when nothing usable is left."""
    folded = _INVALID_TAG_RUN.sub("-", _ascii_lower(text)).strip("-")[:MAX_TAG].rstrip("-")
    return folded if folded and is_valid_tag(folded) else None


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:length]


def _suffixed(original: str, folded: str, length: int) -> str:
    stem = folded[: MAX_NAME - length - 1].rstrip(_EDGE) or "model"
    return f"{stem}-{_digest(original, length)}"


def entity_names(originals: Iterable[str]) -> dict[str, str]:
    """Map each distinct original name to a valid, unique (case-insensitively) entity name."""
    unique = sorted(set(originals))
    folded = {name: fold_name(name) for name in unique}
    by_candidate: dict[str, list[str]] = defaultdict(list)
    for name in unique:
        by_candidate[folded[name]].append(name)

    result: dict[str, str] = {}
    for name in unique:
        plain = folded[name]
        kept = name == plain and is_valid_name(plain)
        lone = len(by_candidate[plain]) == 1
        if kept or (lone and plain and is_valid_name(plain)):
            result[name] = plain
        else:
            result[name] = _suffixed(name, plain, _HASH)
    return _resolve_clashes(result, folded)


def _resolve_clashes(result: dict[str, str], folded: dict[str, str]) -> dict[str, str]:
    """Lengthen the suffix of changed names until no two names meet (vanishingly rare)."""
    length = _HASH
    while True:
        owners: dict[str, list[str]] = defaultdict(list)
        for original, name in result.items():
            owners[name.lower()].append(original)
        clashing = [o for group in owners.values() if len(group) > 1 for o in group]
        changed = [o for o in clashing if result[o] != o]
        if not clashing:
            return result
        if not changed or length >= 40:  # pragma: no cover - SHA-256 prefixes of distinct text
            raise RuntimeError(f"cannot separate entity names {sorted(clashing)!r}")
        length += 6
        for original in changed:
            result[original] = _suffixed(original, folded[original], length)
