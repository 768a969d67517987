"""Durations as Prometheus writes them (``30s``, ``15m``, ``1h30m``, ``7d``), in one place.

The observability window, its error messages and the serving facts' window all print
seconds through ``format_duration``, so the same span always reads the same.
"""

from __future__ import annotations

__all__ = ["UNITS", "format_duration"]

UNITS = (("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))
"""Each suffix and its seconds, largest first."""


def format_duration(seconds: int) -> str:
    """The shortest Prometheus-style duration for ``seconds`` (``3600`` -> ``1h``)."""
    parts = []
    for suffix, unit in UNITS:
        if seconds >= unit:
            count, seconds = divmod(seconds, unit)
            parts.append(f"{count}{suffix}")
    return "".join(parts) or "0s"
