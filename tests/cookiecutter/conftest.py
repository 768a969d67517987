"""The cookiecutter-data-science template and its ``ccds`` commands, shared by the session."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from support.cookiecutter import CcdsTools, clone_at


@pytest.fixture(scope="session")
def ccds_tools(tmp_path_factory: pytest.TempPathFactory) -> CcdsTools:
    """Each ``ccds`` version in its own virtualenv, made once per run for every xdist worker."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    return CcdsTools(shared / "ccds-venvs")


@pytest.fixture(scope="session")
def ccds_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One clone of the template with every tag; renders check out the tag they need."""
    return clone_at(tmp_path_factory.mktemp("ccds-template") / "ccds")


@pytest.fixture(scope="session")
def template_at(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """A clone checked out at a tag, made once per tag: what a user runs ``ccds`` on."""
    clones: dict[str, Path] = {}

    def at(tag: str) -> Path:
        if tag not in clones:
            clones[tag] = clone_at(tmp_path_factory.mktemp(f"template-{tag}") / "ccds", tag)
        return clones[tag]

    return at
