"""The value of a fact that could not be read: neither true nor false, and it says why."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Unknown"]


@dataclass(frozen=True, slots=True)
class Unknown:
    """Stands where a fact's value would be when its source failed or could not tell.

    It may be a whole fact (Prometheus is down) or a field inside an object fact (a
    blueprint whose latest version could not be read). A condition that reads it is unknown.
    """

    reason: str
