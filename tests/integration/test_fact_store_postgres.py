"""The scorecard fact store on a real PostgreSQL server, started by the tests themselves.

The same contract as on SQLite (``support.fact_store_contract``), each test in an empty
database of one server; plus what only a server has: URLs, passwords, a server that goes away.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.fact_store_contract import FRAUD, T0, FactStoreContract, fact, result
from support.postgres import PostgresServer, postgres_server
from support.services import free_port
from trellis.errors import SourceUnavailable
from trellis.sources.fact_store import FactStore

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


class TestPostgresContract(FactStoreContract):
    @pytest.fixture
    def url(self, postgres: PostgresServer) -> str:
        return postgres.database()


def test_a_plain_postgresql_url_uses_psycopg(postgres):
    url = postgres.database().replace("postgresql+psycopg://", "postgresql://")
    store = FactStore(url)
    store.write([fact()], [result()], at=T0)
    assert store.latest_results([FRAUD]) == {FRAUD: [result()]}
    store.close()


def test_an_unreachable_server_is_unavailable_and_its_password_is_not_shown():
    url = f"postgresql+psycopg://trellis:s3cret-pw@127.0.0.1:{free_port()}/trellis"
    store = FactStore(url)  # made without reaching the server: a start never waits on it
    with pytest.raises(SourceUnavailable) as raised:
        store.open()
    message = str(raised.value)
    assert "s3cret-pw" not in message
    assert "trellis:" not in message  # no userinfo at all, not even a masked one
    assert f"postgresql+psycopg://127.0.0.1:{url.rsplit(':', 1)[1]}" in message


def test_a_server_that_goes_away_makes_the_store_unavailable_not_broken():
    with postgres_server() as server:
        store = FactStore(server.database())
        store.write([fact()], [result()], at=T0)
        server.stop()
        with pytest.raises(SourceUnavailable, match="fact store postgresql"):
            store.write([fact(owner="someone else")], [], at=T0)
        with pytest.raises(SourceUnavailable):
            store.latest_results()
        store.close()
