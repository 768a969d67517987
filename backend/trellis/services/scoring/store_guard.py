"""The fact store as scoring uses it: when it fails, the scorecards are unavailable, saying why."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from trellis.errors import SourceUnavailable
from trellis.ports import ScorecardStore

__all__ = ["SCORECARDS", "StoreGuard"]

SCORECARDS = "scorecards"
_T = TypeVar("_T")


class StoreGuard:
    """Every use of the fact store, remembering why it failed until a run reaches it again."""

    def __init__(self, store: ScorecardStore) -> None:
        self.store = store
        #: Why the fact store could not be used last time it was tried; None once it was.
        self.error: str | None = None

    def open(self) -> None:
        """Open the store (at the start of a run), or ``SourceUnavailable`` as ``use``."""
        try:
            self.store.open()
        except SourceUnavailable as exc:
            raise self._failed(exc) from exc

    def use(self, call: Callable[[ScorecardStore], _T]) -> _T:
        """``call`` on the store; when it fails, the scorecards are unavailable, saying why.

        A store never reached since the last failure is not tried again per request: the
        background runs retry it, so requests answer at once.

        Raises:
            SourceUnavailable: for ``scorecards``, with the store's name and reason.
        """
        if self.error is not None and not self.store.opened:
            raise SourceUnavailable(SCORECARDS, self.error)
        try:
            return call(self.store)
        except SourceUnavailable as exc:
            raise self._failed(exc) from exc

    def reached(self) -> None:
        """A run used the store: it is no longer failing."""
        self.error = None

    def _failed(self, exc: SourceUnavailable) -> SourceUnavailable:
        self.error = f"{exc.source}: {exc.reason}"
        return SourceUnavailable(SCORECARDS, self.error)
