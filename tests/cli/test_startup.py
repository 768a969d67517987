"""What starting ``trellis`` loads: every command, ``--help`` included, pays for its imports.

Each check runs a fresh interpreter (this process has loaded everything already) and lists
which heavy libraries it imported. They are named, not timed: a library that comes back at
import time fails here on any machine, however fast.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

HEAVY = (
    "copier",
    "fastapi",
    "httpx",
    "jsonschema",
    "kubernetes",
    "mlflow",
    "prometheus_client",
    "pydantic",
    "sqlalchemy",
    "starlette",
    "uvicorn",
    "yaml",
)
"""Libraries that only some commands use; the command line itself needs none of them."""

FOR_TEMPLATES = ("copier", "fastapi", "kubernetes", "mlflow", "prometheus_client", "sqlalchemy")
"""What writing the Software Templates (``trellis blueprints backstage``) must not load."""

_LIST_LOADED = """
import json, sys
{setup}
heavy = {heavy!r}
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
"""


def _loaded(setup: str, heavy: tuple[str, ...]) -> list[str]:
    """The modules of ``heavy`` a fresh interpreter holds after running ``setup``."""
    script = _LIST_LOADED.format(setup=setup, heavy=heavy)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert result.returncode == 0, result.stderr
    loaded: list[str] = json.loads(result.stdout.splitlines()[-1])
    return loaded


def test_the_command_line_loads_no_heavy_library():
    """``trellis --help`` imports the console script's module and nothing heavy with it."""
    assert _loaded("import trellis.cli.app", HEAVY) == []


def test_writing_the_templates_loads_no_client_or_store():
    """The templates come from the blueprints alone: no cluster, registry, store or renderer."""
    setup = (
        "from trellis.cli import wiring\n"
        "assert wiring.scaffolder(wiring.load_settings()).template_files()"
    )
    assert _loaded(setup, FOR_TEMPLATES) == []
