"""The browser test runs only under `make browser` (TRELLIS_BROWSER=1).

It builds a Backstage app and drives Chromium, minutes on this machine's two cores, so the
ordinary suite (`make test`) does not collect it; `make browser` and `.ci/run` do.
"""

from __future__ import annotations

import os
from pathlib import Path


def pytest_ignore_collect(collection_path: Path) -> bool | None:
    if os.environ.get("TRELLIS_BROWSER") == "1":
        return None
    return collection_path.suffix == ".py" and collection_path.name.startswith("test_")
