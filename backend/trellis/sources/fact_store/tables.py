"""The scorecard store's tables: fact history, the latest reading of each, check results.

What each table holds and why is told in :mod:`trellis.sources.fact_store`; here are their
columns, indexes and the one column type every dialect needs (UTC-aware timestamps).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
)
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import TypeDecorator

__all__ = [
    "CHECKS",
    "CHECK_COLUMNS",
    "FACTS",
    "FACT_COLUMNS",
    "RESULTS",
    "RESULT_COLUMNS",
    "RUNS",
    "UtcDateTime",
    "as_utc",
    "create_schema",
]

FACT_COLUMNS = ("entity", "retriever", "version", "timestamp", "facts", "unknown")
CHECK_COLUMNS = ("entity", "retriever", "checked_at")
RESULT_COLUMNS = ("entity", "check_id", "timestamp", "outcome", "reasons", "facts")


def as_utc(value: datetime, what: str = "timestamp") -> datetime:
    """``value`` in UTC; a naive datetime is refused, not guessed."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} {value.isoformat()} has no time zone; give it in UTC")
    return value.astimezone(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, UTC-aware datetimes out, on every dialect.

    SQLite has no time zones: values are stored as UTC text and read back as naive, so UTC
    is put back on. A naive datetime is refused rather than guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to UTC before the driver sees it (SQLite would drop the offset)."""
        if value is None:
            return None
        return as_utc(value)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        """Return UTC-aware datetimes whatever the session's time zone."""
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {value!r}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


_METADATA = MetaData()

FACTS = Table(
    "trellis_facts",
    _METADATA,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("entity", Text, nullable=False),
    Column("retriever", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("timestamp", UtcDateTime, nullable=False),
    Column("facts", Text, nullable=False),
    Column("unknown", Text, nullable=False),
    Index("ix_trellis_facts_entity_retriever_timestamp", "entity", "retriever", "timestamp"),
    Index("ix_trellis_facts_timestamp", "timestamp"),
    # Ids only grow (no reuse after a delete): writers read others' rows by ``id > last``.
    sqlite_autoincrement=True,
)

CHECKS = Table(
    "trellis_fact_checks",
    _METADATA,
    Column("entity", Text, nullable=False),
    Column("retriever", Text, nullable=False),
    Column("checked_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("entity", "retriever", name="pk_trellis_fact_checks"),
    sqlite_with_rowid=False,  # the key is the table: one B-tree, not two
)

RESULTS = Table(
    "trellis_check_results",
    _METADATA,
    Column("entity", Text, nullable=False),
    Column("check_id", Text, nullable=False),
    Column("timestamp", UtcDateTime, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("reasons", Text, nullable=False),
    Column("facts", Text, nullable=False),
    PrimaryKeyConstraint("entity", "check_id", name="pk_trellis_check_results"),
    sqlite_with_rowid=False,  # the key is the table: one B-tree, not two
)


RUNS = Table(
    "trellis_scorer_runs",
    _METADATA,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("at", UtcDateTime, nullable=False),
    Column("replica", Text, nullable=False),
    Column("seconds", Float, nullable=False),
    Column("entities", Integer, nullable=False),
    # The run's JSON summary; emptied ("{}") once a newer run is kept: only the latest is shown.
    Column("report", Text, nullable=False),
    Index("ix_trellis_scorer_runs_at", "at"),
    sqlite_autoincrement=True,
)


def create_schema(engine: Engine) -> None:
    """Create missing tables; a replica creating them at the same moment is not an error."""
    try:
        _METADATA.create_all(engine)
    except DBAPIError:
        _METADATA.create_all(engine)  # the other replica won the race: now they exist
