"""A job run again and again on a daemon thread until stopped: the services' background.

The catalog refresh and the scorer both keep something fresh off the request path. The
thread waits on an event, so ``stop`` ends it at once rather than after the interval, and an
exception in the job is logged and the loop goes on: a bug must not end the loop that keeps
answers fresh. ``wake`` runs the job early (a webhook said something changed): at once when
the last run began at least ``debounce_seconds`` ago, else when that much time has passed, so
a burst of wakes costs one run, and a wake during a run brings exactly one run after it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

__all__ = ["Job", "Runner"]

Job = Callable[[], float | None]
"""One round of work; it returns how soon to run again, or None for the usual interval."""


class Runner:
    """Runs ``job`` every ``interval_seconds`` on a daemon thread from ``start`` to ``stop``."""

    def __init__(
        self,
        job: Job,
        *,
        interval_seconds: float,
        name: str,
        what: str,
        log: logging.Logger,
        join_seconds: float = 5.0,
        debounce_seconds: float = 0.0,
    ) -> None:
        """``what`` names the job in the log line of a crash, written to the job's ``log``."""
        self.job = job
        self.interval_seconds = interval_seconds
        self.name = name
        self.what = what
        self.log = log
        self.join_seconds = join_seconds
        self.debounce_seconds = debounce_seconds
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread; the first run begins at once."""
        self._stop.clear()
        self._wake.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Run the job soon rather than at the end of the interval."""
        self._wake.set()

    def stop(self) -> None:
        """Ask the thread to end and wait up to ``join_seconds`` for the run in progress."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.join_seconds)

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            wait: float | None = None
            try:
                wait = self.job()
            except Exception:
                self.log.exception("%s crashed", self.what)
            woken = self._wake.wait(self.interval_seconds if wait is None else wait)
            if woken and not self._stop.is_set():
                # Wakes until the debounce has passed are served by the next run.
                self._stop.wait(max(0.0, self.debounce_seconds - (time.monotonic() - began)))
            self._wake.clear()
