"""What an update by re-rendering does to each file: a three-way plan, decided without I/O.

The base is the template's render of the recorded version, the target its render of the new
version with the same answers, and ours the repository as its owners left it. A change made
on one side only is taken; a file changed on both sides is merged line by line (the caller
runs the merge); whatever cannot be merged is a conflict, listed with its reason, and the
owners' version is never lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, Protocol, TypeVar

__all__ = ["Action", "FileVersion", "Step", "plan_merge"]


class FileVersion(Protocol):
    """One version of a file: what the plan compares (a rendered or a checked-out file)."""

    @property
    def content(self) -> bytes:
        """The bytes."""
        ...

    @property
    def executable(self) -> bool:
        """Whether it is executable."""
        ...


F = TypeVar("F", bound=FileVersion)


class Action(StrEnum):
    """What happens to one file."""

    WRITE = "write"  # take the target's file (new, or changed upstream only)
    CHMOD = "chmod"  # only the executable bit changed upstream: ours, with the target's bit
    DELETE = "delete"  # removed upstream, untouched here
    MERGE = "merge"  # changed on both sides: merge line by line
    CONFLICT = "conflict"  # cannot be merged: ours is kept, the path is listed


@dataclass(frozen=True, slots=True)
class Step(Generic[F]):
    """One file's action; ``target`` is the new render's file where there is one."""

    path: str
    action: Action
    target: F | None = None
    reason: str = ""


def plan_merge(
    base: Mapping[str, F],
    target: Mapping[str, F],
    ours: Mapping[str, F],
    *,
    skip: frozenset[str] = frozenset(),
) -> list[Step[F]]:
    """The steps that move ``ours`` from ``base`` to ``target``, keeping local edits.

    Files in ``skip`` (cruft's ``skip`` list) and files that neither render has are left
    alone. Sorted by path.
    """
    steps: list[Step[F]] = []
    for path in sorted((set(base) | set(target)) - skip):
        step = _step(path, base.get(path), target.get(path), ours.get(path))
        if step is not None:
            steps.append(step)
    return steps


def _same(one: FileVersion | None, other: FileVersion | None) -> bool:
    if one is None or other is None:
        return one is other
    return one.content == other.content and one.executable == other.executable


def _step(path: str, base: F | None, target: F | None, ours: F | None) -> Step[F] | None:
    if _same(base, target) or _same(ours, target):
        return None  # nothing new upstream, or the repository has it already
    if _same(ours, base):
        if target is None:
            return Step(path, Action.DELETE)
        return Step(path, Action.WRITE, target)
    if target is None:
        return Step(path, Action.CONFLICT, reason="removed by the template, edited here (kept)")
    if ours is None:
        return Step(
            path,
            Action.CONFLICT,
            target,
            reason="changed by the template, deleted here (left deleted)",
        )
    if base is not None and base.content == target.content:
        # Only the executable bit changed upstream; the content edits here stay.
        return Step(path, Action.CHMOD, target)
    return Step(path, Action.MERGE, target)
