"""The scorecard store: fact history and each check's latest result, in SQLite or PostgreSQL.

Facts are computed for the whole fleet on an interval, and they rarely change: keeping every
reading of 10,000 entities x 3 retrievers every 5 minutes would be millions of rows a day.
So the history keeps *changes*, and the moment of the latest reading is kept beside it:

``trellis_facts``
    One row per (entity, retriever) each time its ``version``, ``facts`` or ``unknown``
    differ from its latest row. A row's ``timestamp`` is the moment that value was *first
    seen*. :meth:`~FactStore.facts_range` returns these change rows.
``trellis_fact_checks``
    Per (entity, retriever), ``checked_at``: the last moment an unchanged value was read
    again (a new value's own row already carries its reading time). ``latest_facts``
    stamps each latest row with the later of the two, so the latest facts carry the time of
    the latest reading, not of the first reading that still holds.
``trellis_check_results``
    Each check's latest outcome per entity, replaced in place (never by an older one). Fact
    history outlives it: ``forget`` drops the results of entities gone from the catalog.

Unchanged facts cost no query: the store keeps a digest of each (entity, retriever)'s latest
row in memory (of its canonical JSON, as stored), loaded from the database on the first write,
plus a cheap fingerprint of the Python values last seen, so an unchanged reading is not even
encoded. Writers take the database's write lock first (SQLite ``BEGIN IMMEDIATE``, a
PostgreSQL advisory lock), then read the fact rows inserted since their last write (by id,
one indexed query): replicas sharing one PostgreSQL database each see the others' changes.
A result whose outcome, reasons and facts are those this store last wrote is not written
again, so its timestamp says since when it holds; changed results are upserted in bulk.

Every write is one transaction; history older than ``history_days`` is pruned by the writes
themselves (at most once an hour), but never an (entity, retriever)'s latest row, which may
be a value first seen long ago that still holds. SQLite runs in WAL mode, so the API reads
while a background thread writes. Failures of the database are ``SourceUnavailable`` naming it
(without its password); a URL that cannot work is a ``ConfigError``. The database is reached
on first use, not when the store is made, so one that is down never stops a start.
"""

from __future__ import annotations

import gc
import hashlib
import json
import pickle
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Select,
    and_,
    create_engine,
    delete,
    event,
    exists,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Dialect, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.dml import Insert

from trellis.errors import ConfigError, SourceUnavailable
from trellis.sources.bad_files import SetAside, set_aside
from trellis.sources.fact_tables import (
    CHECK_COLUMNS,
    CHECKS,
    FACT_COLUMNS,
    FACTS,
    RESULT_COLUMNS,
    RESULTS,
    UtcDateTime,
    as_utc,
    create_schema,
)

__all__ = ["SETTING", "FactRow", "FactStore", "ResultRow", "WriteStats"]

SETTING = "TRELLIS_SCORECARDS__DATABASE_URL"
"""The setting a wrong database URL is reported against."""

OUTCOMES = frozenset({"passed", "failed", "unknown"})
BUSY_TIMEOUT_MS = 15_000
"""How long an SQLite statement waits for another writer's lock before failing."""
CACHE_KIB = 32_768
"""SQLite page cache per connection (a ceiling, filled on demand): a fleet's bulk upsert fits."""
CONNECT_TIMEOUT_S = 10
STATEMENT_TIMEOUT_MS = 120_000
"""PostgreSQL gives up on a statement after this long (a bulk write takes about a second)."""
PRUNE_EVERY = timedelta(hours=1)
_CHUNK = 500  # entities per ``IN (...)``: far below every database's parameter limit
_WRITE_OPTION = "trellis_write"  # execution option: begin with the write lock
_PG_LOCK_KEY = 0x7472_656C_6C69_7366  # "trellisf": the advisory lock writers take
#: Files SQLite keeps beside a database; a set-aside database takes them along.
_SQLITE_FILES = ("-wal", "-shm", "-journal")
_SQLITE_HEADER = b"SQLite format 3\x00"
_EXAMPLE_URLS = "sqlite:///path/to/scorecards.db or postgresql+psycopg://user:password@host/db"


