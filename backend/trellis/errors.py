"""One error tree for Trellis; the API and the CLI each map it in one place.

TrellisError
├── ConfigError            settings that cannot work (names the key)
├── AnswerError            answers a blueprint cannot take (names each question)
├── SourceUnavailable      an upstream (MLflow, Prometheus, ...) failed or timed out
├── NotFound               a named thing (an entity, an MLflow run) does not exist
├── NotReady               no snapshot has been read yet and none was kept on disk
└── Busy                   too much work is already waiting; try again later

Errors cross process boundaries (a render runs in a worker process): each pickles.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AnswerError",
    "Busy",
    "ConfigError",
    "NotFound",
    "NotReady",
    "SourceUnavailable",
    "TrellisError",
]


class TrellisError(Exception):
    """Base of every error Trellis raises on purpose; its text is meant for humans."""


class ConfigError(TrellisError):
    """The configuration cannot work."""


class SourceUnavailable(TrellisError):
    """An upstream system could not be read; what depends on it is unknown, not empty."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source} unavailable: {reason}")
        self.source = source
        self.reason = reason

    def __reduce__(self) -> tuple[type[SourceUnavailable], tuple[str, str]]:
        return type(self), (self.source, self.reason)


class NotFound(TrellisError):
    """A named thing does not exist: an unknown entity, a deleted MLflow run."""


class NotReady(TrellisError):
    """Nothing to serve yet: the first read has not finished and no snapshot was kept."""


class AnswerError(TrellisError):
    """Answers a blueprint cannot take: one ``(question, message)`` per problem found."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{question}: {message}" for question, message in problems))

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
