"""Blueprint versions and changelogs from git, and generated repositories read from disk or HTTP.

Everything here is real: git repositories with releases and tags, Copier renders, an HTTP
server.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import yaml

from support.blueprints import VARIANTS
from support.gitrepos import blueprint_source, generated_repo, git, release, serve_directory
from support.services import free_port
from support.timing import scaled
from trellis.errors import ConfigError, SourceUnavailable
from trellis.services.updates import known_instances
from trellis.sources.blueprints import BlueprintSource
from trellis.sources.repositories import Repositories, read_instance


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch blueprint source: releases 1.0.0 and 1.1.0, a pre-release, a stray tag."""
    src = blueprint_source(tmp_path_factory.mktemp("source") / "trellis")
    release(src, "1.1.0", "- The catalog entry says who manages it.")
    release(src, "1.2.0rc1", "- A release candidate.")
    git(src, "tag", "nightly")
    return src


@pytest.fixture(scope="module")
def generated(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generated_repo(
        source,
        tmp_path_factory.mktemp("generated") / "fraud-detector",
        VARIANTS["sklearn-github-aws"],
    )


def test_versions_are_the_final_releases_oldest_first_locally_and_remotely(source):
    assert BlueprintSource(str(source)).versions("ml-model") == ["1.0.0", "1.1.0"]
    # A URL is read from a scratch clone, as for a hosted repository.
    assert BlueprintSource(source.as_uri()).versions("ml-model") == ["1.0.0", "1.1.0"]


def test_each_blueprint_counts_only_its_own_releases(source):
    """Blueprints of one source release on their own: one's versions never count for another."""
    by_blueprint = BlueprintSource(str(source)).versions_by_blueprint()
    assert set(by_blueprint) == {p.parent.name for p in source.glob("blueprints/*/blueprint.yaml")}
    assert len(by_blueprint) > 1, "the source should hold several blueprints"
    # ml-model released 1.0.0 and 1.1.0 (and a pre-release); the others only what they hold.
    assert by_blueprint.pop("ml-model") == ["1.0.0", "1.1.0"]
    for name, versions in by_blueprint.items():
        own = yaml.safe_load((source / "blueprints" / name / "blueprint.yaml").read_text())
        assert versions == [str(own["version"])], name


def test_a_source_that_cannot_be_read_is_unavailable_naming_it(tmp_path):
    missing = (tmp_path / "nowhere").as_uri()
    with pytest.raises(SourceUnavailable, match="nowhere") as error:
        BlueprintSource(missing).versions("ml-model")
    assert "git clone" in str(error.value)
    with pytest.raises(ConfigError, match="not a git repository URL"):
        BlueprintSource(f"--upload-pack=touch {tmp_path}/pwned").versions("ml-model")
    assert not (tmp_path / "pwned").exists()
    plain = tmp_path / "not-git"
    plain.mkdir()
    with pytest.raises(SourceUnavailable, match="not a git repository"):
        BlueprintSource(str(plain)).versions("ml-model")


def test_the_changelog_is_read_at_a_version(source):
    for where in (str(source), source.as_uri()):
        blueprints = BlueprintSource(where)
        assert "## 1.1.0 - 2026-12-01" in blueprints.changelog("ml-model", ref="1.1.0")
        at_first = blueprints.changelog("ml-model", ref="1.0.0")
        assert at_first.startswith("# Changelog") and "1.1.0" not in at_first
        assert blueprints.changelog("llm-service", ref="1.1.0") == ""
    assert "## 1.2.0rc1" in BlueprintSource(str(source)).changelog("ml-model")  # the checkout
    with pytest.raises(ConfigError, match="not a blueprint name"):
        BlueprintSource(str(source)).changelog("../../etc")


def test_a_generated_repository_is_read_from_its_checkout(source, generated):
    instance = read_instance(str(generated))
    assert (instance.blueprint, instance.version, instance.source) == (
        "ml-model",
        "1.0.0",
        str(source),
    )
    assert instance.entity_ref == "component:default/fraud-detector"
    assert instance.location == str(generated)


def test_a_generated_repository_is_read_over_http(source, generated):
    with serve_directory(generated) as url:
        with httpx.Client(timeout=scaled(5)) as client:
            instance = read_instance(url, client=client)
        again = read_instance(url + "/")  # without a client of the caller's
    assert replace(again, location=url) == instance
    assert (instance.blueprint, instance.version, instance.source) == (
        "ml-model",
        "1.0.0",
        str(source),
    )
    assert instance.entity_ref == "component:default/fraud-detector"
    assert instance.location == url


@pytest.mark.parametrize("over_http", [False, True], ids=["checkout", "http"])
def test_malformed_or_missing_files_are_refused_naming_the_location(generated, tmp_path, over_http):
    def location(repo: Path) -> str:
        return repo_urls[repo] if over_http else str(repo)

    broken = tmp_path / "broken"
    shutil.copytree(generated, broken, ignore=shutil.ignore_patterns(".git"))
    (broken / ".copier-answers.yml").write_text("_commit: 1.0.0\nblueprint: [ml-model\n")
    bad_catalog = tmp_path / "bad-catalog"
    shutil.copytree(generated, bad_catalog, ignore=shutil.ignore_patterns(".git"))
    (bad_catalog / "catalog-info.yaml").write_text("kind: Component\nmetadata: {name: x\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    no_catalog = tmp_path / "no-catalog"
    shutil.copytree(generated, no_catalog, ignore=shutil.ignore_patterns(".git"))
    (no_catalog / "catalog-info.yaml").unlink()

    with serve_directory(tmp_path) as base:
        repo_urls = {
            repo: f"{base}/{repo.name}" for repo in (broken, bad_catalog, empty, no_catalog)
        }
        with pytest.raises(ConfigError) as error:
            read_instance(location(broken))
        assert location(broken) in str(error.value)
        assert ".copier-answers.yml is not valid YAML" in str(error.value)
        assert "line 2" in str(error.value)
        with pytest.raises(ConfigError, match=r"catalog-info\.yaml is not valid YAML") as error:
            read_instance(location(bad_catalog))
        assert location(bad_catalog) in str(error.value)
        with pytest.raises(ConfigError, match=r"no \.copier-answers\.yml") as error:
            read_instance(location(empty))
        assert location(empty) in str(error.value)
        assert read_instance(location(no_catalog)).entity_ref is None


def test_an_unreachable_server_is_unavailable_not_a_crash():
    with pytest.raises(SourceUnavailable, match=r"cannot read \.copier-answers\.yml"):
        read_instance(f"http://127.0.0.1:{free_port()}/acme/x/main")


def test_known_instances_reports_each_unreadable_repository_as_a_problem(generated, tmp_path):
    instances, problems = known_instances([str(generated), str(tmp_path / "gone")], Repositories())
    assert [i.entity_ref for i in instances] == ["component:default/fraud-detector"]
    assert [location for location, _ in problems] == [str(tmp_path / "gone")]
    assert "no such directory" in problems[0][1]
