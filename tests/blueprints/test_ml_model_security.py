"""checkov over everything a generated repository deploys, with its own short skip list.

The rendered Kubernetes objects (every overlay through ``kubectl kustomize``), the Terraform,
the workflows and the Dockerfile are scanned together; the only failures allowed are the
checks the generated ``.checkov.yaml`` lists, each with a one-line reason, at most five.
"""

from __future__ import annotations

import pytest

from support.checkov_scan import MAX_SKIPS, justified_skips

pytestmark = pytest.mark.tools


def test_checkov_finds_nothing_beyond_the_listed_skips(variant, checkov_findings):
    _, _, repo = variant
    listed = justified_skips(repo)
    assert len(listed) <= MAX_SKIPS, listed
    assert all(reason for reason in listed.values()), f"every skip needs a reason: {listed}"

    frameworks = ["kubernetes", "terraform", "dockerfile"]
    if (repo / ".github").exists():
        frameworks.append("github_actions")
    assert set(frameworks) <= set(checkov_findings), sorted(checkov_findings)
    failed, inline = [], set()
    for framework in frameworks:
        findings = checkov_findings[framework]
        # checkov passes a file it could not parse without a word: make sure it read everything.
        assert findings.parsing_errors == 0, f"checkov could not parse some {framework} files"
        assert findings.scanned, f"checkov checked nothing of {framework}"
        failed += [f for f in findings.failed if f["check_id"] not in listed]
        inline |= {c["check_id"] for c in findings.skipped}
    if (repo / ".github").exists():  # a workflow off GitHub's schema is silently skipped
        workflows = {p.name for p in (repo / ".github" / "workflows").glob("*.y*ml")}
        scanned = checkov_findings["github_actions"].scanned
        assert workflows <= scanned, f"checkov skipped {sorted(workflows - scanned)}"
    # Inline suppressions (one resource each, reason beside them) count against the limit too.
    assert len(set(listed) | inline) <= MAX_SKIPS, sorted(set(listed) | inline)
    summary = sorted(
        {f"{f['check_id']} {f.get('check_name', '')} ({f.get('file_path')})" for f in failed}
    )
    assert summary == []
