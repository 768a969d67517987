"""One error tree for Trellis; the API and the CLI each map it in one place.

TrellisError
├── ConfigError            settings that cannot work (names the key)
├── AnswerError            answers a blueprint cannot take (names each question)
├── SourceUnavailable      an upstream (MLflow, Prometheus, ...) failed or timed out
├── NotFound               a named thing (an entity, an MLflow run) does not exist
└── NotReady               no snapshot has been read yet and none was kept on disk
"""

from __future__ import annotations

from collections.abc import Sequence

from trellis.redact import scrub_text

__all__ = [
    "AnswerError",
    "ConfigError",
    "NotFound",
    "NotReady",
    "SourceUnavailable",
    "TrellisError",
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


class NotFound(TrellisError):
    """A named thing does not exist: an unknown entity, a deleted MLflow run."""


class NotReady(TrellisError):
    """Nothing to serve yet: the first read has not finished and no snapshot was kept."""


class AnswerError(TrellisError):
    """Answers a blueprint cannot take: one ``(question, message)`` per problem found."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{question}: {message}" for question, message in problems))

    @classmethod
    def one(cls, question: str, message: str) -> AnswerError:
        """The error for a single bad answer."""
        return cls([(question, message)])
