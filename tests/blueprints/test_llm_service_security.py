"""checkov over everything an llm-service repository deploys, in one run for every variant.

The rendered Kubernetes objects (every overlay through ``kubectl kustomize``), the Terraform,
the workflows (or the GitLab pipeline) and the Dockerfile are scanned together; the only
failures allowed are the checks the generated ``.checkov.yaml`` lists, each with a one-line
reason, at most five (inline suppressions in the Terraform count too). The scan reads no
configuration, so the listed checks are set aside here as ``--config-file`` would skip them.
"""

from __future__ import annotations

import hcl2
import pytest

from support.checkov_scan import MAX_SKIPS, Scans, justified_skips


def test_every_terraform_file_parses(llm_variant):
    _, _, repo = llm_variant
    files = sorted((repo / "infra").glob("*.tf"))
    assert {"main.tf", "storage.tf", "gpu_pool.tf", "ci_identity.tf"} <= {f.name for f in files}
    for path in files:
        hcl2.loads(path.read_text())


@pytest.mark.tools
def test_checkov_finds_nothing_beyond_the_listed_skips(llm_variant, checkov_scans: Scans):
    name, _, repo = llm_variant
    listed = justified_skips(repo)
    assert len(listed) <= MAX_SKIPS, listed
    assert all(listed.values()), f"every skip needs a reason: {listed}"

    findings = checkov_scans.of("llm-service", name)
    expected = {"kubernetes", "terraform", "dockerfile"} | (
        {"github_actions"} if (repo / ".github").exists() else {"gitlab_ci"}
    )
    assert expected <= set(findings), sorted(findings)
    failed, inline = [], set()
    for framework, found in findings.items():
        assert found.parsing_errors == 0, framework
        assert [c for c in found.passed if c["check_id"] not in listed], framework
        failed += [c for c in found.failed if c["check_id"] not in listed]
        inline |= {c["check_id"] for c in found.skipped} - set(listed)
    assert len(set(listed) | inline) <= MAX_SKIPS, sorted(set(listed) | inline)
    summary = sorted({f"{f['check_id']} {f['check_name']} ({f['file_path']})" for f in failed})
    assert summary == []
