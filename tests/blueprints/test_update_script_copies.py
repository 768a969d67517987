"""Every blueprint ships ml-model's weekly update script as it is, and executable.

Copier takes a file's executable bit from the template's git index, where a symbolic link
has none: a linked script renders without it, and the weekly workflow's
`scripts/blueprint-update.sh` then fails with "Permission denied". So each blueprint holds a
copy of the script, and this test keeps every copy identical to ml-model's, in the template
and in a render.
"""

from __future__ import annotations

import pytest

from support.blueprints import BLUEPRINTS, REPO, Renders

SCRIPT = "scripts/blueprint-update.sh"
ORIGINAL = REPO / "blueprints" / "ml-model" / "template" / SCRIPT
COPIES = sorted(
    name for name in BLUEPRINTS if (REPO / "blueprints" / name / "template" / SCRIPT).exists()
)


@pytest.mark.parametrize("blueprint", COPIES)
def test_the_update_script_is_ml_models_and_renders_executable(
    blueprint: str, renders: Renders
) -> None:
    copy = REPO / "blueprints" / blueprint / "template" / SCRIPT
    assert not copy.is_symlink(), "a linked script renders without its executable bit"
    assert copy.read_bytes() == ORIGINAL.read_bytes()
    _, _, repo = renders.get(blueprint, sorted(BLUEPRINTS[blueprint])[0])
    shipped = repo / SCRIPT
    assert shipped.read_bytes() == ORIGINAL.read_bytes()
    assert shipped.stat().st_mode & 0o111 == 0o111, oct(shipped.stat().st_mode)


def test_every_blueprint_with_a_weekly_update_ships_the_script() -> None:
    assert {"ml-model", "llm-service", "edge-finetune"} <= set(COPIES)
