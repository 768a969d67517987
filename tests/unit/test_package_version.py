"""Trellis's version comes from files in the tree: installed metadata, else pyproject.toml."""

import tomllib
from pathlib import Path

import trellis

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_a_source_tree_that_is_not_installed_gives_pyproject_s_version():
    expected = tomllib.loads(PYPROJECT.read_text())["project"]["version"]
    assert trellis._tree_version() == expected != "0.0.0"


def test_the_version_is_pyproject_s_whether_installed_or_not():
    assert trellis.__version__ == tomllib.loads(PYPROJECT.read_text())["project"]["version"]