@dataclass(frozen=True, slots=True)
class FactRow:
    """The facts one retriever gave for one entity at one moment.

    ``unknown`` maps a fact name (or a JSON path such as ``blueprint.versionsBehind``) to why
    it could not be read: a fact that could not be read is unknown, not false, and the
    reason is kept so a scorecard can show it.
    """

    entity: str
    retriever: str
    version: str
    timestamp: datetime
    facts: Mapping[str, object]
    unknown: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ResultRow:
    """One check's latest outcome for one entity, with the fact values the check read.

    ``reasons`` say why the outcome is unknown or which conditions failed, so a scorecard
    can explain it without evaluating the check again.
    """

    entity: str
    check_id: str
    timestamp: datetime
    outcome: str
    reasons: tuple[str, ...]
    facts: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class WriteStats:
    """What one write stored: for the logs and the metrics of a scoring run."""

    facts_written: int
    facts_unchanged: int
    results_written: int


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


def _encode(value: object) -> str:
    try:
        return _ENCODER.encode(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"facts must be JSON values (no NaN or infinity): {exc}") from exc


def _digest(*parts: str) -> bytes:
    return hashlib.blake2b("\x00".join(parts).encode(), digest_size=16).digest()


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _mapping(text: str) -> dict[str, Any]:
    value = json.loads(text)
    return value if isinstance(value, dict) else {}


def _fact_row(row: Any, timestamp: datetime) -> FactRow:
    """A stored fact row read back, stamped ``timestamp``."""
    return FactRow(
        entity=row.entity,
        retriever=row.retriever,
        version=row.version,
        timestamp=timestamp,
        facts=_mapping(row.facts),
        unknown=_mapping(row.unknown),
    )


def _quick(*values: object) -> bytes | None:
    """A fast fingerprint of Python values, to skip encoding rows that did not change.

    Equal fingerprints mean equal values (pickle writes the whole value); unequal ones prove
    nothing (key order, shared objects), so a miss falls back to the canonical JSON digest.
    Pickling takes a third of the time of JSON encoding: a fleet's run is 150,000 rows.
    """
    try:
        return hashlib.blake2b(pickle.dumps(values, protocol=5), digest_size=16).digest()
    except Exception:  # anything pickle cannot take is compared by its JSON
        return None


def _what(row: FactRow | ResultRow) -> str:
    """The row a refused value belongs to (built on failure only: a run has 150,000 rows)."""
    if isinstance(row, FactRow):
        return f"facts of {row.entity!r} from {row.retriever!r}"
    return f"result of {row.check_id!r} for {row.entity!r}"


def _fact_texts(row: FactRow) -> tuple[str, str]:
    """The row's facts and unknowns as canonical JSON; a value JSON cannot hold is refused."""
    try:
        return _encode(row.facts), (_encode(row.unknown) if row.unknown else "{}")
    except ValueError as exc:
        raise ValueError(f"{_what(row)}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class _Latest:
    """What is known of an (entity, retriever)'s latest stored row, without its facts.

    ``digest`` is of its canonical JSON (as stored); ``quick`` of the Python values last
    written or confirmed by this process (None when only read from the database).
    """

    timestamp: datetime
    digest: bytes
    checked_at: datetime
    quick: bytes | None


class _Stamps:
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


@contextmanager
def _cycles_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for one bulk write.

    A fleet's run allocates half a million containers that live until the write ends (row
    parameters, keys, digests); meanwhile the collector would traverse the whole heap several
    times, a third of the write's time. Nothing here creates reference cycles, and
    reference counting still frees everything. Only re-enabled if it was enabled.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _stamp(stamps: _Stamps, row: FactRow | ResultRow) -> tuple[datetime, object, str]:
    try:
        return stamps(row.timestamp)
    except ValueError as exc:
        raise ValueError(f"{_what(row)}: {exc}") from exc


@dataclass(slots=True)
class _Batch:
    """One write's rows for the driver, and what the digests become once it commits."""

    fact_rows: list[tuple[Any, ...]] = field(default_factory=list)  # in FACT_COLUMNS order
    check_rows: list[tuple[Any, ...]] = field(default_factory=list)  # in CHECK_COLUMNS order
    result_rows: list[tuple[Any, ...]] = field(default_factory=list)  # in RESULT_COLUMNS order
    facts_seen: dict[tuple[str, str], _Latest] = field(default_factory=dict)
    results_seen: dict[tuple[str, str], bytes] = field(default_factory=dict)
    unchanged: int = 0


