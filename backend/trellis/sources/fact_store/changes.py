"""The change cache: what the store believes is stored, so unchanged facts cost no query.

Each (entity, retriever)'s latest row is known by a digest of its canonical JSON (as
stored), plus a cheap fingerprint of the Python values last seen, so an unchanged reading is
not even encoded. A write collects its rows in a ``Batch`` and only a committed write changes
what is believed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from trellis.ports import FactRow, ResultRow
from trellis.sources.fact_store.tables import as_utc

__all__ = [
    "Batch",
    "Latest",
    "Stamps",
    "Written",
    "canonical_json",
    "digest_of",
    "fact_texts",
    "stamp_of",
    "what",
]


def _json_default(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


# One encoder, built once: canonical text (sorted keys) so equal values digest equally.
_ENCODER = json.JSONEncoder(
    sort_keys=True,
    ensure_ascii=False,
    allow_nan=False,
    separators=(",", ":"),
    default=_json_default,
)


def canonical_json(value: object) -> str:
    """``value`` as canonical JSON (sorted keys, no NaN): equal values give equal text."""
    try:
        return _ENCODER.encode(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"facts must be JSON values (no NaN or infinity): {exc}") from exc


def digest_of(*parts: str) -> bytes:
    """A short digest of texts, as kept for each latest row and result."""
    return hashlib.blake2b("\x00".join(parts).encode(), digest_size=16).digest()


def what(row: FactRow | ResultRow) -> str:
    """The row a refused value belongs to (built on failure only: a run has 150,000 rows)."""
    if isinstance(row, FactRow):
        return f"facts of {row.entity!r} from {row.retriever!r}"
    return f"result of {row.check_id!r} for {row.entity!r}"


def fact_texts(row: FactRow) -> tuple[str, str]:
    """The row's facts and unknowns as canonical JSON; a value JSON cannot hold is refused."""
    try:
        return canonical_json(row.facts), (canonical_json(row.unknown) if row.unknown else "{}")
    except ValueError as exc:
        raise ValueError(f"{what(row)}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Latest:
    """What is known of an (entity, retriever)'s latest stored row, without its facts.

    ``digest`` is of its canonical JSON (as stored); ``quick`` of the Python values last
    written or confirmed by this process (None when only read from the database).
    """

    timestamp: datetime
    digest: bytes
    checked_at: datetime
    quick: bytes | None


class Stamps:
    """Each distinct timestamp checked and converted once: a run's rows share a few."""

    def __init__(self, to_db: Callable[[datetime], object]) -> None:
        self._to_db = to_db
        self._seen: dict[datetime, tuple[datetime, object, str]] = {}

    def __call__(self, value: datetime) -> tuple[datetime, object, str]:
        """``value`` in UTC, as the driver takes it, and as ISO text (for digests)."""
        found = self._seen.get(value)
        if found is None:
            utc = as_utc(value)
            found = self._seen[value] = (utc, self._to_db(utc), utc.isoformat())
        return found


def stamp_of(stamps: Stamps, row: FactRow | ResultRow) -> tuple[datetime, object, str]:
    """The row's timestamp through ``stamps``; a refused one names the row."""
    try:
        return stamps(row.timestamp)
    except ValueError as exc:
        raise ValueError(f"{what(row)}: {exc}") from exc


class Written(NamedTuple):
    """What this process last wrote for a result's key.

    ``digest`` is of its canonical JSON (what decides); ``quick`` the ``fingerprint`` of its
    Python values (None when they do not pickle), which skips encoding an unchanged result:
    a fleet's run is 200,000 of them.
    """

    digest: bytes
    quick: bytes | None


@dataclass(slots=True)
class Batch:
    """What one write stored, and what the digests become once it commits.

    Fact and result rows go to the driver as they are made; only ``checked_at`` rows (of
    unchanged facts, in CHECK_COLUMNS order) are gathered, since they are known once every
    fact was seen.
    """

    check_rows: list[tuple[Any, ...]] = field(default_factory=list)
    facts_seen: dict[tuple[str, str], Latest] = field(default_factory=dict)
    results_seen: dict[tuple[str, str], Written] = field(default_factory=dict)
    result_entities: set[str] = field(default_factory=set)
    facts_written: int = 0
    results_written: int = 0
    #: Results of a key that came again, newer, in the same write: written last.
    late_results: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)
    unchanged: int = 0
