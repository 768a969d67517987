"""The app-config snippets of docs/backstage.md, as a test backend loads them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = ["holds", "snippet"]

DOC = Path(__file__).resolve().parents[2] / "docs" / "backstage.md"


def snippet(name: str, address: str, backstage: str | None = None) -> dict[str, Any]:
    """The YAML under ``<!-- snippet: name -->``, with Trellis's documented host at ``address``.

    ``backstage``, when given, replaces the documented ``https://backstage.example.com``.
    """
    text = DOC.read_text()
    match = re.search(rf"<!-- snippet: {name} -->\n```yaml\n(.*?)```", text, re.S)
    assert match, f"docs/backstage.md has no snippet {name!r}"
    body = match.group(1).replace("trellis.internal:8080", address)
    if backstage is not None:
        body = body.replace("https://backstage.example.com", backstage)
    config: dict[str, Any] = yaml.safe_load(body)
    return config


def holds(config: Any, documented: Any, *, lists_may_grow: bool = False) -> bool:
    """Whether ``config`` has every key and value of ``documented`` (a docs snippet).

    Lists must be equal, or with ``lists_may_grow`` hold every documented entry (a merged
    configuration adds its own).
    """
    if isinstance(documented, Mapping):
        return isinstance(config, Mapping) and all(
            key in config and holds(config[key], value, lists_may_grow=lists_may_grow)
            for key, value in documented.items()
        )
    if lists_may_grow and isinstance(documented, list):
        return isinstance(config, list) and all(item in config for item in documented)
    return bool(config == documented)
