"""Blueprint currency: versions behind, and a safe link to the scheduled update's request."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from trellis.blueprints import Release
from trellis.blueprints.currency import UpdateRequest, currency_answer, update_request
from trellis.model import BlueprintInstance

GITHUB = "github.com/project-slug"
GITLAB = "gitlab.com/project-slug"
VERSIONS = ["1.0.0", "1.1.0", "1.2.0"]


def instance(version: str = "1.0.0", **slugs: str) -> BlueprintInstance:
    keys = {"github": GITHUB, "gitlab": GITLAB}
    return BlueprintInstance(
        location="/repos/fraud-detector",
        blueprint="ml-model",
        version=version,
        source="https://git.example.invalid/trellis.git",
        entity_ref="component:default/fraud-detector",
        project_slugs=tuple((keys[host], slug) for host, slug in slugs.items()),
    )


def test_github_links_a_pull_request_search_for_the_update_branch():
    link = update_request([(GITHUB, "acme/fraud-detector")], "1.2.0")
    assert link == UpdateRequest(
        host="github",
        branch="blueprint-update/1.2.0",
        url="https://github.com/acme/fraud-detector/pulls?q=is%3Apr+head%3Ablueprint-update%2F1.2.0",
    )


def test_gitlab_links_merge_requests_from_the_branch_in_any_state_and_subgroups():
    link = update_request([(GITLAB, "ml/fraud/detector")], "1.2.0")
    assert isinstance(link, UpdateRequest)
    parts = urlsplit(link.url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "gitlab.com",
        "/ml/fraud/detector/-/merge_requests",
    )
    assert parse_qs(parts.query) == {
        "scope": ["all"],
        "state": ["all"],
        "source_branch": ["blueprint-update/1.2.0"],
    }


def test_github_wins_when_an_entity_names_both_hosts():
    link = update_request([(GITLAB, "ml/x"), (GITHUB, "acme/x")], "1.2.0")
    assert isinstance(link, UpdateRequest) and link.host == "github"


@pytest.mark.parametrize(
    ("slugs", "version", "why"),
    [
        ([(GITHUB, "../../evil.example/x")], "1.2.0", "not a repository path"),
        ([(GITHUB, "acme/../../x")], "1.2.0", "not a repository path"),
        ([(GITHUB, "acme/x/extra")], "1.2.0", "owner/name"),
        ([(GITHUB, "acme/x?q=1#frag")], "1.2.0", "not a repository path"),
        ([(GITHUB, "acme/x y")], "1.2.0", "not a repository path"),
        ([(GITHUB, "//evil.example/x")], "1.2.0", "not a repository path"),
        ([(GITHUB, "acme/%2e%2e")], "1.2.0", "not a repository path"),
        ([(GITLAB, "group/./x")], "1.2.0", "group[/subgroup]/name"),
        ([(GITHUB, "acme/x")], "1.2.0&q=is:open", "cannot name a branch"),
        ([(GITHUB, "acme/x")], "../1.2.0", "cannot name a branch"),
        ([(GITHUB, "acme/x")], "1..2", "cannot name a branch"),
        ([("bitbucket.org/project-slug", "acme/x")], "1.2.0", "no `github.com/project-slug`"),
        ([], "1.2.0", "annotation naming its repository"),
    ],
)
def test_hostile_slugs_and_versions_give_no_link_but_a_reason(slugs, version, why):
    reason = update_request(slugs, version)
    assert isinstance(reason, str)
    assert why in reason


@pytest.mark.parametrize("slug", ["acme/x", "a-b_c.d/e.f-g_h", "Acme/.github", "acme/...x"])
def test_every_link_stays_on_the_host_and_path_it_names(slug):
    link = update_request([(GITHUB, slug)], "1.2.0+local.1")
    assert isinstance(link, UpdateRequest), link
    parts = urlsplit(link.url)
    assert (parts.scheme, parts.netloc) == ("https", "github.com")
    assert parts.path == f"/{slug}/pulls"
    assert parse_qs(parts.query) == {"q": ["is:pr head:blueprint-update/1.2.0+local.1"]}
    assert "+local" not in parts.query  # the version's + is encoded, not a space


def test_a_repository_behind_has_the_newer_releases_and_the_link():
    releases = [Release("1.2.0", "2026-12-01", "- Limits."), Release("1.1.0", None, "- Owner.")]
    answer = currency_answer(instance(github="acme/fraud-detector"), VERSIONS, releases)
    assert answer["currentVersion"] == "1.0.0"
    assert (answer["latestVersion"], answer["versionsBehind"], answer["upToDate"]) == (
        "1.2.0",
        2,
        False,
    )
    assert (answer["status"], answer["reason"], answer["note"]) == ("ok", None, None)
    assert answer["releases"] == [
        {"version": "1.2.0", "date": "2026-12-01", "notes": "- Limits."},
        {"version": "1.1.0", "date": None, "notes": "- Owner."},
    ]
    assert answer["updateRequest"] == {
        "host": "github",
        "branch": "blueprint-update/1.2.0",
        "url": "https://github.com/acme/fraud-detector/pulls?q=is%3Apr+head%3Ablueprint-update%2F1.2.0",
    }
    assert answer["updateRequestReason"] is None


def test_an_up_to_date_repository_has_no_request_and_says_why():
    answer = currency_answer(instance("1.2.0", github="acme/x"), VERSIONS, [])
    assert (answer["versionsBehind"], answer["upToDate"]) == (0, True)
    assert answer["updateRequest"] is None
    assert answer["updateRequestReason"] == "up to date: no update request is due"


def test_a_commit_after_a_tag_is_counted_from_the_tag_and_said_so():
    answer = currency_answer(instance("1.1.0-3-gabc1234", gitlab="ml/x"), VERSIONS, [])
    assert answer["versionsBehind"] == 1
    assert "counted from 1.1.0" in str(answer["note"])


def test_an_unreadable_source_is_unavailable_with_the_reason_and_what_is_known():
    answer = currency_answer(instance(github="acme/x"), None, [], "git clone failed: timed out")
    assert (answer["status"], answer["reason"]) == ("unavailable", "git clone failed: timed out")
    assert (answer["currentVersion"], answer["latestVersion"], answer["versionsBehind"]) == (
        "1.0.0",
        None,
        None,
    )
    assert answer["updateRequest"] is None
    assert answer["updateRequestReason"] == "the newest release is unknown"
