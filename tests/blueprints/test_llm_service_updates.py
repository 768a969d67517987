"""`trellis update` of an llm-service repository across two releases keeps its owners' edits.

A scratch blueprint source releases llm-service as 1.0.0, 1.1.0 and 1.2.0, each release
changing code, a manifest and the docs; a repository generated at 1.0.0 is edited the way its
owners would (a stricter gate, a bigger cache, a runbook line) and updated with real Copier.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from support.blueprints import LLM_VARIANTS
from support.gitrepos import blueprint_source, commit_all, generated_repo, git, release, replace_in
from trellis.cli.app import app

runner = CliRunner()
BLUEPRINT = "llm-service"
PACKAGE = "src/{{ service_slug | replace('-', '_') }}"
RELEASES = {
    "1.1.0": (
        "- The queue alert allows a longer queue.",
        {
            "deploy/base/prometheusrule.yaml.jinja": ("{{- sel }}} > 20", "{{- sel }}} > 30"),
            f"{PACKAGE}/client.py": ("timeout: float = 120.0", "timeout: float = 180.0"),
        },
    ),
    "1.2.0": (
        "- The runbook explains roll-backs in one more sentence.",
        {
            "docs/runbook.md.jinja": (
                "init container pulls it again.",
                "init container pulls it again; nothing is rebuilt.",
            ),
        },
    ),
}
#: The owners' own edits, away from the template's changes.
OWN_EDITS = {
    "params.yaml": ("min_quality: 0.6", "min_quality: 0.8"),
    "deploy/base/deployment.yaml": ("sizeLimit: 200Gi", "sizeLimit: 400Gi"),
    "docs/runbook.md": (
        "## LLMKVCacheNearlyFull\n",
        "## LLMKVCacheNearlyFull\n\nPage #legal-ml.\n",
    ),
}
LANDED = {
    "deploy/base/prometheusrule.yaml": 'inferenceservice="contract-reader"} > 30',
    "src/contract_reader/client.py": "timeout: float = 180.0",
    "docs/runbook.md": "nothing is rebuilt.",
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("llm-update")
    src = blueprint_source(root / "source", blueprint=BLUEPRINT)
    for version, (notes, edits) in RELEASES.items():
        release(src, version, notes, edits, blueprint=BLUEPRINT)
    return generated_repo(
        src, root / "contract-reader", LLM_VARIANTS["vllm-gitlab-gcp"], blueprint=BLUEPRINT
    )


def test_owners_edits_survive_an_update_across_two_releases(repo):
    for path, (old, new) in OWN_EDITS.items():
        replace_in(repo / path, old, new)
    commit_all(repo, "A stricter gate, a bigger cache, our on-call channel")

    result = runner.invoke(app, ["update", str(repo)])

    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert "llm-service 1.0.0 → 1.2.0" in out, out
    assert (
        "The queue alert allows a longer queue" in out and "roll-backs in one more sentence" in out
    )
    assert git(repo, "diff", "--name-only", "--diff-filter=U") == ""
    for path, (_, new) in OWN_EDITS.items():
        text = (repo / path).read_text()
        assert new in text and "<<<<<<<" not in text, f"the owners' edit to {path} was lost"
    for path, landed in LANDED.items():
        assert landed in (repo / path).read_text(), f"{path} misses the blueprint's change"
    answers = yaml.safe_load((repo / ".copier-answers.yml").read_text())
    assert answers["_commit"] == "1.2.0" and answers["blueprint"] == BLUEPRINT
    catalog = next(yaml.safe_load_all((repo / "catalog-info.yaml").read_text()))
    assert catalog["metadata"]["annotations"]["trellis.dev/blueprint-version"] == "1.2.0"
