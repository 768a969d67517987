"""Whether this test environment satisfies what a generated project declares.

Generated projects that need PyTorch are run with this environment's interpreter instead of a
fresh virtualenv (a fresh one would download a multi-gigabyte PyTorch build): first check that
every requirement they declare is installed here, in a version they accept.
"""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

from packaging.requirements import Requirement


def unmet_requirements(pyproject: Path, extras: tuple[str, ...] = ()) -> list[str]:
    """The requirements of ``pyproject`` (and its ``extras``) this environment does not meet."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    wanted = list(project.get("dependencies", []))
    for extra in extras:
        wanted += project.get("optional-dependencies", {}).get(extra, [])
    unmet = []
    for text in wanted:
        requirement = Requirement(text)
        if requirement.marker and not requirement.marker.evaluate():
            continue
        try:
            installed = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            unmet.append(f"{text} (not installed)")
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            unmet.append(f"{text} (installed: {installed})")
    return unmet
