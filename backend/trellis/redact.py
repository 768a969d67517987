"""Keeps credentials inside the process: scrubs URLs, free text and log records of secrets.

Every URL Trellis builds for output (entity links, health reports, problems, CLI output) and
every log line passes through here. A URL loses its userinfo (``http://user:pw@host`` becomes
``http://host``) and the values of query parameters that carry secrets (``token``, ``sig``,
``X-Amz-Credential``, ...); free text has each URL in it scrubbed the same way, and each
configured secret value (tokens, passwords) replaced wherever it appears.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, unquote, urlsplit

__all__ = [
    "MASK",
    "RedactingFilter",
    "Redactor",
    "install_log_redaction",
    "scrub_text",
    "scrub_url",
    "url_base",
    "url_secrets",
]

MASK = "REDACTED"
"""What a secret value is replaced with."""

#: Query parameter names (lower case) whose values are secrets, wherever they appear.
SECRET_PARAMETERS = frozenset(
    {
        "access_token",
        "api_key",
        "apikey",
        "api-key",
        "auth",
        "authorization",
        "client_secret",
        "code",
        "credential",
        "credentials",
        "id_token",
        "key",
        "passwd",
        "password",
        "private_token",
        "pwd",
        "refresh_token",
        "secret",
        "session",
        "sig",
        "signature",
        "token",
    }
)
#: Prefixes (lower case) of secret parameter families: AWS and Google signed URLs.
SECRET_PARAMETER_PREFIXES = ("x-amz-", "x-goog-")
#: Name fragments that mark any other parameter as secret (``gitlab_token``, ``db_password``).
SECRET_FRAGMENTS = ("token", "secret", "password", "passwd", "signature", "apikey", "api_key")

#: Shorter configured values are left alone: masking ``ab`` everywhere would ruin every line.
MIN_SECRET_LENGTH = 4

#: Loggers of libraries that print request URLs at INFO or DEBUG.
NOISY_LOGGERS = ("httpx", "httpcore", "urllib3", "kubernetes", "mlflow")

# scheme://authority... up to whitespace or a quote/bracket that usually ends a URL in text.
_URL = re.compile(r"""\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s'"<>`\])}]+(?<![.,:;!?])""")
# ``user:password@`` right after ``//`` in text that the URL pattern could not parse.
_USERINFO = re.compile(r"(?<=//)[^/@\s'\"]*@")


def _is_secret_parameter(name: str) -> bool:
    lowered = name.lower()
    return (
        lowered in SECRET_PARAMETERS
        or lowered.startswith(SECRET_PARAMETER_PREFIXES)
        or any(fragment in lowered for fragment in SECRET_FRAGMENTS)
    )


def scrub_url(url: str) -> str:
    """``url`` without userinfo and with every secret query parameter's value masked.

    Anything that does not parse as a URL is returned with a ``user:pw@`` after ``//`` cut,
    so a malformed value cannot smuggle credentials past.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return _USERINFO.sub("", url)
    netloc = parts.netloc.rpartition("@")[2]
    query, fragment = _scrub_query(parts.query), _scrub_query(parts.fragment)
    if netloc == parts.netloc and query == parts.query and fragment == parts.fragment:
        return url  # nothing secret: keep it byte for byte (``sqlite:////abs/path``)
    # Assembled by hand: ``urlunsplit`` would drop the ``//`` of an empty authority.
    text = f"{parts.scheme}:" if parts.scheme else ""
    if "//" in url:
        text += f"//{netloc}"
    text += parts.path
    text += f"?{query}" if query or "?" in url else ""
    return text + (f"#{fragment}" if fragment else "")


def url_base(url: str) -> str:
    """Scheme, host, port and path of ``url``: no userinfo, no query, no fragment.

    For a base URL shown to people (a registry's label, a UI link derived from an API URL),
    where a query string means nothing and could carry a token.
    """
    scrubbed = scrub_url(url)
    return scrubbed.split("#", 1)[0].split("?", 1)[0]


def _scrub_query(query: str) -> str:
    if not query or "=" not in query:
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(_is_secret_parameter(name) for name, _ in pairs):
        return query
    return "&".join(
        f"{quote(name, safe='')}={MASK if _is_secret_parameter(name) else quote(value, safe='')}"
        for name, value in pairs
    )


def url_secrets(url: str) -> list[str]:
    """The secret values ``url`` carries: its userinfo's parts and secret parameters' values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = [unquote(part) for part in (parts.username, parts.password) if part]
    for query in (parts.query, parts.fragment):
        found += [v for k, v in parse_qsl(query, keep_blank_values=True) if _is_secret_parameter(k)]
    return [value for value in found if value]


def scrub_text(text: str) -> str:
    """``text`` with every URL in it scrubbed (log messages, exception strings)."""
    if "://" not in text:
        return text
    return _URL.sub(lambda match: scrub_url(match.group(0)), text)


class Redactor:
    """Scrubs text of URLs' secrets and of the configured secret values themselves.

    The values are what the configuration holds (API tokens, passwords in URLs, ...): they
    are replaced wherever they appear, even outside a URL.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}
        # Longest first: a secret that contains another is masked whole.
        self.secrets = tuple(sorted(values, key=lambda s: (-len(s), s)))
        self._pattern = (
            re.compile("|".join(re.escape(s) for s in self.secrets)) if self.secrets else None
        )

    def __call__(self, text: str) -> str:
        """``text`` with URLs scrubbed and known secret values masked."""
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        return scrub_text(text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message, arguments and traceback through a ``Redactor``.

    Installed on handlers, it sees every record that reaches them, whichever logger made it.
    """

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        """Scrub the record in place; never drops it."""
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: keep its raw text, scrubbed
            message = f"{record.msg} {record.args}"
        record.msg, record.args = self.redactor(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor(record.stack_info)
        return True


def install_log_redaction(redactor: Redactor, *, quiet_level: int = logging.WARNING) -> None:
    """Scrub every record on every handler now configured; quieten URL-printing libraries.

    Handlers of the root logger and of every named logger get one ``RedactingFilter``
    (replacing one installed before, so calling this again updates the secrets).
    """
    for name in NOISY_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < quiet_level:
            logger.setLevel(quiet_level)
    loggers: list[logging.Logger] = [logging.getLogger()]
    loggers += [
        logger
        for logger in list(logging.Logger.manager.loggerDict.values())
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
                handler.removeFilter(old)
            handler.addFilter(RedactingFilter(redactor))
