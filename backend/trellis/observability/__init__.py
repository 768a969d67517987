"""Golden signals and training history of a model's servers: pure functions, no I/O.

``queries`` writes the PromQL (per runtime, escaped, batched per signal); ``window`` bounds
an answer; ``signals``, ``training`` and ``page`` shape what Prometheus and MLflow returned.
Running the queries is the caller's job (``trellis.services.observability``).
"""

from trellis.observability.page import EntityServers, SourceState, Target, build_page, page_servers
from trellis.observability.queries import (
    SIGNALS,
    Query,
    Signal,
    plan_queries,
    roadie_rules,
    server_key,
    signals_for,
)
from trellis.observability.signals import SignalSeries, Unavailable
from trellis.observability.training import TrainingRun, thin, training_runs
from trellis.observability.window import (
    Limits,
    Window,
    WindowError,
    parse_duration,
    plan_window,
)

__all__ = [
    "SIGNALS",
    "EntityServers",
    "Limits",
    "Query",
    "Signal",
    "SignalSeries",
    "SourceState",
    "Target",
    "TrainingRun",
    "Unavailable",
    "Window",
    "WindowError",
    "build_page",
    "page_servers",
    "parse_duration",
    "plan_queries",
    "plan_window",
    "roadie_rules",
    "server_key",
    "signals_for",
    "thin",
    "training_runs",
]
