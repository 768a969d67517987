"""What every benchmark shares: progress lines, statistics, timing and a bare FastAPI app.

The bare app serves the same bytes as a Trellis route does: the floor of that route.
"""

from __future__ import annotations

import gc
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["bare_app_script", "log", "median", "percentile", "timed"]

_started = time.perf_counter()


def log(message: str) -> None:
    """A progress line on stderr, with the seconds since the run began."""
    print(f"[{time.perf_counter() - _started:7.1f}s] {message}", file=sys.stderr, flush=True)


def median(values: Sequence[float]) -> float:
    """The median (of at least one value)."""
    return statistics.median(values)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` percentile (0..1) by the nearest-rank method."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds taken by ``action`` (after a garbage collection) and what it returned."""
    gc.collect()
    started = time.perf_counter()
    value = action()
    return time.perf_counter() - started, value


def bare_app_script(method: str, media_type: str) -> str:
    """A bare FastAPI app answering ``method`` on ``/async`` and ``/sync`` with a file's bytes.

    Run as ``python script BODY_FILE PORT``; ``/healthz`` says when it listens.
    """
    return f'''
import sys
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Response

body = Path(sys.argv[1]).read_bytes()
app = FastAPI()


@app.{method}("/async")
async def bare_async() -> Response:
    return Response(content=body, media_type="{media_type}")


@app.{method}("/sync")
def bare_sync() -> Response:
    return Response(content=body, media_type="{media_type}")


@app.get("/healthz")
async def healthz() -> dict[str, bool]:
    return {{"ok": True}}


uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), workers=1, access_log=False,
            log_level="warning")
'''
