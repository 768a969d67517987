"""One error tree for Trellis; the API and the CLI each map it in one place.

TrellisError
├── ConfigError            settings that cannot work (names the key)
├── AnswerError            answers a blueprint cannot take (names each question)
├── InvalidRequest         a request naming what does not exist (unknown check ids)
├── InvalidQuery           a query value that is malformed or out of range (a window, ids)
├── Unauthorized           no valid credentials came with the request
├── SourceUnavailable      an upstream (MLflow, Prometheus, ...) failed or timed out
├── NotFound               a named thing (an entity, an MLflow run) does not exist
├── NotReady               no snapshot has been read yet and none was kept on disk
├── Disabled               a part left off because its configuration cannot work
├── Conflict               the state does not allow the action (no drop is held)
├── Busy                   too much work is already waiting; try again later
└── TimedOut               work stopped at its deadline

Errors cross process boundaries (a render runs in a worker process): each pickles.
"""

from __future__ import annotations

from collections.abc import Sequence

from trellis.redact import scrub_text

__all__ = [
    "MAX_REPORTED",
    "AnswerError",
    "Busy",
    "ConfigError",
    "Conflict",
    "Disabled",
    "InvalidQuery",
    "InvalidRequest",
    "NotFound",
    "NotReady",
    "SourceUnavailable",
    "TimedOut",
    "TrellisError",
    "Unauthorized",
    "reported",
    "shortened",
]


class TrellisError(Exception):
    """Base of every error Trellis raises on purpose; its text is meant for humans.

    The text is scrubbed of URL credentials: it is shown in answers, logs and the CLI, and
    is often built from a configured URL.
    """

    def __str__(self) -> str:
        return scrub_text(super().__str__())


class ConfigError(TrellisError):
    """The configuration cannot work."""


class SourceUnavailable(TrellisError):
    """An upstream system could not be read; what depends on it is unknown, not empty."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = scrub_text(source)
        self.reason = scrub_text(reason)
        super().__init__(f"{self.source} unavailable: {self.reason}")

    def __reduce__(self) -> tuple[type[SourceUnavailable], tuple[str, str]]:
        return type(self), (self.source, self.reason)


class NotFound(TrellisError):
    """A named thing does not exist: an unknown entity, a deleted MLflow run."""


class NotReady(TrellisError):
    """Nothing to serve yet: the first read has not finished and no snapshot was kept."""


class InvalidRequest(TrellisError):
    """A request that names what does not exist, such as an unknown check id."""


class InvalidQuery(TrellisError):
    """A query value that is malformed or out of range: a window, retriever ids, a ref."""


class Unauthorized(TrellisError):
    """No valid credentials came with the request."""


class Disabled(TrellisError):
    """A part of Trellis is left off, because its configuration cannot work; says why."""


class Conflict(TrellisError):
    """The current state does not allow the action, such as confirming when nothing is held."""


class TimedOut(TrellisError):
    """Work was stopped at its deadline."""


MAX_REPORTED = 20
"""Problems named in one error; the rest are counted, so an answer stays small."""

_LONGEST_NAME = 100


def reported(problems: Sequence[tuple[str, str]], *, rest: str) -> list[tuple[str, str]]:
    """The first ``MAX_REPORTED`` problems (names cut short), then one counting the rest."""
    shown = [(shortened(name, _LONGEST_NAME), message) for name, message in problems[:MAX_REPORTED]]
    if len(problems) > MAX_REPORTED:
        shown.append((rest, f"and {len(problems) - MAX_REPORTED} more problems"))
    return shown


def shortened(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending in ``...`` when cut: what a message echoes."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


class AnswerError(TrellisError):
    """Answers a blueprint cannot take: one ``(question, message)`` per problem found.

    ``problems`` holds them all; the message and ``reported`` name the first few only.
    """

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = tuple(problems)
        self.reported = reported(self.problems, rest="answers")
        super().__init__("; ".join(f"{question}: {message}" for question, message in self.reported))

    def __reduce__(self) -> tuple[type[AnswerError], tuple[tuple[tuple[str, str], ...]]]:
        return type(self), (self.problems,)

    @classmethod
    def one(cls, question: str, message: str) -> AnswerError:
        """The error for a single bad answer."""
        return cls([(question, message)])


class Busy(TrellisError):
    """Too much work is already running and waiting; the caller may retry later."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[type[Busy], tuple[str, int]]:
        return type(self), (str(self), self.retry_after)
