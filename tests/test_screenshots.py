"""The screenshots in the docs were taken with the code that renders those pages today.

`make browser` takes them and records, in docs/images/screenshots.json, the hash of the
plugin's and the test app's sources and of each image (see support/screenshots.py). A change
to those sources without new screenshots fails here, and so does an image swapped by hand.
"""

from __future__ import annotations

import json
import re

from support.screenshots import MANIFEST, REPO, file_hash, sources_hash


def test_screenshots_are_not_older_than_the_code_that_renders_them() -> None:
    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    assert manifest["screenshots"], "no screenshot is recorded"
    current = sources_hash()
    for name, recorded in manifest["screenshots"].items():
        path = MANIFEST.parent / name
        assert path.exists(), f"{name} is recorded but missing: run `make browser`"
        assert file_hash(path) == recorded["sha256"], f"{name} is not the image `make browser` took"
        assert recorded["sourcesSha256"] == current, (
            f"frontend/plugin-trellis or tests/browser/app changed after docs/images/{name} was "
            "taken: run `make browser` and commit the new screenshots"
        )


def test_every_recorded_screenshot_is_shown_in_the_docs() -> None:
    shown = set()
    for page in (REPO / "docs").rglob("*.md"):
        shown |= set(re.findall(r"\(images/([^)\s]+\.png)\)", page.read_text(encoding="utf-8")))
    recorded = set(json.loads(MANIFEST.read_text(encoding="utf-8"))["screenshots"])
    assert recorded <= shown, f"screenshots not used in docs/: {sorted(recorded - shown)}"
