"""Whether this interpreter can run a generated project: every requirement it declares met.

Generated projects that need torch run with the test suite's own interpreter (a fresh venv
would download a CUDA build of torch of several GB): first check that everything the
project's ``pyproject.toml`` asks for, with the chosen extras, is installed here at a version
it accepts.
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement


def unmet_requirements(repo: Path, extras: tuple[str, ...] = ()) -> list[str]:
    """The requirements of ``repo``'s ``pyproject.toml`` (and ``extras``) not met here."""
    project = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = list(project.get("dependencies", []))
    for extra in extras:
        wanted += project.get("optional-dependencies", {})[extra]
    unmet = []
    for text in wanted:
        requirement = Requirement(text)
        if requirement.marker and not requirement.marker.evaluate():
            continue
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            unmet.append(f"{text} (not installed)")
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            unmet.append(f"{text} (installed: {installed})")
    return unmet


def assert_requirements_met(repo: Path, extras: tuple[str, ...] = ()) -> None:
    """Fail listing what is missing, with the way to install it."""
    unmet = unmet_requirements(repo, extras)
    assert not unmet, (
        f"this environment cannot run {repo.name}; missing or wrong versions: {unmet}. "
        "Install the test extras of Trellis: pip install -e '.[test]'"
    )
