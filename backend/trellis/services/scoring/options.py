"""How scoring runs: how often, over which windows, by which rules."""

from __future__ import annotations

from dataclasses import dataclass, field

from trellis.scorecards.assembly import FactPolicy

__all__ = ["ScoringOptions"]


@dataclass(frozen=True, slots=True)
class ScoringOptions:
    """The scorer's options; the serving window is the policy's."""

    interval_seconds: float = 300.0
    availability_window_seconds: int = 86_400
    policy: FactPolicy = field(default_factory=FactPolicy)
