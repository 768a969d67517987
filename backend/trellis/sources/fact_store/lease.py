"""Who runs the scorer: a PostgreSQL session advisory lock on the shared fact store.

The lock is taken with ``pg_try_advisory_lock`` on a connection of its own, kept open while
this replica leads: PostgreSQL drops a session lock when its connection ends, so a leader that
dies (process killed, connection cut) frees it at once and the next replica to ask takes it.
Each ask checks that the connection still answers and still holds the lock; when it does not,
leadership is lost and the connection is thrown away. TCP keepalives on both ends of that
connection make the server notice a leader whose host vanished without closing it (and free
the lock), and the leader notice a server that vanished.
"""

from __future__ import annotations

import contextlib
import logging
import threading

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from trellis.errors import ConfigError
from trellis.sources.fact_store.engine import failure_reason, parse_url

__all__ = ["LEASE_KEY", "AdvisoryLease"]

log = logging.getLogger("trellis.sources.fact_store")

LEASE_KEY = 0x7472_656C_6C69_7373  # "trellisS": the scorer's lease (the writers' lock differs)
_KEEPALIVE = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}
"""This side notices a server that vanished within about 25 s."""
_SERVER_KEEPALIVE = (
    "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3"
)
"""The server notices a leader's host that vanished within about 25 s, and frees the lock."""
_CONNECT_TIMEOUT_S = 10
_HOLDS = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND pid = pg_backend_pid() AND classid = :high AND objid = :low AND objsubid = 1"
)


class AdvisoryLease:
    """The scorer's lease as a session advisory lock of one PostgreSQL database.

    Thread-safe; made without reaching the database (the first ``try_acquire`` does).
    """

    def __init__(self, url: str, *, key: int = LEASE_KEY) -> None:
        parsed = parse_url(url)
        if parsed.get_backend_name() != "postgresql":
            raise ConfigError("an advisory lease needs a PostgreSQL fact store")
        self.name = f"scorer lease on {parsed.render_as_string(hide_password=True)}"
        self.key = key
        # A bigint key is held in pg_locks as its high and low 32 bits.
        self._high, self._low = (key >> 32) & 0xFFFF_FFFF, key & 0xFFFF_FFFF
        self._engine = _lease_engine(parsed)
        self._conn: Connection | None = None
        self._held = False
        self._lock = threading.Lock()

    @property
    def held(self) -> bool:
        """Whether the lock was held when last asked."""
        return self._held

    def try_acquire(self) -> bool:
        """Take the lock if free; when held, check the connection still holds it."""
        with self._lock:
            try:
                self._held = self._check() if self._held else self._take()
            except SQLAlchemyError as exc:
                if self._held:
                    log.warning("%s lost: %s", self.name, failure_reason(exc))
                else:
                    log.debug("%s cannot be asked: %s", self.name, failure_reason(exc))
                self._drop()
            return self._held

    def release(self) -> None:
        """Unlock and close the connection (closing alone would free it too)."""
        with self._lock:
            if self._conn is not None and self._held:
                # When this fails the connection is going, and the lock goes with it.
                with contextlib.suppress(SQLAlchemyError):
                    self._conn.execute(select(func.pg_advisory_unlock(self.key)))
            self._drop()

    def close(self) -> None:
        """Release the lease and every connection."""
        self.release()
        self._engine.dispose()

    def _take(self) -> bool:
        conn = self._connection()
        taken = bool(conn.execute(select(func.pg_try_advisory_lock(self.key))).scalar_one())
        if not taken:
            self._drop()  # a follower keeps no connection open between tries
        return taken

    def _check(self) -> bool:
        conn = self._connection()
        holds = conn.execute(_HOLDS, {"high": self._high, "low": self._low}).scalar_one()
        if not holds:  # e.g. an operator ran pg_advisory_unlock_all on it
            log.warning("%s lost: the lock is no longer held by its connection", self.name)
            self._drop()
            return False
        return True

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    def _drop(self) -> None:
        """Forget the connection (invalidated: never back to a pool) and the hold."""
        self._held = False
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                conn.invalidate()
                conn.close()


def _lease_engine(url: URL) -> Engine:
    """An engine without pooling (the lease keeps its one connection itself), with keepalives."""
    connect_args: dict[str, object] = {"connect_timeout": _CONNECT_TIMEOUT_S, **_KEEPALIVE}
    if "options" not in url.query:  # the URL's own options are the operator's choice
        connect_args["options"] = _SERVER_KEEPALIVE
    return create_engine(url, poolclass=NullPool, connect_args=connect_args)
