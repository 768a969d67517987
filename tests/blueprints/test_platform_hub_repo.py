"""A platform-hub repository's own files: catalog entry, TechDocs, README and the update job.

The catalog entry names the blueprint and its version, the owner and the Git host's slug;
TechDocs' navigation lists pages that exist and its theme loads no Google Fonts; the README
and the docs say why the Kubernetes layer is Kustomize and how a region is added; the weekly
blueprint update ships with the same script as every other blueprint, on the chosen CI
system. Backstage's fragment reads Trellis's catalog with the keys docs/backstage.md
documents (and a real Backstage loads in tests/e2e/test_docs_snippets.py), through the
entity provider or the url location.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from support.doc_snippets import holds, snippet

Variant = tuple[str, dict[str, Any], Path]


def answers_of(repo: Path) -> dict[str, Any]:
    return dict(yaml.safe_load((repo / ".copier-answers.yml").read_text()))


def test_the_catalog_entry_names_the_blueprint_the_owner_and_the_repository(
    hub_variant: Variant,
) -> None:
    repo = hub_variant[2]
    answers = answers_of(repo)
    entity = yaml.safe_load((repo / "catalog-info.yaml").read_text())
    assert entity["kind"] == "Component" and entity["spec"]["type"] == "platform"
    assert entity["metadata"]["name"] == answers["hub_name"]
    assert entity["spec"]["owner"] == answers["hub_team"]
    annotations = entity["metadata"]["annotations"]
    assert annotations["trellis.dev/blueprint"] == "platform-hub"
    assert annotations["trellis.dev/blueprint-version"] == str(answers["_commit"])
    host = {"github": "github.com", "gitlab": "gitlab.com"}[answers["hub_ci_provider"]]
    assert annotations[f"{host}/project-slug"] == answers["hub_repo_path"]
    assert annotations["backstage.io/techdocs-ref"] == "dir:."
    assert entity["metadata"]["links"][0]["url"] == f"https://{answers['hub_registry_host']}"


def test_techdocs_readme_and_the_reasons_are_there(hub_variant: Variant) -> None:
    repo = hub_variant[2]
    answers = answers_of(repo)
    mkdocs = yaml.safe_load((repo / "mkdocs.yml").read_text())
    pages = [page for entry in mkdocs["nav"] for page in entry.values()]
    assert pages and all((repo / "docs" / page).is_file() for page in pages)
    # The same setting keeps Google Fonts out of the other blueprints' built sites.
    assert mkdocs["theme"] == {"name": "material", "font": False}, "offline readers would wait"
    readme = (repo / "README.md").read_text()
    overview = (repo / "docs" / "index.md").read_text()
    for text in (readme, overview):
        assert "## Why Kustomize" in text and "no templating engine at apply time" in text
    operations = (repo / "docs" / "operations.md").read_text()
    assert "## The order to apply" in operations and "## Adding a region" in operations
    assert "platform-spoke" in operations and "TRELLIS_KUBERNETES__CONTEXTS" in operations
    assert f"{answers['hub_name']}-trellis-clusters" in operations
    assert not list(repo.rglob("*.jinja")), "every template was rendered"


def test_the_weekly_blueprint_update_runs_on_the_chosen_ci(hub_variant: Variant) -> None:
    """The script itself is checked with every blueprint's in test_update_script_copies.py."""
    repo = hub_variant[2]
    if answers_of(repo)["hub_ci_provider"] == "github":
        workflow = yaml.safe_load((repo / ".github/workflows/blueprint-update.yml").read_text())
        (step,) = [
            s for s in workflow["jobs"]["update"]["steps"] if "run" in s and "update" in s["run"]
        ]
        assert step["run"] == "scripts/blueprint-update.sh github"
        assert not (repo / ".gitlab-ci.yml").exists()
    else:
        pipeline = yaml.safe_load((repo / ".gitlab-ci.yml").read_text())
        assert "scripts/blueprint-update.sh gitlab" in pipeline["blueprint-update"]["script"]
        assert not (repo / ".github").exists()


def test_backstage_reads_trellis_the_way_the_answers_say(hub_variant: Variant) -> None:
    """The provider by default, with the documented keys; the url location when answered."""
    repo = hub_variant[2]
    answers = answers_of(repo)
    trellis_url = answers["hub_trellis_url"]
    host = trellis_url.split("://", 1)[1]
    text = (repo / "backstage" / "app-config.trellis.yaml").read_text()
    config = yaml.safe_load(text)
    header = text.split("\nproxy:", 1)[0]
    assert "hub_backstage_catalog" in header and "url-location" in header
    assert config["proxy"]["endpoints"]["/trellis"]["target"] == trellis_url
    assert config["trellis"]["token"] == "${TRELLIS_API_TOKEN}"
    # The scaffolder module's keys, whichever reads the catalog.
    assert holds(config, snippet("scaffolder", host))
    operations = (repo / "docs" / "operations.md").read_text()
    if answers["hub_backstage_catalog"] == "provider":
        documented = snippet("provider", host)
        assert holds(config, documented)
        assert config["trellis"]["catalog"] == {
            **documented["trellis"]["catalog"],
            "confirmEmptyAfter": {"hours": 1},
        }
        assert "catalog" not in config and "backend" not in config
        assert "TRELLIS_CATALOG_TOKEN" not in text and "?token=" not in text
        assert "@trellis/plugin-catalog-backend-module-trellis" in header
        assert "@trellis/plugin-catalog-backend-module-trellis" in operations
    else:
        documented = snippet("token", host)
        assert {k: config[k] for k in documented} == documented
        assert "catalog" not in config["trellis"]
        assert "TRELLIS_CATALOG_TOKEN" in operations
