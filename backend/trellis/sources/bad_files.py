"""Files Trellis cannot use: their schema errors in a few short lines, and setting them aside.

A file Trellis keeps for itself (the snapshot, the SQLite fact store) that it cannot read is
renamed ``<name>.bad-<UTC time>`` beside it, never deleted, so a person can look at it while
the service starts afresh. Errors name fields and positions only, never a value: the files
can hold credentials.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import yaml
from pydantic import ValidationError

from trellis.ports import SetAside

__all__ = ["MAX_PROBLEMS", "schema_problems", "set_aside", "yaml_problem"]

log = logging.getLogger(__name__)

MAX_PROBLEMS = 5
"""Schema errors quoted in a log line or an answer; the rest are counted."""
_STAMP = "%Y%m%dT%H%M%SZ"


def schema_problems(exc: ValidationError, limit: int = MAX_PROBLEMS) -> list[str]:
    """``field.path: message`` for the first ``limit`` errors, without the values refused."""
    errors = exc.errors(include_input=False, include_url=False, include_context=False)
    lines = [
        f"{'.'.join(map(str, e['loc'])) or '(the file)'}: "
        + ("Input should be an object" if e["type"] == "model_type" else e["msg"])
        for e in errors
    ]
    if len(lines) > limit:
        lines = [*lines[:limit], f"and {len(lines) - limit} more"]
    return lines


def yaml_problem(exc: yaml.YAMLError) -> str:
    """What the YAML parser found wrong and where, on one line, without quoting the file."""
    parts = []
    for text, mark in (
        (getattr(exc, "context", None), getattr(exc, "context_mark", None)),
        (getattr(exc, "problem", None) or type(exc).__name__, getattr(exc, "problem_mark", None)),
    ):
        if text:
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            parts.append(" ".join(str(text).split()) + where)
    return "not valid YAML: " + ": ".join(parts)


def set_aside(
    path: Path,
    reason: str,
    *,
    companions: Sequence[str] = (),
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> SetAside:
    """Rename ``path`` to ``<name>.bad-<UTC time>`` beside it and log a warning saying why.

    ``companions`` are suffixes of files that belong to it (SQLite's ``-wal``, ``-shm``):
    those present move along under the same stamp. A name already taken gets a counter.

    Raises:
        OSError: when the file cannot be renamed (it is then left where it was).
    """
    at = clock()
    stem = f"{path.name}.bad-{at.astimezone(UTC).strftime(_STAMP)}"
    kept_as = path.with_name(stem)
    counter = 1
    while any(_taken(kept_as, suffix) for suffix in ("", *companions)):
        counter += 1
        kept_as = path.with_name(f"{stem}-{counter}")
    path.rename(kept_as)
    for suffix in companions:
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.rename(kept_as.with_name(kept_as.name + suffix))
    log.warning("set aside %s as %s: %s", path, kept_as.name, reason)
    return SetAside(path=path, kept_as=kept_as, at=at, reason=reason)


def _taken(name: Path, suffix: str) -> bool:
    return name.with_name(name.name + suffix).exists()
