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

from trellis.sources.fact_store.engine import SETTING
from trellis.sources.fact_store.store import FactStore

__all__ = ["SETTING", "FactStore"]
