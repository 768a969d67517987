"""Every YAML file of a rendered repository, read leaf by leaf by Backstage's and PyYAML's readers.

Comparing a render of ordinary answers with one of hostile answers (``1e3``, ``null``, ``0o17``)
leaf by leaf shows whether any answer changed a value's type or the files' structure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from support.backstage import parse_yaml

#: Written by Copier itself (``to_nice_yaml``) and read only by Copier and Trellis (PyYAML).
COPIER_ONLY = frozenset({".copier-answers.yml"})

Leaves = dict[tuple[Any, ...], Any]


def yaml_files(repo: Path) -> dict[str, bytes]:
    """Every ``.yaml``/``.yml`` file of ``repo`` (path → bytes), outside ``.git``."""
    return {
        p.relative_to(repo).as_posix(): p.read_bytes()
        for p in sorted(repo.rglob("*"))
        if p.suffix in {".yaml", ".yml"} and ".git" not in p.parts
    }


def leaves(value: Any, path: tuple[Any, ...] = ()) -> Leaves:
    """Every scalar of ``value`` by its path; containers stand as their shape."""
    if isinstance(value, dict):
        out: Leaves = {path: "{}"}
        for key, item in value.items():
            out.update(leaves(item, (*path, key)))
        return out
    if isinstance(value, list):
        out = {path: f"[{len(value)}]"}
        for index, item in enumerate(value):
            out.update(leaves(item, (*path, index)))
        return out
    return {path: value}


def read_both(files: dict[str, bytes]) -> dict[str, dict[str, Leaves]]:
    """Each file's leaves, as Backstage's reader (YAML 1.2) and as PyYAML (YAML 1.1) read them."""
    parsed = parse_yaml(list(files.values()))
    read: dict[str, dict[str, Leaves]] = {}
    for (name, body), documents in zip(files.items(), parsed, strict=True):
        assert all(not d["errors"] for d in documents), (name, documents)
        read[name] = {"yaml 1.1": leaves(list(yaml.safe_load_all(body)))}
        if name not in COPIER_ONLY:
            read[name]["yaml 1.2"] = leaves([d["value"] for d in documents])
    return read


def compare_renders(
    expected: dict[str, dict[str, Leaves]],
    actual: dict[str, dict[str, Leaves]],
    stand_ins: dict[Any, Any],
) -> int:
    """Assert both renders have the same leaves of the same types, each ordinary answer
    replaced by its hostile stand-in; return how many stand-ins were compared."""
    assert sorted(actual) == sorted(expected)
    compared = 0
    for name, readers in expected.items():
        for reader, found in readers.items():
            got = actual[name][reader]
            assert sorted(got, key=repr) == sorted(found, key=repr), (name, reader)
            for path, value in found.items():
                assert type(got[path]) is type(value), (name, reader, path, got[path], value)
                if value in stand_ins:
                    assert got[path] == stand_ins[value], (name, reader, path)
                    compared += 1
    return compared
