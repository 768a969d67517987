"""cookiecutter-data-science at three tags, its ``ccds`` commands, and trees to compare.

The template is the real one, from ``../shared/fixtures/cookiecutter-data-science`` (a git
bundle). Each ``ccds`` version lives in its own small virtualenv, built once per session with
uv; the template's hooks import ``ccds``, so a v2 render needs the matching one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from filelock import FileLock

from support.markers import starting
from support.tools import REPO, tool, uv

__all__ = [
    "BUNDLE",
    "CCDS_VERSIONS",
    "CHURN_ANSWERS",
    "CcdsTools",
    "Tree",
    "clone_at",
    "cookiecutter_settings",
    "run_ccds",
    "tree",
]

BUNDLE = REPO.parent / "shared" / "fixtures" / "cookiecutter-data-science" / "ccds.bundle"
CCDS_VERSIONS = ("2.2.0", "2.3.0")
#: One ccds v2 project's answers, as a team migrating from cruft would give them.
CHURN_ANSWERS = {
    "project_name": "Churn Model",
    "description": "Predicts churn.",
    "testing_framework": "pytest",
    "environment_manager": "uv",
    "dependency_file": "pyproject.toml",
}


class CcdsTools:
    """The ``ccds`` command of each version, each in a virtualenv made when first asked for."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def command(self, version: str) -> Path:
        """``ccds`` of ``version`` (``2.2.0``)."""
        venv = self.root / f"ccds-{version}"
        ccds = venv / "bin" / "ccds"
        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{venv}.lock"):  # xdist workers share the run's virtualenvs
            if not ccds.exists():
                starting("tools")
                subprocess.run(
                    [uv(), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True
                )
                subprocess.run(
                    [uv(), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
                     f"cookiecutter-data-science=={version}"],
                    check=True,
                )  # fmt: skip
        return ccds

    @property
    def pattern(self) -> str:
        """The ``entry_point`` setting: each version rendered by its own ``ccds``."""
        return str(self.root / "ccds-{version}" / "bin" / "ccds")


def clone_at(destination: Path, tag: str | None = None) -> Path:
    """A clone of the fixture's template, checked out at ``tag`` (the bundle has no branch)."""
    if not BUNDLE.is_file():
        raise AssertionError(f"the fixture {BUNDLE} is missing (see its README.md)")
    starting("tools")
    subprocess.run(["git", "clone", "--quiet", str(BUNDLE), str(destination)], check=True)
    if tag:
        subprocess.run(["git", "-C", str(destination), "checkout", "--quiet", tag], check=True)
    return destination


def run_ccds(ccds: Path, template: Path, tag: str, answers: dict[str, object], out: Path) -> Path:
    """What ``ccds`` renders for ``answers`` (given as a user config's default context)."""
    starting("tools")
    config = out.parent / f"{out.name}-config.json"
    config.write_text(
        json.dumps(
            {
                "cookiecutters_dir": str(out.parent / f"{out.name}-cc"),
                "replay_dir": str(out.parent / f"{out.name}-replay"),
                "default_context": answers,
            }
        )
    )
    out.mkdir(parents=True)
    subprocess.run(
        [str(ccds), str(template), "--checkout", tag, "--no-input", "--output-dir", str(out),
         "--config-file", str(config)],
        check=True, capture_output=True,
    )  # fmt: skip
    (made,) = out.iterdir()
    return made


def cookiecutter_command() -> str:
    """The ``cookiecutter`` command of Trellis's environment."""
    return tool("cookiecutter", install="pip install -e . (cookiecutter)")


def cookiecutter_settings(name: str, source: Path | str, **extra: object) -> str:
    """``TRELLIS_BLUEPRINTS__COOKIECUTTER`` registering one template."""
    return json.dumps({name: {"source": str(source), **extra}})


Tree = dict[str, tuple[bytes, bool]]


def tree(root: Path, *, without: tuple[str, ...] = (".cruft.json",)) -> Tree:
    """Every file under ``root`` (``.git`` left out): its content and whether it is executable."""
    return {
        path.relative_to(root).as_posix(): (path.read_bytes(), bool(path.stat().st_mode & 0o111))
        for path in sorted(root.rglob("*"))
        if path.is_file()
        and path.relative_to(root).as_posix() not in without
        and path.relative_to(root).parts[0] != ".git"
    }
