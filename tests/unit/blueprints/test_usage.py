"""Which blueprint versions repositories use: versions behind, the scorecard fact, counts."""

from __future__ import annotations

import pytest

from trellis.blueprints import (
    blueprint_fact,
    minor_versions_behind,
    newer_releases,
    usage_by_version,
    versions_behind,
)
from trellis.model import BlueprintInstance

VERSIONS = ["0.1.0", "0.2.0", "0.10.0", "1.0.0"]


def instance(version: str, blueprint: str = "ml-model", name: str = "x") -> BlueprintInstance:
    return BlueprintInstance(
        location=f"/repos/{name}",
        blueprint=blueprint,
        version=version,
        source="https://git.example.invalid/trellis.git",
        entity_ref=f"component:default/{name}",
    )


@pytest.mark.parametrize(
    ("version", "behind"),
    [
        ("1.0.0", 0),
        ("0.10.0", 1),
        ("0.2.0", 2),  # 0.10.0 is newer than 0.2.0: versions, not strings
        ("0.1.0", 3),
        ("v0.1.0", 3),  # the same release written with a v
        ("0.1.0-3-gabc1234", None),  # a commit after a tag is not a release
        ("0.3.0", None),  # not a tag of this source
        ("deadbeef", None),
    ],
)
def test_versions_behind_counts_newer_releases_of_known_versions_only(version, behind):
    assert versions_behind(version, VERSIONS) == behind


def test_a_describe_version_counts_from_its_base_tag():
    assert newer_releases("0.2.0-3-gabc1234", VERSIONS) == ["0.10.0", "1.0.0"]
    assert newer_releases("deadbeef", VERSIONS) == []


def test_the_blueprint_fact_has_the_scorecard_shape():
    assert blueprint_fact(instance("0.2.0"), VERSIONS) == {
        "blueprint": "ml-model",
        "version": "0.2.0",
        "latestVersion": "1.0.0",
        "versionsBehind": 2,
        "minorVersionsBehind": 2,
    }
    unknown = blueprint_fact(instance("0.2.0-1-gabc1234"), VERSIONS)
    assert unknown["versionsBehind"] is None and unknown["minorVersionsBehind"] is None
    assert unknown["latestVersion"] == "1.0.0"
    assert blueprint_fact(instance("0.1.0"), [])["latestVersion"] is None


def test_usage_counts_repositories_per_version_newest_first():
    instances = [
        instance("0.2.0", name="a"),
        instance("0.10.0", name="b"),
        instance("0.2.0", name="c"),
        instance("0.2.0-2-gabc1234", name="d"),
        instance("deadbeef", name="e"),
        instance("1.0.0", blueprint="llm-service", name="f"),
    ]
    usage = usage_by_version(instances)
    assert list(usage) == ["llm-service", "ml-model"]
    assert list(usage["ml-model"].items()) == [
        ("0.10.0", 1),
        ("0.2.0-2-gabc1234", 1),
        ("0.2.0", 2),
        ("deadbeef", 1),
    ]
    assert usage["llm-service"] == {"1.0.0": 1}
    assert usage_by_version([]) == {}


def test_patch_releases_do_not_count_as_minor_versions_behind():
    releases = ["0.1.0", "0.2.0", "0.2.1", "0.3.0", "0.3.4", "1.0.0"]
    assert minor_versions_behind("0.3.0", releases) == 1
    assert minor_versions_behind("0.2.1", releases) == 2
    assert minor_versions_behind("1.0.0", releases) == 0
    assert minor_versions_behind("0.9.0", releases) is None
