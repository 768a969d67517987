"""PostgreSQL's bulk writes: ``COPY``, through a staging table where rows are upserted.

One statement per row (even pipelined) made a fleet's first write on PostgreSQL two to three
times SQLite's. ``COPY ... FROM STDIN`` sends every row in one stream: plain inserts go
straight into their table; upserts (``ON CONFLICT``) are copied into a temporary table
dropped at commit, then merged by one ``INSERT ... SELECT ... ON CONFLICT``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Column, MetaData, Table, exists, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import Insert

__all__ = ["CopyWriter", "Upsert"]

Upsert = Callable[[postgresql.Insert], Insert]
"""Adds a table's ``ON CONFLICT`` clause to an insert into it."""


class CopyWriter:
    """Writes rows (already in the driver's types) into one table by ``COPY``."""

    def __init__(
        self,
        table: Table,
        columns: Sequence[str],
        dialect: Dialect,
        upsert: Upsert | None,
        *,
        newest_of: Sequence[str] = (),
    ) -> None:
        """``newest_of``: a key whose rows may repeat; only the newest ``timestamp`` is merged."""
        self.table = table
        self.columns = list(columns)
        names = ", ".join(f'"{name}"' for name in self.columns)
        #: The merge by (the table is empty, a ``newest_of`` key repeated); none: plain COPY.
        self._merges: dict[tuple[bool, bool], str] = {}
        if upsert is None:
            self._copy = f'COPY "{table.name}" ({names}) FROM STDIN'
            return
        stage = Table(
            f"{table.name}_stage",
            MetaData(),
            *(Column(name, table.c[name].type) for name in self.columns),
        )
        self._create = (
            f'CREATE TEMPORARY TABLE "{stage.name}" '
            f'(LIKE "{table.name}" INCLUDING DEFAULTS) ON COMMIT DROP'
        )
        self._copy = f'COPY "{stage.name}" ({names}) FROM STDIN'
        self._any = str(select(exists().select_from(table)).compile(dialect=dialect))
        staged = select(*(stage.c[name] for name in self.columns))
        newest = staged
        if newest_of:  # a key may go in once only: each key's newest row
            newer = stage.alias("newer")
            newest = staged.where(
                ~exists().where(
                    *(newer.c[name] == stage.c[name] for name in newest_of),
                    newer.c.timestamp > stage.c.timestamp,
                )
            )
        for repeated, rows in ((False, staged), (True, newest)):
            insert = postgresql.insert(table).from_select(self.columns, rows)
            # Into an empty table (the store's first write), a plain INSERT: half the time
            # of ON CONFLICT's speculative insertion, and the writers' lock keeps it empty.
            self._merges[True, repeated] = str(insert.compile(dialect=dialect))
            self._merges[False, repeated] = str(upsert(insert).compile(dialect=dialect))

    def write(
        self,
        conn: Connection,
        rows: Iterable[tuple[Any, ...]],
        repeated: Callable[[], bool] = lambda: False,
    ) -> int:
        """Copy ``rows`` (in ``columns`` order) in as they come, within ``conn``'s transaction.

        ``repeated``, asked once every row was copied, says whether a ``newest_of`` key came
        more than once (only then is the merge narrowed to each key's newest). Returns how
        many rows were copied; none costs no statement. The driver's errors are raised as
        SQLAlchemy's, as every other statement's are.
        """
        rows = iter(rows)
        first = next(rows, None)
        if first is None:
            return 0
        raw = conn.connection.driver_connection
        if raw is None:  # a connection in a transaction always has one
            raise RuntimeError("the connection has no driver connection")
        copied = 1
        statement = self._copy
        try:
            with raw.cursor() as cursor:
                if self._merges:
                    statement = self._create
                    cursor.execute(self._create)
                statement = self._copy
                with cursor.copy(self._copy) as copy:
                    copy.write_row(first)
                    for row in rows:
                        copy.write_row(row)
                        copied += 1
                if self._merges:
                    statement = self._any
                    (any_row,) = cursor.execute(self._any).fetchone() or (True,)
                    statement = self._merges[not any_row, repeated()]
                    cursor.execute(statement)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(
                statement, None, exc, conn.dialect.loaded_dbapi.Error
            ) from exc
        return copied
