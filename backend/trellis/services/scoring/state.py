"""What the last run left for the query side: its entities, its roll-up and its report."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["RunReport", "RunState"]


@dataclass(frozen=True, slots=True)
class RunReport:
    """What one run did, for logs, ``/readyz`` and ``trellis score``."""

    at: datetime
    seconds: float
    entities: int
    outcomes: Mapping[str, int]
    unavailable: Mapping[str, str]
    facts_written: int


class RunState:
    """Written by each run, read by the routes; one lock keeps the three parts together."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entities: dict[str, Mapping[str, Any]] = {}
        self.rollup: list[dict[str, object]] | None = None
        self.last: RunReport | None = None
        #: Why the last background run did not finish; None when it did.
        self.last_error: str | None = None

    def publish(
        self,
        entities: dict[str, Mapping[str, Any]],
        rollup: list[dict[str, object]],
        report: RunReport,
    ) -> None:
        """Make one run's outcome the one answered from."""
        with self.lock:
            self.entities = entities
            self.rollup = rollup
            self.last = report
