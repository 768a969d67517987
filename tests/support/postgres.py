"""A real PostgreSQL server for the tests: ``initdb`` into a temporary directory, then start.

It listens on 127.0.0.1 on a free port (and a socket in its own directory), trusts local
connections, and runs as the ``postgres`` OS user when the tests run as root (``initdb``
refuses root). A missing installation fails the test, saying how to install it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

import psycopg
from psycopg import sql

from support.markers import starting
from support.services import Process, free_port, start_process, wait_until
from support.timing import scaled

INSTALL = "apt-get install -y --no-install-recommends postgresql"
OS_USER = "postgres"
_databases = count(1)


def binaries() -> Path:
    """The newest installed PostgreSQL's ``bin`` directory (Debian's layout, or PATH)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=_major_version)
    if found:
        return found[-1].parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise AssertionError(
        f"PostgreSQL's server (initdb, postgres) is needed for this test and is missing: {INSTALL}"
    )


def _major_version(initdb: Path) -> int:
    version = initdb.parent.parent.name
    return int(version) if version.isdigit() else 0


def _as_server_user() -> list[str]:
    """Run as ``postgres`` when we are root: PostgreSQL refuses to run as root."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", OS_USER, "--"]


@dataclass
class PostgresServer:
    """One throwaway cluster; :meth:`database` creates an empty database per test."""

    root: Path
    port: int = field(default_factory=free_port)
    process: Process | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    def url(self, database: str, *, driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{OS_USER}@127.0.0.1:{self.port}/{database}"

    def start(self, *, timeout: float = 60) -> PostgresServer:
        starting("postgres")
        bin_dir = binaries()
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:  # the server's files belong to the user it runs as
            for path in (self.root, self.socket_dir):
                shutil.chown(path, OS_USER)
        result = subprocess.run(
            [
                *_as_server_user(),
                str(bin_dir / "initdb"),
                "--pgdata",
                str(self.data_dir),
                "--username",
                OS_USER,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=scaled(120),
        )
        assert result.returncode == 0, f"initdb failed:\n{result.stdout}\n{result.stderr}"
        self.process = start_process(
            [
                *_as_server_user(),
                str(bin_dir / "postgres"),
                "-D",
                str(self.data_dir),
                "-p",
                str(self.port),
                "-k",
                str(self.socket_dir),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",  # a throwaway cluster: speed over durability
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ],
            log=self.root / "postgres.log",
            env={},
        )

        def ready() -> bool:
            if self.process is not None and self.process.popen.poll() is not None:
                raise AssertionError(f"postgres exited early:\n{self.process.tail()}")
            with psycopg.connect(
                self.url("postgres", driver="postgresql"), connect_timeout=round(scaled(2))
            ):
                return True

        try:
            wait_until(ready, timeout=timeout, what="PostgreSQL")
        except AssertionError:
            self.stop()
            raise
        return self

    def database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        name = f"trellis_{os.getpid()}_{next(_databases)}"
        with psycopg.connect(self.url("postgres", driver="postgresql"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def stop(self) -> None:
        if self.process:
            self.process.stop()
            self.process = None


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A started server, stopped and deleted afterwards.

    Its directory is made with ``mkdtemp`` under the system's temporary directory rather
    than pytest's: the ``postgres`` user must reach it, and pytest's are private to root.
    """
    server = PostgresServer(root=Path(tempfile.mkdtemp(prefix="trellis-postgres-")))
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)
