"""The three-way plan of an update by re-rendering: local edits are never lost."""

from __future__ import annotations

from trellis.blueprints.merge import Action, plan_merge
from trellis.ports import RenderedFile


def _files(**contents: str | tuple[str, bool]) -> dict[str, RenderedFile]:
    found = {}
    for name, value in contents.items():
        text, executable = value if isinstance(value, tuple) else (value, False)
        path = name.replace("__", "/")
        found[path] = RenderedFile(path, text.encode(), executable)
    return found


def test_each_case_of_a_file_gets_its_step() -> None:
    base = _files(same="a", upstream="a", both="a", gone="a", gone_edited="a", deleted_here="a",
                  deleted_here_changed="a", mode=("a", False), agreed="a")  # fmt: skip
    target = _files(same="a", upstream="b", both="b", deleted_here="a", deleted_here_changed="b",
                    mode=("a", True), added="new", added_clash="new", agreed="b")  # fmt: skip
    ours = _files(same="a", upstream="a", both="c", gone="a", gone_edited="c", mode=("x", False),
                  added_clash="mine", agreed="b", own="own")  # fmt: skip
    steps = {step.path: step for step in plan_merge(base, target, ours)}
    assert {path: step.action for path, step in steps.items()} == {
        "upstream": Action.WRITE,
        "both": Action.MERGE,
        "gone": Action.DELETE,
        "gone_edited": Action.CONFLICT,
        "deleted_here_changed": Action.CONFLICT,
        "mode": Action.CHMOD,
        "added": Action.WRITE,
        "added_clash": Action.MERGE,
    }
    assert steps["mode"].target == RenderedFile("mode", b"a", True)  # the new bit, for ours
    assert "edited here (kept)" in steps["gone_edited"].reason
    assert "deleted here (left deleted)" in steps["deleted_here_changed"].reason


def test_skipped_paths_are_never_touched() -> None:
    base, target = _files(keep="a"), _files(keep="b")
    assert plan_merge(base, target, base, skip=frozenset({"keep"})) == []
