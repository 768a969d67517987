"""The app-config snippets of docs/backstage.md, as a test backend loads them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

__all__ = ["snippet"]

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
