"""One scale factor for every deadline the tests wait on.

A busy machine (CI under load, two suites side by side) makes everything slower, never
wrong. Each deadline a test waits on is written for an idle machine and passed through
:func:`scaled`, so one setting stretches them all: ``TRELLIS_TEST_TIME_SCALE`` (default 3, so
a deadline tuned on an idle laptop holds at about three times the load). Nothing here asserts
how fast something was: speed is measured in ``benchmarks/``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

__all__ = ["SCALE", "eventually", "scaled"]


def _scale() -> float:
    raw = os.environ.get("TRELLIS_TEST_TIME_SCALE", "3")
    try:
        value = float(raw)
    except ValueError:
        raise RuntimeError(f"TRELLIS_TEST_TIME_SCALE must be a number, not {raw!r}") from None
    if not 0 < value <= 100:
        raise RuntimeError(f"TRELLIS_TEST_TIME_SCALE must be in (0, 100], not {value}")
    return value


SCALE = _scale()


def scaled(seconds: float) -> float:
    """``seconds`` on an idle machine, stretched by the suite's scale factor."""
    return seconds * SCALE


def eventually(condition: Callable[[], object], seconds: float = 10.0) -> bool:
    """Whether ``condition`` holds within ``seconds`` (scaled), asked every 10 ms."""
    deadline = time.monotonic() + scaled(seconds)
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
