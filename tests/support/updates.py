"""One road for the "an update across two releases keeps the owners' edits" tests.

A scratch blueprint source (this checkout's blueprints in a new git repository) releases the
blueprint at 1.0.0 and then each of ``releases``; a repository generated at 1.0.0 takes the
owners' edits, is committed, and ``trellis update`` moves it to the newest release with real
git and real Copier. What every such test asserts is asserted here; each test adds what its
blueprint's releases bring.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from support.gitrepos import blueprint_source, commit_all, generated_repo, git, release, replace_in
from trellis.cli.app import app

__all__ = ["Edits", "update_keeping_edits"]

Edits = Mapping[str, tuple[str, str]]
"""``{path: (old text, new text)}``: a template file's change, or an owner's."""


def update_keeping_edits(
    root: Path,
    *,
    blueprint: str,
    answers: Mapping[str, Any],
    releases: Mapping[str, tuple[str, Edits]],
    own_edits: Edits,
    landed: Mapping[str, str],
) -> Path:
    """Release, generate at 1.0.0, edit, update; assert the edits stayed and the changes came.

    ``releases`` maps each version to its changelog line and its template edits (in order);
    ``landed`` maps a rendered path to a text the releases must have brought into it.
    """
    src = blueprint_source(root / "source", blueprint=blueprint)
    for version, (notes, edits) in releases.items():
        release(src, version, notes, dict(edits), blueprint=blueprint)
    repo = generated_repo(src, root / "repo", dict(answers), blueprint=blueprint)
    for path, (old, new) in own_edits.items():
        replace_in(repo / path, old, new)
    commit_all(repo, "The owners' own edits")

    result = CliRunner().invoke(app, ["update", str(repo)])

    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    newest = list(releases)[-1]
    assert f"{blueprint} 1.0.0 → {newest}" in out, out
    for notes, _ in releases.values():
        assert notes.removeprefix("- ") in out, notes
    assert yaml.safe_load((repo / ".copier-answers.yml").read_text())["_commit"] == newest
    assert git(repo, "diff", "--name-only", "--diff-filter=U") == ""
    for path, (_, new) in own_edits.items():
        text = (repo / path).read_text()
        assert new in text, f"the owners' edit to {path} was lost"
        assert "<<<<<<<" not in text, path
    for path, text in landed.items():
        assert text in (repo / path).read_text(), f"{path} misses the blueprint's change"
    return repo
