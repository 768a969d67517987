"""``FactStore``: fact history and latest results, written in bulk and queried by entity.

How the tables are used, and why, is told in :mod:`trellis.sources.fact_store`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import Select, and_, delete, exists, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.dml import Insert

from trellis.errors import SourceUnavailable
from trellis.fingerprints import fingerprint
from trellis.gc_pause import cycles_paused
from trellis.ports import FactRow, ResultRow, RunRow, SetAside, WriteStats
from trellis.sources.bad_files import set_aside
from trellis.sources.fact_store.bulk import CopyWriter
from trellis.sources.fact_store.changes import (
    Batch,
    Latest,
    Stamps,
    Written,
    canonical_json,
    digest_of,
    fact_texts,
    stamp_of,
    what,
)
from trellis.sources.fact_store.engine import (
    SQLITE_FILES,
    WRITE_OPTION,
    damaged,
    driver_time,
    failure_reason,
    make_engine,
    parse_url,
    sqlite_file,
    sqlite_header,
)
from trellis.sources.fact_store.tables import (
    CHECK_COLUMNS,
    CHECKS,
    FACT_COLUMNS,
    FACTS,
    RESULT_COLUMNS,
    RESULTS,
    RUNS,
    as_utc,
    create_schema,
)

__all__ = ["OUTCOMES", "PRUNE_EVERY", "FactStore"]

OUTCOMES = frozenset({"passed", "failed", "unknown"})
PRUNE_EVERY = timedelta(hours=1)
_CHUNK = 500  # entities per ``IN (...)``: far below every database's parameter limit
_WRITE_SLICE = 5_000  # rows per SQLite ``executemany``: encoded rows held at once
_PG_LOCK_KEY = 0x7472_656C_6C69_7366  # "trellisf": the advisory lock writers take


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


def _upsert_checked_at(stmt: sqlite.Insert | postgresql.Insert) -> Insert:
    """A newer reading of an unchanged value moves ``checked_at`` on, never back."""
    return stmt.on_conflict_do_update(
        index_elements=[CHECKS.c.entity, CHECKS.c.retriever],
        set_={"checked_at": stmt.excluded.checked_at},
        where=CHECKS.c.checked_at < stmt.excluded.checked_at,
    )


def _upsert_results(stmt: sqlite.Insert | postgresql.Insert) -> Insert:
    """A result replaces the kept one of its key unless that one is newer."""
    return stmt.on_conflict_do_update(
        index_elements=[RESULTS.c.entity, RESULTS.c.check_id],
        set_={name: stmt.excluded[name] for name in ("timestamp", "outcome", "reasons", "facts")},
        # Never replace a newer outcome (another replica's) with an older one.
        where=RESULTS.c.timestamp <= stmt.excluded.timestamp,
    )


def _run_row(row: Any) -> RunRow:
    return RunRow(
        at=row.at,
        replica=row.replica,
        seconds=float(row.seconds),
        entities=int(row.entities),
        report=_mapping(row.report),
    )


class FactStore:
    """Fact history and latest check results in one SQL database (SQLite or PostgreSQL).

    Safe to share between threads: reads take a pooled connection each; writes, ``forget``
    and ``prune`` are serialised by a lock, since they update the in-memory digests.
    """

    def __init__(self, url: str, *, history_days: int = 90) -> None:
        if history_days < 1:
            raise ValueError(f"history_days must be at least 1, not {history_days}")
        self.history = timedelta(days=history_days)
        parsed = parse_url(url)
        self.name = f"fact store {parsed.render_as_string(hide_password=True)}"
        self._engine = make_engine(parsed)
        self._file = sqlite_file(parsed)
        self._sqlite = self._engine.dialect.name == "sqlite"
        self._to_db = driver_time(self._engine.dialect)
        self._sql: dict[str, str] = {}
        self._copies: dict[str, CopyWriter] = {}
        dialect = self._engine.dialect
        if self._sqlite:
            self._sql = {
                "facts": self._compile(insert(FACTS), FACT_COLUMNS),
                "checks": self._compile(_upsert_checked_at(sqlite.insert(CHECKS)), CHECK_COLUMNS),
                "results": self._compile(_upsert_results(sqlite.insert(RESULTS)), RESULT_COLUMNS),
            }
        else:  # COPY: a fleet's write in one stream per table, not one statement per row
            self._copies = {
                "facts": CopyWriter(FACTS, FACT_COLUMNS, dialect, None),
                "checks": CopyWriter(CHECKS, CHECK_COLUMNS, dialect, _upsert_checked_at),
                "results": CopyWriter(RESULTS, RESULT_COLUMNS, dialect, _upsert_results),
            }
        self._lock = threading.Lock()
        self._facts_seen: dict[tuple[str, str], Latest] = {}
        self._results_seen: dict[tuple[str, str], Written] = {}
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
            if self._file is not None and not sqlite_header(self._file):
                # Before SQLite opens it: it would drop the -wal file it cannot match.
                self._set_aside(self._file, "file is not a database")
            try:
                self._create()
            except SourceUnavailable as exc:
                if self._file is None or not damaged(exc.__cause__):
                    raise
                self._engine.dispose()  # no pooled connection may keep the old file
                self._set_aside(self._file, exc.reason)
                self._create()
            self._opened = True

    def _set_aside(self, path: Path, problem: str) -> None:
        try:
            self.set_aside.append(
                set_aside(path, f"{self.name}: {problem}", companions=SQLITE_FILES)
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
        self,
        facts: Iterable[FactRow],
        results: Iterable[ResultRow],
        *,
        at: datetime,
        unchanged: Iterable[tuple[str, str]] = (),
    ) -> WriteStats:
        """Store one scoring run's facts (changes only) and results, in one transaction.

        ``at`` is the moment of the run: history older than ``at`` minus ``history_days`` is
        pruned along (at most once an hour). Rows are encoded as they are written, never all
        at once (a fleet's first write is 150,000 rows of JSON); a refused value (NaN, a
        naive timestamp) rolls the whole write back, so the store stays as it was.

        ``unchanged`` names (entity, retriever) pairs read again at ``at`` with the values
        this store last wrote for them: only their latest reading moves, nothing is encoded.
        A pair this store holds nothing for is refused, and the write rolled back.
        """
        at = as_utc(at, "at")
        stamps = Stamps(self._to_db)
        with self._lock, self._guard(), cycles_paused(), self._writing() as conn:
            self._catch_up(conn)
            batch = Batch()
            last_id = self._last_id
            fact_rows = self._fact_rows(batch, facts, stamps, unchanged, stamps(at))
            batch.facts_written = self._write_rows(conn, "facts", fact_rows)
            if batch.facts_written:
                # Writers hold the database's write lock: every id up to the max is seen.
                last_id = int(conn.execute(select(func.max(FACTS.c.id))).scalar_one())
            if batch.check_rows:
                self._write_rows(conn, "checks", iter(batch.check_rows))
            result_rows = self._result_rows(batch, results, stamps)
            batch.results_written = self._write_rows(conn, "results", result_rows)
            if batch.late_results:  # newer results of keys already written: they replace them
                late = iter(batch.late_results.values())
                batch.results_written += self._write_rows(conn, "results", late)
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
            self._result_entities.update(batch.result_entities)
        return WriteStats(
            facts_written=batch.facts_written,
            facts_unchanged=batch.unchanged,
            results_written=batch.results_written,
        )

    def _fact_rows(
        self,
        batch: Batch,
        facts: Iterable[FactRow],
        stamps: Stamps,
        unchanged: Iterable[tuple[str, str]],
        at: tuple[datetime, object, str],
    ) -> Iterator[tuple[Any, ...]]:
        """Changed facts as rows, one at a time.

        Unchanged facts with a newer reading, and the ``unchanged`` pairs read at ``at``, go
        to ``batch.check_rows``, complete once every row was taken.
        """
        checks: dict[tuple[str, str], tuple[Any, ...]] = {}
        for row in facts:
            key = (row.entity, row.retriever)
            known = batch.facts_seen.get(key) or self._facts_seen.get(key)
            utc, stored, _ = stamp_of(stamps, row)
            quick = fingerprint(row.version, row.facts, row.unknown)
            if known is not None and quick is not None and quick == known.quick:
                digest = known.digest  # the same values as last time: nothing to encode
            else:  # (the texts are used below only when this digest is new)
                facts_text, unknown_text = fact_texts(row)
                digest = digest_of(row.version, facts_text, unknown_text)
            if known is not None and digest == known.digest:
                self._read_again(batch, checks, key, known, (utc, stored), quick)
                continue
            # A new value's own timestamp is its latest reading: it needs no check row.
            if known is None or utc >= known.timestamp:
                checked_at = max(utc, known.checked_at) if known else utc
                batch.facts_seen[key] = Latest(utc, digest, checked_at, quick)
            yield (row.entity, row.retriever, row.version, stored, facts_text, unknown_text)
        utc, stored, _ = at
        for key in unchanged:
            known = batch.facts_seen.get(key) or self._facts_seen.get(key)
            if known is None:
                raise ValueError(
                    f"facts of {key[0]!r} from {key[1]!r} were said to be unchanged, "
                    "but this store holds none"
                )
            self._read_again(batch, checks, key, known, (utc, stored), known.quick)
        batch.check_rows = list(checks.values())

    @staticmethod
    def _read_again(
        batch: Batch,
        checks: dict[tuple[str, str], tuple[Any, ...]],
        key: tuple[str, str],
        known: Latest,
        at: tuple[datetime, object],
        quick: bytes | None,
    ) -> None:
        """An unchanged value read again ``at`` (UTC, as stored): its reading moves, never back."""
        utc, stored = at
        batch.unchanged += 1
        checked_at = max(utc, known.checked_at)
        batch.facts_seen[key] = Latest(known.timestamp, known.digest, checked_at, quick)
        if utc > known.checked_at:
            checks[key] = (*key, stored)

    def _result_rows(
        self, batch: Batch, results: Iterable[ResultRow], stamps: Stamps
    ) -> Iterator[tuple[Any, ...]]:
        """Results unlike the ones this store last wrote, as rows, one at a time.

        A result whose outcome, reasons and facts are those this store last wrote for its key
        is skipped, so its timestamp stays the moment it became so (a fleet that does not
        change costs no result writes); the first write after a restart writes them all. Of
        several results for one key, the newest wins (the first of equally new ones): a later,
        strictly newer one goes to ``batch.late_results``, written after these to replace it.
        """
        newest: dict[tuple[str, str], datetime] = {}
        for row in results:
            if row.outcome not in OUTCOMES:
                raise ValueError(
                    f"{what(row)}: outcome {row.outcome!r} is not one of {sorted(OUTCOMES)}"
                )
            key = (row.entity, row.check_id)
            utc, stored, _ = stamp_of(stamps, row)
            earlier = newest.get(key)
            if earlier is not None and utc <= earlier:
                continue
            newest[key] = utc
            written = batch.results_seen.get(key) or self._results_seen.get(key)
            quick = fingerprint(row.outcome, row.reasons, row.facts)
            if written is not None and quick is not None and quick == written.quick:
                continue  # the same values as last written: nothing to encode
            try:
                reasons = canonical_json(list(row.reasons)) if row.reasons else "[]"
                facts = canonical_json(row.facts)
            except ValueError as exc:
                raise ValueError(f"{what(row)}: {exc}") from exc
            digest = digest_of(row.outcome, reasons, facts)
            batch.results_seen[key] = Written(digest, quick)
            if written is not None and written.digest == digest:
                continue
            batch.result_entities.add(row.entity)
            values = (row.entity, row.check_id, stored, row.outcome, reasons, facts)
            if earlier is None:
                yield values
            else:  # its key may be written already: this one replaces it afterwards
                batch.late_results[key] = values

    def _catch_up(self, conn: Connection) -> None:
        """Bring the digests up to date: all latest rows once, then rows inserted since."""
        if self._last_id is None:
            last_id = conn.execute(select(func.max(FACTS.c.id))).scalar()
            for row in conn.execute(self._latest_query()):
                digest = digest_of(row.version, row.facts, row.unknown)
                self._remember(row.entity, row.retriever, row.timestamp, digest, row.checked_at)
            self._last_id = int(last_id or 0)
            return
        newer = conn.execute(select(FACTS).where(FACTS.c.id > self._last_id).order_by(FACTS.c.id))
        for row in newer:
            digest = digest_of(row.version, row.facts, row.unknown)
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
            self._facts_seen[key] = Latest(timestamp, digest, checked, None)

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write transaction holding the database's write lock from its first statement.

        SQLite: ``BEGIN IMMEDIATE`` (see :func:`_sqlite_begin`). PostgreSQL: a transaction
        advisory lock, so replicas sharing the database write one at a time and each sees
        every row the others inserted before it.
        """
        with self._engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                if not self._sqlite:
                    conn.execute(select(func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
                yield conn

    def _compile(self, stmt: Insert, columns: Sequence[str]) -> str:
        """SQL for ``executemany`` with rows already in the driver's types, in ``columns`` order.

        Bulk writes skip SQLAlchemy's per-row parameter processing (most of a bulk write's
        time): the only column type with a processor is the timestamp, which
        :class:`Stamps` converts once per distinct value with the same processor.
        """
        compiled = stmt.compile(dialect=self._engine.dialect, column_keys=list(columns))
        if self._engine.dialect.positional and list(compiled.positiontup or ()) != list(columns):
            raise RuntimeError(f"unexpected parameter order {compiled.positiontup}")
        return str(compiled)

    def _write_rows(self, conn: Connection, name: str, rows: Iterator[tuple[Any, ...]]) -> int:
        """Write one table's rows (no key twice) as they come; returns how many.

        PostgreSQL: one ``COPY`` stream. SQLite: its compiled ``executemany`` on slices of
        ``_WRITE_SLICE`` rows, so only one slice's encoded rows are held at a time.
        """
        copy = self._copies.get(name)
        if copy is not None:
            return copy.write(conn, rows)
        written = 0
        while chunk := list(islice(rows, _WRITE_SLICE)):
            conn.exec_driver_sql(self._sql[name], chunk)
            written += len(chunk)
        return written

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

    def distrust(self) -> None:
        """Forget what this process believes is stored: another writer may have written since.

        A replica that leads again after another led calls it: a result it wrote before, and
        finds again, may since have been replaced, so the next write writes every result and
        reads every latest fact row again.
        """
        with self._lock:
            self._facts_seen.clear()
            self._results_seen.clear()
            self._result_entities = None
            self._last_id = None

    def record_run(self, run: RunRow) -> None:
        """Keep ``run`` as the latest; older runs keep their figures but not their report.

        Runs older than the fact history are dropped with it.
        """
        at = as_utc(run.at, "at")
        report = canonical_json(run.report)
        with self._lock, self._guard(), self._writing() as conn:
            conn.execute(update(RUNS).where(RUNS.c.report != "{}").values(report="{}"))
            conn.execute(delete(RUNS).where(RUNS.c.at < at - self.history))
            conn.execute(
                insert(RUNS).values(
                    at=at,
                    replica=run.replica,
                    seconds=run.seconds,
                    entities=run.entities,
                    report=report,
                )
            )

    def last_run(self) -> RunRow | None:
        """The latest run kept, whichever replica ran it; None before the first."""
        query = select(RUNS).order_by(RUNS.c.at.desc(), RUNS.c.id.desc()).limit(1)
        with self._guard(), self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _run_row(row)

    def runs(self, since: datetime) -> list[RunRow]:
        """The runs kept from ``since`` on, oldest first (reports empty but the latest's)."""
        since = as_utc(since, "since")
        query = select(RUNS).where(RUNS.c.at >= since).order_by(RUNS.c.at, RUNS.c.id)
        with self._guard(), self._engine.connect() as conn:
            return [_run_row(row) for row in conn.execute(query)]

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
            raise SourceUnavailable(self.name, failure_reason(exc)) from exc
