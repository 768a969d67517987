"""Reading untrusted content over HTTP: bounded in size and time, never sent to another host.

Every outbound read of a location someone else controls (a generated repository's raw files)
goes through ``read_bounded``: the answer is streamed and cut at a size cap, the whole read
(redirects, headers and body) ends at one deadline however slowly the server drips bytes,
and a redirect is followed only to the same scheme, host and port, so a server cannot point
Trellis at a metadata address or an internal host. Errors name the status and the URL
(scrubbed of credentials), never the body.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from trellis.errors import SourceUnavailable
from trellis.redact import scrub_url

__all__ = ["Answer", "ReadLimits", "read_bounded"]


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """How much one read may take: bytes of body, seconds in all, redirects followed."""

    max_bytes: int = 1_048_576
    deadline_seconds: float = 10.0
    max_redirects: int = 3


@dataclass(frozen=True, slots=True)
class Answer:
    """The final status and, for a 200, the body; other statuses' bodies are never read."""

    status: int
    url: str  # scrubbed: safe to show
    content: bytes = b""


def read_bounded(client: httpx.Client, url: str, *, limits: ReadLimits, source: str) -> Answer:
    """GET ``url`` within ``limits``; ``SourceUnavailable(source, ...)`` when it cannot.

    The body of a non-200 answer is not read: the caller gets its status only.
    """
    started = time.monotonic()
    shown = scrub_url(url)
    target = httpx.URL(url)
    for _ in range(limits.max_redirects + 1):
        remaining = limits.deadline_seconds - (time.monotonic() - started)
        if remaining <= 0:
            break
        try:
            with client.stream(
                "GET", target, follow_redirects=False, timeout=httpx.Timeout(remaining)
            ) as response:
                if response.is_redirect and response.next_request is not None:
                    target = _same_origin(url, response.next_request.url, shown, source)
                    continue
                if response.status_code != httpx.codes.OK:
                    return Answer(response.status_code, shown)
                return Answer(
                    response.status_code, shown, _body(response, started, limits, shown, source)
                )
        except httpx.TimeoutException as exc:
            raise _late(source, shown, limits) from exc
        except httpx.HTTPError as exc:
            raise SourceUnavailable(source, f"cannot read {shown} ({type(exc).__name__})") from exc
    else:
        raise SourceUnavailable(
            source, f"{shown} redirected more than {limits.max_redirects} times"
        )
    raise _late(source, shown, limits)


def _same_origin(original: str, location: httpx.URL, shown: str, source: str) -> httpx.URL:
    """The redirect target when it is on the original's scheme, host and port; else refused."""
    start = httpx.URL(original)
    if (location.scheme, location.host, location.port) != (start.scheme, start.host, start.port):
        raise SourceUnavailable(
            source,
            f"{shown} redirected to another host ({location.scheme}://{location.host}); "
            "not followed",
        )
    return location


def _body(
    response: httpx.Response, started: float, limits: ReadLimits, shown: str, source: str
) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise _too_large(source, shown, limits)
    chunks: list[bytes] = []
    size = 0
    _wait_at_most(response, started, limits)
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limits.max_bytes:
            raise _too_large(source, shown, limits)
        if not _wait_at_most(response, started, limits):
            raise _late(source, shown, limits)
        chunks.append(chunk)
    return b"".join(chunks)


def _wait_at_most(response: httpx.Response, started: float, limits: ReadLimits) -> bool:
    """Shorten the next socket read's timeout to what is left; False when nothing is.

    httpcore looks the read timeout up in the request's extensions before each read, so a
    server dripping bytes is cut at the deadline, not one whole timeout after it.
    """
    remaining = limits.deadline_seconds - (time.monotonic() - started)
    timeouts = response.request.extensions.get("timeout")
    if isinstance(timeouts, dict) and remaining > 0:
        timeouts["read"] = remaining
    return remaining > 0


def _too_large(source: str, shown: str, limits: ReadLimits) -> SourceUnavailable:
    return SourceUnavailable(source, f"{shown} is larger than {limits.max_bytes} bytes")


def _late(source: str, shown: str, limits: ReadLimits) -> SourceUnavailable:
    return SourceUnavailable(
        source, f"{shown} was not read within the {limits.deadline_seconds:g} s deadline"
    )
