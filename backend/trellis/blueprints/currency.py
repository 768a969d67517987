"""Blueprint currency of one generated repository: how far behind it is, and its update request.

A generated repository's scheduled workflow (``scripts/blueprint-update.sh`` in each
blueprint's template) runs ``copier update`` to the newest release on the branch
``blueprint-update/<version>`` and opens a pull request (GitHub) or a merge request (GitLab)
from it. The link here is a search for requests from that branch on the host its catalog
entity names (``github.com/project-slug`` or ``gitlab.com/project-slug``), so it finds the
request whether it is open, merged or closed. Slugs and versions come from files a team
edits: each URL part is checked and percent-encoded, and a value that cannot be made a safe
URL gives no link and a reason instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from trellis import annotations as ann
from trellis.blueprints.changelog import Release, base_version
from trellis.blueprints.usage import newer_releases, newest_release, versions_behind
from trellis.model import BlueprintInstance

__all__ = [
    "UPDATE_BRANCH_PREFIX",
    "UpdateRequest",
    "currency_answer",
    "update_branch",
    "update_request",
]

UPDATE_BRANCH_PREFIX = "blueprint-update/"
"""The branch prefix ``scripts/blueprint-update.sh`` pushes an update to."""

#: Hosts by the annotation that names a repository on them: (name, base URL, segments).
_HOSTS = {
    ann.GITHUB_PROJECT_SLUG: ("github", "https://github.com", (2, 2)),
    ann.GITLAB_PROJECT_SLUG: ("gitlab", "https://gitlab.com", (2, 20)),
}
#: One path segment of a slug, as the blueprints' ``repository`` question accepts it.
_SEGMENT = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
#: A release as a branch name can carry it (PEP 440 characters, no leading dot or dash).
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+!_-]{0,63}$")


@dataclass(frozen=True, slots=True)
class UpdateRequest:
    """Where the update request of one release is found: the host, the branch and a link."""

    host: str
    branch: str
    url: str

    def as_json(self) -> dict[str, str]:
        """The link as a JSON object."""
        return {"host": self.host, "branch": self.branch, "url": self.url}


def update_branch(version: str) -> str:
    """The branch the update to ``version`` is pushed to."""
    return f"{UPDATE_BRANCH_PREFIX}{version}"


def update_request(project_slugs: Sequence[tuple[str, str]], version: str) -> UpdateRequest | str:
    """The link to the update request for ``version``, or the reason there is none.

    The first annotation of a known host wins (GitHub, then GitLab, as the blueprints write
    one of them).
    """
    if not _VERSION.match(version) or ".." in version:
        return f"the version {version!r} cannot name a branch"
    known = [(key, slug) for key, slug in project_slugs if key in _HOSTS]
    if not known:
        names = " or ".join(f"`{key}`" for key in _HOSTS)
        return f"the entity has no {names} annotation naming its repository"
    key, slug = min(known, key=lambda pair: list(_HOSTS).index(pair[0]))
    host, base, (fewest, most) = _HOSTS[key]
    segments = slug.strip().split("/")
    if not fewest <= len(segments) <= most or not all(_safe_segment(s) for s in segments):
        shape = "owner/name" if most == fewest else "group[/subgroup]/name"
        return f"`{key}` is {slug[:100]!r}, not a repository path ({shape})"
    path = "/".join(quote(segment, safe="") for segment in segments)
    branch = update_branch(version)
    if host == "github":
        query = urlencode({"q": f"is:pr head:{branch}"})
        url = f"{base}/{path}/pulls?{query}"
    else:
        query = urlencode({"scope": "all", "state": "all", "source_branch": branch})
        url = f"{base}/{path}/-/merge_requests?{query}"
    return UpdateRequest(host=host, branch=branch, url=url)


def _safe_segment(segment: str) -> bool:
    """A path segment that is literal text: no dot-only segment a browser would resolve."""
    return bool(_SEGMENT.match(segment)) and segment.strip(".") != ""


def currency_answer(
    instance: BlueprintInstance,
    versions: Sequence[str] | None,
    releases: Sequence[Release],
    problem: str | None = None,
) -> dict[str, object]:
    """The ``GET /api/blueprints/currency/...`` answer for one repository.

    ``versions`` are the source's releases of its blueprint (None: the source could not be
    read, and ``problem`` says why); ``releases`` the changelog entries newer than its
    version. The status is ``unavailable`` whenever ``problem`` is set: what is known is
    still given.
    """
    known = list(versions or ())
    newest = newest_release(known)
    behind = versions_behind(instance.version, known) if known else None
    note = None
    if known and behind is None:
        base = base_version(instance.version)
        newer = newer_releases(instance.version, known)
        if newer or base != instance.version:
            behind = len(newer)
            note = f"{instance.version} is not a release of the source; counted from {base}"
        else:
            note = f"{instance.version} is not a release; cannot tell how far behind it is"
    link: UpdateRequest | str
    if newest is None:
        link = "the newest release is unknown"
    elif behind == 0:
        link = "up to date: no update request is due"
    else:
        link = update_request(instance.project_slugs, newest)
    return {
        "entityRef": instance.entity_ref,
        "location": instance.location,
        "blueprint": instance.blueprint,
        "currentVersion": instance.version,
        "latestVersion": newest,
        "versionsBehind": behind,
        "upToDate": behind == 0,
        "note": note,
        "status": "unavailable" if problem else "ok",
        "reason": problem,
        "releases": [{"version": r.version, "date": r.date, "notes": r.body} for r in releases],
        "updateRequest": link.as_json() if isinstance(link, UpdateRequest) else None,
        "updateRequestReason": link if isinstance(link, str) else None,
    }
