"""The scorecard definitions a scorer runs: read again each run, the last valid set kept.

Files whose bytes have not changed since the last read are not parsed again: a scorer that
waits for its catalog asks every second, and parsing and validating YAML each time would
cost a steady few percent of a core (and log the same problems every second).
"""

from __future__ import annotations

import logging
from pathlib import Path

from trellis.errors import NotReady
from trellis.scorecards import DefinitionError, Scorecard
from trellis.scorecards.definitions import DefinitionFile, parse_scorecards, read_definitions

__all__ = ["Definitions"]

log = logging.getLogger("trellis.services.scoring")  # one logger for every part of scoring

_NO_DIRECTORY = (
    "TRELLIS_SCORECARDS__DIRECTORY is not set and Trellis does not run from a checkout with "
    "scorecards/"
)


class Definitions:
    """The definitions in ``directory``; an edit that breaks them keeps the last valid set."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._scorecards: tuple[Scorecard, ...] | None = None
        #: Why the last read failed; None when it succeeded.
        self.error: str | None = None
        self._read: tuple[DefinitionFile, ...] | None = None  # what the last read found
        self._failure: DefinitionError | None = None

    @property
    def ever_valid(self) -> bool:
        """Whether a valid set was ever read."""
        return self._scorecards is not None

    def reload(self) -> tuple[Scorecard, ...]:
        """Read the definitions again; on any problem keep the last valid set and say why.

        Raises:
            DefinitionError: naming every problem, when no valid set was ever read.
            NotReady: when there is no directory to read.
        """
        if self.directory is None:
            self.error = _NO_DIRECTORY
            return self.scorecards()
        files = read_definitions(self.directory)
        if files != self._read:
            self._read = files
            try:
                self._scorecards = parse_scorecards(files)
                self.error, self._failure = None, None
            except DefinitionError as exc:
                self.error, self._failure = str(exc), exc
                if self._scorecards is not None:
                    log.error("scorecard definitions kept as they were: %s", exc)
        if self._failure is not None and self._scorecards is None:
            raise DefinitionError(self._failure.problems)
        return self.scorecards()

    def scorecards(self) -> tuple[Scorecard, ...]:
        """The last valid definitions.

        Raises:
            NotReady: when none were read.
        """
        if self._scorecards is None:
            why = self.error or "they have not been read yet"
            raise NotReady(f"no valid scorecard definitions: {why}")
        return self._scorecards
