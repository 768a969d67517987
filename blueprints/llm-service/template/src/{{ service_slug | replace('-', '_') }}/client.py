"""A small client for the service's OpenAI-compatible API: whole answers, or streamed ones.

The base model answers to the served model name and each LoRA adapter to its own name (the
`model` field). `OPENAI_BASE_URL` (for example `http://host:8080/v1`) and `OPENAI_API_KEY`
configure `Client.from_env()`, as they configure OpenAI's own SDK.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx

from . import project

Message = dict[str, str]


class ServiceError(Exception):
    """The service answered with an error or with something that is not the OpenAI format."""


@dataclass(frozen=True)
class Answer:
    """A whole answer: its text, and the token counts the server reported (0 when it did not)."""

    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class Timing:
    """A streamed answer, timed: seconds to the first token, chunks received and total seconds."""

    text: str = ""
    time_to_first_token: float | None = None
    chunks: int = 0
    seconds: float = 0.0
    parts: list[str] = field(default_factory=list)

    @property
    def tokens_per_second(self) -> float:
        """Chunks after the first one per second of generation (servers stream one token each)."""
        generating = self.seconds - (self.time_to_first_token or 0.0)
        return (self.chunks - 1) / generating if self.chunks > 1 and generating > 0 else 0.0


class Client:
    """Chat completions against `base_url` (which ends in `/v1`)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            headers=headers,
            timeout=timeout,
            transport=transport,
        )

    @classmethod
    def from_env(cls, **kwargs) -> Client:
        """A client for `OPENAI_BASE_URL` (required) with `OPENAI_API_KEY` (optional)."""
        base_url = os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise ServiceError("set OPENAI_BASE_URL to the service's /v1 URL")
        return cls(base_url, api_key=os.environ.get("OPENAI_API_KEY"), **kwargs)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def chat(
        self,
        messages: list[Message],
        *,
        model: str = project.SERVED_MODEL_NAME,
        max_tokens: int = 128,
        temperature: float = 0.0,
    ) -> Answer:
        """One whole answer."""
        body = self._body(messages, model, max_tokens, temperature, stream=False)
        response = self._http.post("chat/completions", json=body)
        data = self._json(response)
        try:
            text = data["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise ServiceError(f"not a chat completion: {str(data)[:200]}") from exc
        usage = data.get("usage") or {}
        return Answer(
            text=text,
            model=str(data.get("model", model)),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
        )

    def stream(
        self,
        messages: list[Message],
        *,
        model: str = project.SERVED_MODEL_NAME,
        max_tokens: int = 128,
        temperature: float = 0.0,
    ) -> Iterator[str]:
        """The answer's text as the server streams it, piece by piece."""
        body = self._body(messages, model, max_tokens, temperature, stream=True)
        with self._http.stream("POST", "chat/completions", json=body) as response:
            if response.status_code >= 400:
                response.read()
                self._json(response)
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                payload = line[len("data:") :].strip()
                if payload == "[DONE]":
                    return
                try:
                    chunk = json.loads(payload)
                except json.JSONDecodeError as exc:
                    raise ServiceError(f"not a stream chunk: {payload[:200]}") from exc
                if "error" in chunk:
                    raise ServiceError(f"the service failed mid-stream: {chunk['error']}")
                for choice in chunk.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        yield piece

    def timed(self, messages: list[Message], **kwargs) -> Timing:
        """A streamed answer with its time to first token and generation rate."""
        timing = Timing()
        start = time.perf_counter()
        for piece in self.stream(messages, **kwargs):
            if timing.time_to_first_token is None:
                timing.time_to_first_token = time.perf_counter() - start
            timing.chunks += 1
            timing.parts.append(piece)
        timing.seconds = time.perf_counter() - start
        timing.text = "".join(timing.parts)
        return timing

    @staticmethod
    def _body(
        messages: list[Message], model: str, max_tokens: int, temperature: float, *, stream: bool
    ) -> dict[str, object]:
        return {
            "model": model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": stream,
        }

    @staticmethod
    def _json(response: httpx.Response) -> dict:
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code >= 400:
            detail = data.get("error", data) if isinstance(data, dict) else response.text[:200]
            raise ServiceError(f"HTTP {response.status_code}: {detail}")
        if not isinstance(data, dict):
            raise ServiceError(f"not JSON: {response.text[:200]}")
        return data
