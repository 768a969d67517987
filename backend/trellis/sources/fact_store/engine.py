"""Reaching the database: the URL checked, one engine with timeouts, SQLite's settings.

A URL that cannot work is a ``ConfigError`` naming the setting; a damaged SQLite file is
recognised so the store can set it aside; a database failure becomes one line without SQL or
parameters (which hold fact values) or the password.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Dialect, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from trellis.errors import ConfigError
from trellis.sources.fact_store.tables import UtcDateTime

__all__ = [
    "SETTING",
    "SQLITE_FILES",
    "WRITE_OPTION",
    "damaged",
    "driver_time",
    "failure_reason",
    "make_engine",
    "parse_url",
    "sqlite_file",
    "sqlite_header",
]

SETTING = "TRELLIS_SCORECARDS__DATABASE_URL"
"""The setting a wrong database URL is reported against."""

BUSY_TIMEOUT_MS = 15_000
"""How long an SQLite statement waits for another writer's lock before failing."""
CACHE_KIB = 8_192
"""SQLite page cache per connection (a ceiling, filled on demand; the OS caches the file too).

32 MiB made a fleet's bulk write (120,000 results) no faster and a scorer run's peak 24 MiB
larger, per pooled connection that reads the whole store."""
CONNECT_TIMEOUT_S = 10
STATEMENT_TIMEOUT_MS = 120_000
"""PostgreSQL gives up on a statement after this long (a bulk write takes about a second)."""
WRITE_OPTION = "trellis_write"  # execution option: begin with the write lock
#: Files SQLite keeps beside a database; a set-aside database takes them along.
SQLITE_FILES = ("-wal", "-shm", "-journal")
_SQLITE_HEADER = b"SQLite format 3\x00"
_EXAMPLE_URLS = "sqlite:///path/to/scorecards.db or postgresql+psycopg://user:password@host/db"


def parse_url(url: str) -> URL:
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


def make_engine(url: URL) -> Engine:
    """One engine for the store's life: pooled, thread-safe, with timeouts."""
    options: dict[str, Any] = {}
    connect_args: dict[str, Any] = {}
    if url.get_backend_name() == "sqlite":
        connect_args["check_same_thread"] = False
        if sqlite_file(url) is None:
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


def sqlite_file(url: URL) -> Path | None:
    """The SQLite database file, or None (another database, memory, a ``file:`` URI)."""
    if url.get_backend_name() != "sqlite" or url.query.get("uri"):
        return None
    database = url.database or ""
    return None if database in {"", ":memory:"} else Path(database)


def sqlite_header(path: Path) -> bool:
    """Whether the file can be an SQLite database: missing, empty, or with SQLite's header."""
    try:
        with path.open("rb") as file:
            head = file.read(len(_SQLITE_HEADER))
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return True  # nothing to set aside; SQLite says what is wrong
    except OSError:
        return True
    return head in {b"", _SQLITE_HEADER}


def damaged(exc: BaseException | None) -> bool:
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
    immediate = conn.get_execution_options().get(WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def driver_time(dialect: Dialect) -> Callable[[datetime], object]:
    """How a UTC datetime is handed to this dialect's driver (SQLite: text)."""
    processor = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
    if processor is None:
        return lambda value: value
    return processor


def failure_reason(exc: SQLAlchemyError) -> str:
    """The driver's message, one line, without SQL or parameters (which hold fact values)."""
    cause: BaseException = exc.orig if isinstance(exc, DBAPIError) and exc.orig else exc
    text = str(cause).strip()
    if isinstance(cause, SQLAlchemyError):
        text = text.split("(Background on this error", 1)[0].strip()
    return text.splitlines()[0] if text else type(cause).__name__
