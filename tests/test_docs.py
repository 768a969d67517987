"""The TechDocs site builds strictly and documents every setting there is."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from pydantic import BaseModel

from trellis.config import Settings

REPO = Path(__file__).resolve().parents[1]


def test_mkdocs_builds_strictly(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "catalog" / "index.html").exists()
    # The architecture diagram reaches the page as a Mermaid block, not as a code listing.
    architecture = (tmp_path / "site" / "architecture" / "index.html").read_text()
    assert '<pre class="mermaid"><code>flowchart TD' in architecture
    assert "fonts.googleapis.com" not in architecture  # readable without internet access


def _variables(model: type[BaseModel], prefix: str = "TRELLIS_") -> set[str]:
    names = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= _variables(annotation, f"{prefix}{name.upper()}__")
        else:
            names.add(f"{prefix}{name.upper()}")
    return names


def test_every_setting_is_documented_and_every_documented_one_exists():
    text = (REPO / "docs" / "configuration.md").read_text()
    documented = set(re.findall(r"`(TRELLIS_[A-Z_]+)`", text))
    assert documented == _variables(Settings)


def test_every_blueprint_question_is_documented():
    import yaml

    for blueprint in sorted((REPO / "blueprints").iterdir()):
        questions = yaml.safe_load((blueprint / "copier.yml").read_text())
        page = (REPO / "docs" / "blueprints" / f"{blueprint.name}.md").read_text()
        documented = set(re.findall(r"^\| `([a-z_]+)` \|", page, re.MULTILINE))
        asked = {
            q
            for q, spec in questions.items()
            if not q.startswith("_") and spec.get("when") is not False
        }
        assert documented == asked, blueprint.name