class FactStore:
    """Fact history and latest check results in one SQL database (SQLite or PostgreSQL).

    Safe to share between threads: reads take a pooled connection each; writes, ``forget``
    and ``prune`` are serialised by a lock, since they update the in-memory digests.
    """

    def __init__(self, url: str, *, history_days: int = 90) -> None:
        if history_days < 1:
            raise ValueError(f"history_days must be at least 1, not {history_days}")
        self.history = timedelta(days=history_days)
        parsed = _parse(url)
        self.name = f"fact store {parsed.render_as_string(hide_password=True)}"
        self._engine = _engine(parsed)
        self._file = _sqlite_file(parsed)
        self._sqlite = self._engine.dialect.name == "sqlite"
        self._to_db = _driver_time(self._engine.dialect)
        self._sql = {
            "facts": self._compile(insert(FACTS), FACT_COLUMNS),
            "checks": self._compile(self._upsert_checked_at(), CHECK_COLUMNS),
            "results": self._compile(self._upsert_results(), RESULT_COLUMNS),
        }
        self._lock = threading.Lock()
        self._facts_seen: dict[tuple[str, str], _Latest] = {}
        self._results_seen: dict[tuple[str, str], bytes] = {}
        #: Entities with stored results, read once by ``forget`` and kept up to date after.
        self._result_entities: set[str] | None = None
        self._last_id: int | None = None  # None until the digests are loaded
        self._next_prune: datetime | None = None
        self._open_lock = threading.Lock()
        self._opened = False
        #: A damaged SQLite file renamed when opening, for ``/readyz``.
        self.set_aside: list[SetAside] = []

    # --- opening ----------------------------------------------------------------------------

    @property
    def opened(self) -> bool:
        """Whether the database was reached and its tables exist."""
        return self._opened

    def open(self) -> None:
        """Reach the database and create missing tables, once; every use calls it first.

        Nothing is reached before, so an unreachable database never stops a start: each
        later call tries again. An SQLite file that is not a database, or a damaged one, is
        set aside (renamed beside it, never deleted) and a new one created; the next run
        writes every entity's facts again.

        Raises:
            SourceUnavailable: naming this store, when it cannot be reached or created.
        """
        if self._opened:
            return
        with self._open_lock:
            if self._opened:
                return
            if self._file is not None and not _sqlite_header(self._file):
                # Before SQLite opens it: it would drop the -wal file it cannot match.
                self._set_aside(self._file, "file is not a database")
            try:
                self._create()
            except SourceUnavailable as exc:
                if self._file is None or not _damaged(exc.__cause__):
                    raise
                self._engine.dispose()  # no pooled connection may keep the old file
                self._set_aside(self._file, exc.reason)
                self._create()
            self._opened = True

    def _set_aside(self, path: Path, problem: str) -> None:
        try:
            self.set_aside.append(
                set_aside(path, f"{self.name}: {problem}", companions=_SQLITE_FILES)
            )
        except OSError as error:
            raise SourceUnavailable(
                self.name, f"{problem}; it cannot be set aside: {error.strerror}"
            ) from error

    def _create(self) -> None:
        if self._file is not None:
            try:
                self._file.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SourceUnavailable(
                    self.name, f"cannot create its directory: {exc.strerror}"
                ) from exc
        with self._failures():
            create_schema(self._engine)

    # --- writing ----------------------------------------------------------------------------

    def write(
        self, facts: Sequence[FactRow], results: Sequence[ResultRow], *, at: datetime
    ) -> WriteStats:
        """Store one scoring run's facts (changes only) and results, in one transaction.

        ``at`` is the moment of the run: history older than ``at`` minus ``history_days`` is
        pruned along (at most once an hour). Rows are validated before anything is written,
        so a refused value (NaN, a naive timestamp) leaves the store as it was.
        """
        at = as_utc(at, "at")
        stamps = _Stamps(self._to_db)
        with self._lock, self._guard(), _cycles_paused(), self._writing() as conn:
            self._catch_up(conn)
            batch = _Batch()
            self._add_facts(batch, facts, stamps)
            self._add_results(batch, results, stamps)
            last_id = self._last_id
            if batch.fact_rows:
                self._executemany(conn, "facts", FACT_COLUMNS, batch.fact_rows)
                # Writers hold the database's write lock: every id up to the max is seen.
                last_id = int(conn.execute(select(func.max(FACTS.c.id))).scalar_one())
            if batch.check_rows:
                self._executemany(conn, "checks", CHECK_COLUMNS, batch.check_rows)
            if batch.result_rows:
                self._executemany(conn, "results", RESULT_COLUMNS, batch.result_rows)
            prune_due = self._next_prune is None or at >= self._next_prune
            if prune_due:
                conn.execute(self._prune_statement(at - self.history))
        # Only a committed write may change what the store believes is stored.
        if prune_due:
            self._next_prune = at + PRUNE_EVERY
        self._last_id = last_id
        self._facts_seen.update(batch.facts_seen)
        self._results_seen.update(batch.results_seen)
        if self._result_entities is not None:
            self._result_entities.update(row[0] for row in batch.result_rows)
        return WriteStats(
            facts_written=len(batch.fact_rows),
            facts_unchanged=batch.unchanged,
            results_written=len(batch.result_rows),
        )

    def _add_facts(self, batch: _Batch, facts: Sequence[FactRow], stamps: _Stamps) -> None:
        """Changed facts become rows; unchanged ones with a newer reading, ``checked_at``."""
        checks: dict[tuple[str, str], tuple[Any, ...]] = {}
        for row in facts:
            key = (row.entity, row.retriever)
            known = batch.facts_seen.get(key) or self._facts_seen.get(key)
            utc, stored, _ = _stamp(stamps, row)
            quick = _quick(row.version, row.facts, row.unknown)
            if known is not None and quick is not None and quick == known.quick:
                digest = known.digest  # the same values as last time: nothing to encode
            else:  # (the texts are used below only when this digest is new)
                facts_text, unknown_text = _fact_texts(row)
                digest = _digest(row.version, facts_text, unknown_text)
            if known is not None and digest == known.digest:
                batch.unchanged += 1
                checked_at = max(utc, known.checked_at)
                batch.facts_seen[key] = _Latest(known.timestamp, digest, checked_at, quick)
                if utc > known.checked_at:
                    checks[key] = (row.entity, row.retriever, stored)
                continue
            batch.fact_rows.append(
                (row.entity, row.retriever, row.version, stored, facts_text, unknown_text)
            )
            # A new value's own timestamp is its latest reading: it needs no check row.
            if known is None or utc >= known.timestamp:
                checked_at = max(utc, known.checked_at) if known else utc
                batch.facts_seen[key] = _Latest(utc, digest, checked_at, quick)
        batch.check_rows = list(checks.values())

    def _add_results(self, batch: _Batch, results: Sequence[ResultRow], stamps: _Stamps) -> None:
        """Results unlike the ones this store last wrote become rows (the newest per key).

        A result whose outcome, reasons and facts are those this store last wrote for its key
        is skipped, so its timestamp stays the moment it became so (a fleet that does not
        change costs no result writes); the first write after a restart writes them all.
        """
        newest: dict[tuple[str, str], ResultRow] = {}
        for row in results:
            if row.outcome not in OUTCOMES:
                raise ValueError(
                    f"{_what(row)}: outcome {row.outcome!r} is not one of {sorted(OUTCOMES)}"
                )
            key = (row.entity, row.check_id)
            earlier = newest.get(key)
            if earlier is None or _stamp(stamps, row)[0] >= _stamp(stamps, earlier)[0]:
                newest[key] = row
        for key, row in newest.items():
            _, stored, _ = _stamp(stamps, row)
            try:
                reasons = _encode(list(row.reasons)) if row.reasons else "[]"
                facts = _encode(row.facts)
            except ValueError as exc:
                raise ValueError(f"{_what(row)}: {exc}") from exc
            digest = _digest(row.outcome, reasons, facts)
            if self._results_seen.get(key) == digest:
                continue
            batch.results_seen[key] = digest
            batch.result_rows.append(
                (row.entity, row.check_id, stored, row.outcome, reasons, facts)
            )

    def _catch_up(self, conn: Connection) -> None:
        """Bring the digests up to date: all latest rows once, then rows inserted since."""
        if self._last_id is None:
            last_id = conn.execute(select(func.max(FACTS.c.id))).scalar()
            for row in conn.execute(self._latest_query()):
                digest = _digest(row.version, row.facts, row.unknown)
                self._remember(row.entity, row.retriever, row.timestamp, digest, row.checked_at)
            self._last_id = int(last_id or 0)
            return
        newer = conn.execute(select(FACTS).where(FACTS.c.id > self._last_id).order_by(FACTS.c.id))
        for row in newer:
            digest = _digest(row.version, row.facts, row.unknown)
            self._remember(row.entity, row.retriever, row.timestamp, digest, None)
            self._last_id = max(self._last_id, int(row.id))

    def _remember(
        self,
        entity: str,
        retriever: str,
        timestamp: datetime,
        digest: bytes,
        checked_at: datetime | None,
    ) -> None:
        key = (entity, retriever)
        known = self._facts_seen.get(key)
        checked = max(timestamp, checked_at or timestamp, known.checked_at if known else timestamp)
        if known is None or timestamp >= known.timestamp:
            self._facts_seen[key] = _Latest(timestamp, digest, checked, None)

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write transaction holding the database's write lock from its first statement.

        SQLite: ``BEGIN IMMEDIATE`` (see :func:`_sqlite_begin`). PostgreSQL: a transaction
        advisory lock, so replicas sharing the database write one at a time and each sees
        every row the others inserted before it.
        """
        with self._engine.connect() as conn:
            conn.execution_options(**{_WRITE_OPTION: True})
            with conn.begin():
                if not self._sqlite:
                    conn.execute(select(func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
                yield conn

    def _compile(self, stmt: Insert, columns: Sequence[str]) -> str:
        """SQL for ``executemany`` with rows already in the driver's types, in ``columns`` order.

        Bulk writes skip SQLAlchemy's per-row parameter processing (most of a bulk write's
        time): the only column type with a processor is the timestamp, which
        :class:`_Stamps` converts once per distinct value with the same processor.
        """
        compiled = stmt.compile(dialect=self._engine.dialect, column_keys=list(columns))
        if self._engine.dialect.positional and list(compiled.positiontup or ()) != list(columns):
            raise RuntimeError(f"unexpected parameter order {compiled.positiontup}")
        return str(compiled)

    def _executemany(
        self, conn: Connection, name: str, columns: Sequence[str], rows: list[tuple[Any, ...]]
    ) -> None:
        """Run one compiled bulk statement: tuples for SQLite's ``?``, dicts for psycopg."""
        if not self._engine.dialect.positional:
            conn.exec_driver_sql(
                self._sql[name], [dict(zip(columns, row, strict=True)) for row in rows]
            )
        else:
            conn.exec_driver_sql(self._sql[name], rows)

    def _upsert_checked_at(self) -> Insert:
        stmt = sqlite.insert(CHECKS) if self._sqlite else postgresql.insert(CHECKS)
        return stmt.on_conflict_do_update(
            index_elements=[CHECKS.c.entity, CHECKS.c.retriever],
            set_={"checked_at": stmt.excluded.checked_at},
            where=CHECKS.c.checked_at < stmt.excluded.checked_at,
        )

    def _upsert_results(self) -> Insert:
        stmt = sqlite.insert(RESULTS) if self._sqlite else postgresql.insert(RESULTS)
        return stmt.on_conflict_do_update(
            index_elements=[RESULTS.c.entity, RESULTS.c.check_id],
            set_={
                name: stmt.excluded[name] for name in ("timestamp", "outcome", "reasons", "facts")
            },
            # Never replace a newer outcome (another replica's) with an older one.
            where=RESULTS.c.timestamp <= stmt.excluded.timestamp,
        )

    # --- reading ----------------------------------------------------------------------------

    def latest_facts(self, entity: str, retrievers: Sequence[str]) -> dict[str, FactRow]:
        """Each retriever's latest facts for ``entity``, stamped with the latest reading.

        Retrievers with no facts stored for the entity are absent.
        """
        if not retrievers:
            return {}
        query = self._latest_query(
            FACTS.c.entity == entity, FACTS.c.retriever.in_(list(retrievers))
        )
        with self._guard(), self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return {
            row.retriever: _fact_row(row, max(row.timestamp, row.checked_at or row.timestamp))
            for row in rows
        }

    def facts_range(
        self, entity: str, retrievers: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, list[FactRow]]:
        """The changes of ``entity``'s facts with ``start <= timestamp <= end``, oldest first.

        Each row is stamped with the moment its value was first seen. Retrievers without a
        change in the range are absent.
        """
        start, end = as_utc(start, "start"), as_utc(end, "end")
        if not retrievers or start > end:
            return {}
        query = (
            select(FACTS)
            .where(
                FACTS.c.entity == entity,
                FACTS.c.retriever.in_(list(retrievers)),
                FACTS.c.timestamp >= start,
                FACTS.c.timestamp <= end,
            )
            .order_by(FACTS.c.retriever, FACTS.c.timestamp, FACTS.c.id)
        )
        found: dict[str, list[FactRow]] = {}
        with self._guard(), self._engine.connect() as conn:
            for row in conn.execute(query):
                found.setdefault(row.retriever, []).append(_fact_row(row, row.timestamp))
        return found

    def latest_results(self, entities: Sequence[str] | None = None) -> dict[str, list[ResultRow]]:
        """Latest results by entity (each list sorted by check id); None means every entity.

        Entities without results are absent.
        """
        base = select(RESULTS).order_by(RESULTS.c.entity, RESULTS.c.check_id)
        queries: Iterable[Select[Any]]
        if entities is None:
            queries = [base]
        else:
            wanted = sorted(set(entities))
            queries = (base.where(RESULTS.c.entity.in_(chunk)) for chunk in _chunks(wanted))
        found: dict[str, list[ResultRow]] = {}
        with self._guard(), self._engine.connect() as conn:
            for query in queries:
                for row in conn.execute(query):
                    found.setdefault(row.entity, []).append(
                        ResultRow(
                            entity=row.entity,
                            check_id=row.check_id,
                            timestamp=row.timestamp,
                            outcome=row.outcome,
                            reasons=tuple(json.loads(row.reasons)),
                            facts=_mapping(row.facts),
                        )
                    )
        return found

    def _latest_query(self, *where: Any) -> Select[Any]:
        """Each (entity, retriever)'s latest change row, with its ``checked_at``."""
        rank = (
            func.row_number()
            .over(
                partition_by=(FACTS.c.entity, FACTS.c.retriever),
                order_by=(FACTS.c.timestamp.desc(), FACTS.c.id.desc()),
            )
            .label("rank")
        )
        ranked = select(FACTS, rank).where(*where).subquery("ranked")
        return (
            select(
                ranked.c.entity,
                ranked.c.retriever,
                ranked.c.version,
                ranked.c.timestamp,
                ranked.c.facts,
                ranked.c.unknown,
                CHECKS.c.checked_at,
            )
            .outerjoin(
                CHECKS,
                and_(
                    CHECKS.c.entity == ranked.c.entity,
                    CHECKS.c.retriever == ranked.c.retriever,
                ),
            )
            .where(ranked.c.rank == 1)
        )

    # --- housekeeping -----------------------------------------------------------------------

    def forget(self, entities_kept: Collection[str]) -> int:
        """Drop the latest results of entities no longer in the catalog; returns rows deleted.

        Their fact history stays (until it ages out), so a range query still answers for a
        model that was deleted recently.
        """
        kept = set(entities_kept)
        deleted = 0
        with self._lock, self._guard(), self._writing() as conn:
            stored = self._result_entities
            if stored is None:  # once: after that, writes keep the set
                stored = set(conn.execute(select(RESULTS.c.entity).distinct()).scalars())
            gone = sorted(stored - kept)
            for chunk in _chunks(gone):
                deleted += conn.execute(delete(RESULTS).where(RESULTS.c.entity.in_(chunk))).rowcount
        gone_set = set(gone)
        self._result_entities = stored - gone_set
        for key in [key for key in self._results_seen if key[0] in gone_set]:
            del self._results_seen[key]
        return deleted

    def prune(self, before: datetime) -> int:
        """Delete fact history older than ``before``, except each pair's latest row.

        The latest row is kept however old: it is the value that still holds. Returns rows
        deleted.
        """
        before = as_utc(before, "before")
        with self._lock, self._guard(), self._writing() as conn:
            return int(conn.execute(self._prune_statement(before)).rowcount)

    def _prune_statement(self, before: datetime) -> Any:
        newer = FACTS.alias("newer")
        return delete(FACTS).where(
            FACTS.c.timestamp < before,
            exists().where(
                newer.c.entity == FACTS.c.entity,
                newer.c.retriever == FACTS.c.retriever,
                or_(
                    newer.c.timestamp > FACTS.c.timestamp,
                    and_(newer.c.timestamp == FACTS.c.timestamp, newer.c.id > FACTS.c.id),
                ),
            ),
        )

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Open the store if it is not yet, then translate failures as ``_failures``."""
        self.open()
        with self._failures():
            yield

    @contextmanager
    def _failures(self) -> Iterator[None]:
        """Translate database failures into ``SourceUnavailable`` naming this store."""
        try:
            yield
        except SQLAlchemyError as exc:
            raise SourceUnavailable(self.name, _reason(exc)) from exc


# --- opening the database -------------------------------------------------------------------


def _parse(url: str) -> URL:
    """The URL, with plain ``postgresql://`` meaning psycopg 3 (the driver Trellis ships)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"{SETTING} is not a database URL; expected {_EXAMPLE_URLS}") from exc
    backend = parsed.get_backend_name()
    if backend not in {"sqlite", "postgresql"}:
        raise ConfigError(
            f"{SETTING}: {backend!r} databases are not supported; expected {_EXAMPLE_URLS}"
        )
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _engine(url: URL) -> Engine:
    """One engine for the store's life: pooled, thread-safe, with timeouts."""
    options: dict[str, Any] = {}
    connect_args: dict[str, Any] = {}
    if url.get_backend_name() == "sqlite":
        connect_args["check_same_thread"] = False
        if _sqlite_file(url) is None:
            options["poolclass"] = StaticPool  # one shared connection, or each has its own DB
    else:
        options["pool_pre_ping"] = True  # a restarted server costs no failed write
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
        if "options" not in url.query:
            connect_args["options"] = f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"
    try:
        engine = create_engine(url, connect_args=connect_args, **options)
    except (ImportError, NoSuchModuleError, ArgumentError) as exc:
        raise ConfigError(
            f"{SETTING}: driver {url.drivername!r} cannot be used ({exc}); expected {_EXAMPLE_URLS}"
        ) from exc
    if engine.dialect.is_async:
        raise ConfigError(f"{SETTING}: driver {url.drivername!r} is asynchronous; use a plain one")
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_file(url: URL) -> Path | None:
    """The SQLite database file, or None (another database, memory, a ``file:`` URI)."""
    if url.get_backend_name() != "sqlite" or url.query.get("uri"):
        return None
    database = url.database or ""
    return None if database in {"", ":memory:"} else Path(database)


