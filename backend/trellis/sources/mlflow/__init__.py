"""The MLflow model registry, read whole in a handful of paged requests.

Two adapters satisfy one port (``trellis.ports.RegistrySource``) and share the rest:

* ``rest``: ``RestRegistry`` talks to a tracking server's REST API with an injected
  ``httpx.Client`` (every request has the client's timeout);
* ``sql``: ``SqlRegistry`` reads an ``sqlite:`` (or other SQLAlchemy) URI through MLflow's
  own store, for the embedded default; its read runs under a deadline;
* ``mapping``: registry JSON (REST shape) to domain objects, pure;
* ``details``: champion details (signature, dataset lineage, metrics) read for many
  versions at once and kept, with the I/O lent by either adapter.

Training history is read per run, on demand (one model page needs the champion's and the
candidate's runs): the names of a run's metrics, then each metric's logged values.
"""

from trellis.sources.mlflow.details import RUN_BATCH
from trellis.sources.mlflow.mapping import to_domain
from trellis.sources.mlflow.rest import RestRegistry
from trellis.sources.mlflow.sql import SqlRegistry

__all__ = ["RUN_BATCH", "RestRegistry", "SqlRegistry", "to_domain"]
