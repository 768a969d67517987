"""The scorecard fact store on SQLite files: the shared contract, plus what only SQLite has."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from support.fact_store_contract import FRAUD, T0, FactStoreContract, fact, result
from trellis.errors import ConfigError, SourceUnavailable
from trellis.sources.fact_store import SETTING, FactStore


class TestSqliteContract(FactStoreContract):
    @pytest.fixture
    def url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'state' / 'scorecards.db'}"


def test_the_database_file_and_its_directories_are_created_in_wal_mode(tmp_path):
    path = tmp_path / "a" / "b" / "scorecards.db"
    store = FactStore(f"sqlite:///{path}")
    store.write([fact()], [result()], at=T0)
    store.close()

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    assert {"trellis_facts", "trellis_fact_checks", "trellis_check_results"} <= tables


def test_an_in_memory_database_is_shared_by_threads():
    store = FactStore("sqlite://")
    store.write([fact()], [result()], at=T0)
    assert store.latest_results([FRAUD])[FRAUD] == [result()]
    store.close()


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "mysql://trellis:hunter2@db.example/trellis",
        "oracle://trellis:hunter2@db.example/trellis",
        "postgresql+asyncpg://trellis:hunter2@db.example/trellis",
        "postgresql+nosuchdriver://trellis:hunter2@db.example/trellis",
    ],
)
def test_a_url_that_cannot_work_is_a_config_error_naming_the_setting(url):
    with pytest.raises(ConfigError, match=SETTING) as raised:
        FactStore(url)
    assert "hunter2" not in str(raised.value)


def test_history_days_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="history_days"):
        FactStore(f"sqlite:///{tmp_path / 's.db'}", history_days=0)


def _not_a_directory(tmp_path: Path) -> Path:
    (tmp_path / "file").write_text("a file, not a directory")
    return tmp_path / "file" / "scorecards.db"


def _a_directory(tmp_path: Path) -> Path:
    (tmp_path / "scorecards.db").mkdir()
    return tmp_path / "scorecards.db"


@pytest.mark.parametrize("make_path", [_not_a_directory, _a_directory])
def test_a_database_that_cannot_be_opened_is_unavailable_and_named(tmp_path, make_path):
    path = make_path(tmp_path)
    store = FactStore(f"sqlite:///{path}")  # made without reaching the database
    for attempt in (store.open, store.latest_results):  # each use tries again
        with pytest.raises(SourceUnavailable) as raised:
            attempt()
        assert str(path) in str(raised.value)
    assert not store.opened and store.set_aside == []


def _not_a_database(path: Path) -> None:
    path.write_bytes(b"this is not an SQLite database, whatever its name says" * 100)


def _a_damaged_database(path: Path) -> None:
    store = FactStore(f"sqlite:///{path}")
    store.write([fact()], [result()], at=T0)
    store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with path.open("r+b") as raw:  # the schema page, past the 100-byte header
        raw.seek(100)
        raw.write(b"\xff" * 3000)


@pytest.mark.parametrize("damage", [_not_a_database, _a_damaged_database])
def test_a_file_that_is_not_a_sound_database_is_set_aside_and_a_new_one_made(
    tmp_path, damage, caplog
):
    path = tmp_path / "scorecards.db"
    damage(path)
    # A log beside a file that is not a database is set aside before SQLite sees it; one
    # beside a damaged database is SQLite's to read (it drops a log it cannot match).
    wal = damage is _not_a_database
    if wal:
        (tmp_path / "scorecards.db-wal").write_bytes(b"its write-ahead log")
    before = path.read_bytes()
    store = FactStore(f"sqlite:///{path}")

    store.write([fact()], [result()], at=T0)  # opens, sets the file aside, starts afresh

    [record] = store.set_aside
    assert record.path == path and record.kept_as.name.startswith("scorecards.db.bad-")
    assert record.kept_as.read_bytes() == before
    if wal:
        assert (tmp_path / f"{record.kept_as.name}-wal").read_bytes() == b"its write-ahead log"
    assert store.latest_results() == {result().entity: [result()]}
    assert any(record.kept_as.name in r.getMessage() for r in caplog.records)
    store.close()


def test_a_database_that_cannot_be_written_is_unavailable(tmp_path):
    path = tmp_path / "scorecards.db"
    made = FactStore(f"sqlite:///{path}")
    made.open()
    made.close()
    read_only = FactStore(f"sqlite:///file:{path}?mode=ro&uri=true")
    assert read_only.latest_results() == {}
    with pytest.raises(SourceUnavailable, match="readonly"):
        read_only.write([fact()], [result()], at=T0)
    read_only.close()


def test_one_entity_is_found_among_a_fleet_sized_table(tmp_path):
    """10,000 entities x 12 checks: each lookup returns exactly that entity's rows.

    How fast a lookup is gets measured by ``benchmarks/fact_store.py``.
    """
    store = FactStore(f"sqlite:///{tmp_path / 'scorecards.db'}")
    entities = [f"resource:default/model-{n}" for n in range(10_000)]
    facts = [fact(e, r) for e in entities for r in ("mlflow-registry", "prometheus-serving")]
    results = [result(e, f"check-{c:02d}") for e in entities for c in range(12)]
    assert store.write(facts, results, at=T0).results_written == 120_000
    assert store.write(facts, results, at=T0).results_written == 0

    for entity in entities[::997]:
        found = store.latest_results([entity])[entity]
        assert sorted(r.check_id for r in found) == [f"check-{c:02d}" for c in range(12)]
        assert {r.entity for r in found} == {entity}
        kept = store.latest_facts(entity, ["mlflow-registry", "blueprint"])
        assert set(kept) == {"mlflow-registry"}
    store.close()


def test_an_unchanged_result_costs_no_encoding(monkeypatch):
    """A fleet's run is 200,000 results: those unchanged since the last write are told by a
    fingerprint of their values, not by encoding them again."""
    import trellis.sources.fact_store.store as store_module

    encoded: list[object] = []
    encode = store_module.canonical_json

    def counting(value: object) -> str:
        encoded.append(value)
        return encode(value)

    monkeypatch.setattr(store_module, "canonical_json", counting)
    store = FactStore("sqlite://")
    try:
        rows = [result(check_id=f"check-{n}", reasons=("why",), owner="risk") for n in range(5)]
        assert store.write([], rows, at=T0).results_written == 5
        assert encoded
        encoded.clear()
        assert store.write([], rows, at=T0).results_written == 0
        assert encoded == []
        changed = [*rows[:4], result(check_id="check-4", reasons=("why",), owner="ml")]
        assert store.write([], changed, at=T0).results_written == 1
        assert len(encoded) == 2  # the changed one's reasons and facts only
    finally:
        store.close()