def _sqlite_header(path: Path) -> bool:
    """Whether the file can be an SQLite database: missing, empty, or with SQLite's header."""
    try:
        with path.open("rb") as file:
            head = file.read(len(_SQLITE_HEADER))
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return True  # nothing to set aside; SQLite says what is wrong
    except OSError:
        return True
    return head in {b"", _SQLITE_HEADER}


def _damaged(exc: BaseException | None) -> bool:
    """Whether SQLite said the file is not a database, or a damaged one."""
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    return getattr(cause, "sqlite_errorname", None) in {"SQLITE_NOTADB", "SQLITE_CORRUPT"}


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    """WAL (readers never wait for the writer), and wait for a lock rather than fail.

    The driver's own transaction handling is turned off (it would begin only before the
    first write, after the reads a write depends on); :func:`_sqlite_begin` begins instead.
    """
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; safe with WAL
        cursor.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    finally:
        cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    """``BEGIN IMMEDIATE`` for writes: the lock is taken before reading what to write.

    A deferred transaction that reads and then writes fails at once (busy_timeout cannot
    help) when another writer committed in between; taking the lock first makes it wait.
    """
    immediate = conn.get_execution_options().get(_WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _driver_time(dialect: Dialect) -> Callable[[datetime], object]:
    """How a UTC datetime is handed to this dialect's driver (SQLite: text)."""
    processor = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
    if processor is None:
        return lambda value: value
    return processor


def _reason(exc: SQLAlchemyError) -> str:
    """The driver's message, one line, without SQL or parameters (which hold fact values)."""
    cause: BaseException = exc.orig if isinstance(exc, DBAPIError) and exc.orig else exc
    text = str(cause).strip()
    if isinstance(cause, SQLAlchemyError):
        text = text.split("(Background on this error", 1)[0].strip()
    return text.splitlines()[0] if text else type(cause).__name__
