"""The architecture diagram in docs/architecture.md is the import graph, so it cannot drift.

Each box of the Mermaid diagram names the modules it stands for (``%% box: name = modules``
lines); each solid arrow is an import between two boxes. The test builds the real import graph
with grimp (the library import-linter uses), folds it into the same boxes and compares: an
arrow the code lacks, or an import the diagram lacks, fails with the modules that cause it.
A box listed as ``%% shared:`` (errors, the scrubber, the version) may be imported by every
other box without an arrow, and must itself import nothing outside it. Dotted arrows are data
flow to systems outside the package and are checked only for their ends.
"""

from __future__ import annotations

import re
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "architecture.md"

_BOX = re.compile(r"^\s*%% box: (\w+) = (.+)$", re.MULTILINE)
_EXTERNAL = re.compile(r"^\s*%% outside: (.+)$", re.MULTILINE)
_SHARED = re.compile(r"^\s*%% shared: (\w+)$", re.MULTILINE)
_IMPORT = re.compile(r"^\s*(\w+)\s*-->\s*(\w+)\s*$", re.MULTILINE)
_FLOW = re.compile(r"^\s*(\w+)\s*-\.(?:[^.]*)\.->\s*(\w+)\s*$", re.MULTILINE)


def _diagram() -> str:
    blocks = re.findall(r"```mermaid\n(.*?)```", PAGE.read_text(), re.DOTALL)
    assert len(blocks) == 1, "docs/architecture.md holds exactly one Mermaid diagram"
    return str(blocks[0])


def _boxes(diagram: str) -> dict[str, tuple[str, ...]]:
    return {name: tuple(m.split()) for name, m in _BOX.findall(diagram)}


def _box_of(module: str, boxes: dict[str, tuple[str, ...]]) -> str | None:
    """The box whose longest listed prefix matches ``module``."""
    best: tuple[int, str] | None = None
    for name, prefixes in boxes.items():
        for prefix in prefixes:
            # The root package stands for itself only (its __init__), not for everything.
            inside = module.startswith(prefix + ".") and prefix != "trellis"
            if (module == prefix or inside) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), name)
    return best[1] if best else None


def _imports(boxes: dict[str, tuple[str, ...]]) -> dict[tuple[str, str], list[str]]:
    graph = grimp.build_graph("trellis")
    found: dict[tuple[str, str], list[str]] = {}
    for module in sorted(graph.modules):
        source = _box_of(module, boxes)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            target = _box_of(imported, boxes)
            if source and target and source != target:
                found.setdefault((source, target), []).append(f"{module} -> {imported}")
    return found


def test_every_module_sits_in_exactly_one_box():
    boxes = _boxes(_diagram())
    graph = grimp.build_graph("trellis")
    homeless = sorted(m for m in graph.modules if _box_of(m, boxes) is None)
    assert not homeless, f"modules in no box of docs/architecture.md: {homeless}"
    listed = [prefix for prefixes in boxes.values() for prefix in prefixes]
    assert len(listed) == len(set(listed)), "a module prefix is listed in two boxes"
    missing = sorted(p for p in listed if p not in graph.modules)
    assert not missing, f"boxes list modules that do not exist: {missing}"


def test_the_arrows_are_the_imports():
    diagram = _diagram()
    boxes = _boxes(diagram)
    shared = set(_SHARED.findall(diagram))
    drawn = set(_IMPORT.findall(diagram))
    found = _imports(boxes)
    upward = {pair: found[pair][:3] for pair in sorted(found) if pair[0] in shared}
    assert not upward, f"a shared box imports another box: {upward}"
    needed = {pair for pair in found if pair[1] not in shared}
    undrawn = {pair: found[pair][:3] for pair in sorted(needed - drawn)}
    assert not undrawn, f"imports the diagram does not draw (with examples): {undrawn}"
    unused = sorted(drawn - needed)
    assert not unused, f"arrows no import stands behind: {unused}"


def test_data_flows_join_known_boxes_and_outside_systems():
    diagram = _diagram()
    known = set(_boxes(diagram))
    for line in _EXTERNAL.findall(diagram):
        known |= set(line.split())
    flows = _FLOW.findall(diagram)
    assert flows, "the diagram shows how data flows in and out"
    strangers = sorted({end for flow in flows for end in flow} - known)
    assert not strangers, f"data flows name boxes that are not declared: {strangers}"
