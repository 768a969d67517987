"""The ml-model blueprint's CI/CD: GitHub Actions or GitLab CI, linted, scanned and wired.

Every rendered pipeline must lint and test each push, then (on the main line only) build and
sign the training image, train and evaluate on the hub, and deploy hub → edges through one
approval-gated environment per region, signing in to the cloud with OIDC tokens only.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.blueprints import VARIANTS
from support.checkov_scan import Findings
from support.gitlab import gitlab_job, gitlab_jobs
from support.manifests import render_overlay
from support.timing import scaled
from support.tools import actionlint, tool

Variant = tuple[str, dict[str, Any], Path]
Workflow = dict[str, Any]

YAMLLINT_CONFIG = "{extends: relaxed, rules: {truthy: {check-keys: false}, line-length: disable}}"
#: The action (and its OIDC inputs) that signs a job in to each cloud.
CLOUD_LOGIN = {
    "aws": ("aws-actions/configure-aws-credentials", {"role-to-assume"}),
    "gcp": ("google-github-actions/auth", {"workload_identity_provider"}),
    "azure": ("azure/login", {"client-id", "tenant-id", "subscription-id"}),
}
#: Inputs that would mean a long-lived cloud key is stored in the repository.
STATIC_KEY_INPUTS = {
    "aws-access-key-id",
    "aws-secret-access-key",
    "credentials_json",
    "creds",
    "client-secret",
}
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
FAKE_DIGEST = "sha256:" + "0123456789abcdef" * 4
REQUIRED_STAGES = ("lint", "test", "train", "deploy")


# --- helpers ----------------------------------------------------------------------------------


def slug_of(repo: Path) -> str:
    return yaml.safe_load((repo / ".copier-answers.yml").read_text())["project_slug"]


def regions_of(answers: dict[str, Any]) -> list[str]:
    return [answers["hub_region"], *answers["edge_regions"]]


def workflow_files(repo: Path) -> list[Path]:
    folder = repo / ".github" / "workflows"
    return sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")])


def load_workflows(repo: Path) -> dict[str, Workflow]:
    return {path.name: yaml.safe_load(path.read_text()) for path in workflow_files(repo)}


def triggers(workflow: Workflow) -> dict[str, Any]:
    """The ``on:`` block (PyYAML reads the bare key ``on`` as ``True``)."""
    value = workflow.get("on", workflow.get(True))
    if isinstance(value, str):
        return {value: None}
    if isinstance(value, list):
        return dict.fromkeys(value)
    return dict(value or {})


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for step in job.get("steps", []) if isinstance(step, dict)]


def runs(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) for step in steps(job))


def resolve_env(value: Any, env: dict[str, Any]) -> str:
    """Resolve ``${{ env.NAME }}`` expressions from ``env``."""
    return re.sub(r"\$\{\{\s*env\.(\w+)\s*\}\}", lambda m: str(env[m.group(1)]), str(value))


def expand(text: str, env: dict[str, Any]) -> str:
    """Substitute ``$NAME`` / ``${NAME}`` from ``env`` (what the runner's shell would do)."""
    return re.sub(
        r"\$\{?([A-Z_][A-Z0-9_]*)\}?", lambda m: str(env.get(m.group(1), m.group(0))), text
    )


def applies_overlay(script: str, region: str) -> bool:
    return (
        re.search(rf'kubectl apply -k "?deploy/overlays/{re.escape(region)}"?(\s|$)', script)
        is not None
    )


def script_of(job: dict[str, Any]) -> str:
    return "\n".join([*job.get("before_script", []), *job.get("script", [])])


def listed_skips(repo: Path) -> set[str]:
    """The check ids the generated ``.checkov.yaml`` skips (none when it does not exist)."""
    config = repo / ".checkov.yaml"
    if not config.exists():
        return set()
    listed = (yaml.safe_load(config.read_text()) or {}).get("skip-check") or []
    items = listed.split(",") if isinstance(listed, str) else listed
    return {str(item).split()[0].strip() for item in items if str(item).strip()}


def yamllint(*paths: Path) -> None:
    result = subprocess.run(
        [
            tool("yamllint", install="pip install yamllint"),
            "-f",
            "parsable",
            "-d",
            YAMLLINT_CONFIG,
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
        timeout=scaled(120),
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- fixtures ---------------------------------------------------------------------------------

#: The variants of each CI system; a test of one system runs on its variants only.
GITHUB_VARIANTS = sorted(name for name, answers in VARIANTS.items() if answers["ci"] == "github")
GITLAB_VARIANTS = sorted(name for name, answers in VARIANTS.items() if answers["ci"] == "gitlab")
on_github = pytest.mark.parametrize("variant", GITHUB_VARIANTS, indirect=True)
on_gitlab = pytest.mark.parametrize("variant", GITLAB_VARIANTS, indirect=True)


@pytest.fixture
def github(variant: Variant) -> tuple[dict[str, Any], Path, dict[str, Workflow]]:
    _, answers, repo = variant
    assert answers["ci"] == "github"
    return answers, repo, load_workflows(repo)


@pytest.fixture
def gitlab(variant: Variant) -> tuple[dict[str, Any], Path, dict[str, Any]]:
    _, answers, repo = variant
    assert answers["ci"] == "gitlab"
    return answers, repo, yaml.safe_load((repo / ".gitlab-ci.yml").read_text())


# --- both CI systems --------------------------------------------------------------------------


def test_only_the_chosen_ci_system_is_rendered(variant: Variant) -> None:
    _, answers, repo = variant
    if answers["ci"] == "github":
        assert workflow_files(repo), "no workflow under .github/workflows"
        assert not (repo / ".gitlab-ci.yml").exists()
    else:
        assert (repo / ".gitlab-ci.yml").is_file()
        assert not (repo / ".github").exists()


def test_ci_files_pass_yamllint(variant: Variant) -> None:
    _, answers, repo = variant
    yamllint(repo / ".github" if answers["ci"] == "github" else repo / ".gitlab-ci.yml")


@pytest.mark.tools
def test_training_job_pins_the_built_image_and_evaluate_reuses_it(
    variant: Variant, tmp_path: Path
) -> None:
    """Run the pipeline's own pinning script, then build what it would apply on the hub."""
    _, answers, repo = variant
    slug = slug_of(repo)
    if answers["ci"] == "github":
        workflow, script = next(
            (workflow, step["run"])
            for workflow in load_workflows(repo).values()
            for job in workflow["jobs"].values()
            for step in steps(job)
            if "deploy/.ci/train/kustomization.yaml" in str(step.get("run", ""))
        )
        env = dict(workflow.get("env", {}))
    else:
        config = yaml.safe_load((repo / ".gitlab-ci.yml").read_text())
        env = dict(config.get("variables", {}))
        script = "\n".join(
            line
            for line in gitlab_job(config, "train")["script"]
            if "deploy/.ci" in line and "run_job" not in line
        )
    assert env["TRAIN_IMAGE"] == f"{answers.get('container_registry', 'ghcr.io/acme')}/{slug}-train"
    shutil.copytree(repo / "deploy", tmp_path / "deploy")
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={
            "PATH": "/usr/bin:/bin",
            **{k: str(v) for k, v in env.items()},
            "TRAIN_DIGEST": FAKE_DIGEST,
        },
        timeout=scaled(60),
        check=False,
    )
    assert result.returncode == 0, result.stderr

    pinned = f"{env['TRAIN_IMAGE']}@{FAKE_DIGEST}"
    for folder, name, command in (
        ("train", f"{slug}-train", ["train"]),
        ("evaluate", f"{slug}-evaluate", ["evaluate"]),
    ):
        objects = render_overlay(tmp_path / "deploy" / ".ci" / folder)
        jobs = [obj for obj in objects if obj["kind"] == "Job"]
        assert [job["metadata"]["name"] for job in jobs] == [name]
        job = jobs[0]
        assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "training"
        container = job["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == pinned
        assert container["command"] == command
    evaluate = next(
        o for o in render_overlay(tmp_path / "deploy" / ".ci" / "evaluate") if o["kind"] == "Job"
    )
    assert evaluate["spec"]["backoffLimit"] == 0, "a refused candidate must not be re-evaluated"
    assert (repo / "Dockerfile").is_file(), "the pipeline builds the training image from it"


@pytest.mark.tools
def test_deploy_jobs_skip_the_training_job(variant: Variant) -> None:
    """Deploy jobs apply ``-l app.kubernetes.io/component!=training``: that must leave the hub
    overlay's serving objects and drop its training Job."""
    _, answers, repo = variant
    hub = render_overlay(repo / "deploy" / "overlays" / answers["hub_region"])
    kept = [
        o
        for o in hub
        if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") != "training"
    ]
    assert any(o["kind"] == "InferenceService" for o in kept)
    assert not any(o["kind"] == "Job" for o in kept)


# --- GitHub Actions ---------------------------------------------------------------------------


@pytest.mark.tools
@on_github
def test_workflows_pass_actionlint(github: Any) -> None:
    _, repo, workflows = github
    assert (repo / ".github/workflows/blueprint-update.yml").is_file()
    result = subprocess.run(
        [*actionlint(), ".github/workflows/*.{yml,yaml}"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=scaled(120),
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Checking {len(workflows)} workflow file(s)" in result.stdout, result.stdout


@pytest.mark.tools
@on_github
def test_workflows_pass_checkov(github: Any, checkov_findings: dict[str, Findings]) -> None:
    _, repo, workflows = github
    failed = checkov_findings["github_actions"].failed
    scanned = checkov_findings["github_actions"].scanned
    # checkov silently ignores a workflow its schema rejects: each one must have been checked.
    assert scanned == set(workflows), f"checkov did not scan {set(workflows) - scanned}"
    allowed = listed_skips(repo)
    unexpected = sorted(
        {
            f"{c['check_id']} {c['check_name']} ({c['file_path']})"
            for c in failed
            if c["check_id"] not in allowed
        }
    )
    assert unexpected == []


@on_github
def test_lint_and_test_on_every_push_and_pull_request(github: Any) -> None:
    answers, _, workflows = github
    checked = []
    for name, workflow in workflows.items():
        on = triggers(workflow)
        for job in workflow["jobs"].values():
            script = runs(job)
            if "ruff check" in script or "pytest" in script:
                assert {"push", "pull_request"} <= set(on), f"{name} must run on push and PRs"
                assert "pip install -e '.[test]'" in script
                setup = next(
                    s
                    for s in steps(job)
                    if str(s.get("uses", "")).startswith("actions/setup-python@")
                )
                version = resolve_env(setup["with"]["python-version"], workflow.get("env", {}))
                assert version == answers.get("python_version", "3.11")
                checked.append("ruff" if "ruff check" in script else "pytest")
    assert sorted(checked) == ["pytest", "ruff"]


@on_github
def test_top_level_permissions_are_read_only(github: Any) -> None:
    _, _, workflows = github
    for name, workflow in workflows.items():
        permissions = workflow.get("permissions")
        assert isinstance(permissions, dict), f"{name}: set top-level permissions explicitly"
        assert permissions.get("contents") == "read", name
        assert set(permissions.values()) <= {"read", "none"}, f"{name}: {permissions}"


@on_github
def test_id_token_only_on_jobs_that_talk_to_the_cloud(github: Any) -> None:
    answers, _, workflows = github
    login, oidc_inputs = CLOUD_LOGIN[answers["cloud"]]
    cloud_jobs = []
    for workflow in workflows.values():
        for job_id, job in workflow["jobs"].items():
            uses = [str(s.get("uses", "")) for s in steps(job)]
            signs_in = any(u.startswith(f"{login}@") for u in uses)
            signs_images = "cosign sign" in runs(job)
            has_token = (job.get("permissions") or {}).get("id-token") == "write"
            assert has_token == (signs_in or signs_images), (
                f"{job_id}: id-token: write must be granted exactly to jobs that exchange it"
            )
            for step in steps(job):
                assert not STATIC_KEY_INPUTS & set(step.get("with") or {}), (
                    f"{job_id}: a long-lived cloud key is passed to {step.get('uses')}"
                )
                if str(step.get("uses", "")).startswith(f"{login}@"):
                    assert oidc_inputs <= set(step["with"]), step
            if signs_in:
                cloud_jobs.append(job_id)
    deploy_jobs = [
        j for w in workflows.values() for j, job in w["jobs"].items() if "environment" in job
    ]
    assert "train" in cloud_jobs
    assert set(deploy_jobs) <= set(cloud_jobs)


@on_github
def test_one_approval_gated_deploy_job_per_region_hub_first(github: Any) -> None:
    answers, repo, workflows = github
    hub, edges = answers["hub_region"], answers["edge_regions"]
    workflow = next(
        w for w in workflows.values() if any("environment" in job for job in w["jobs"].values())
    )
    jobs = workflow["jobs"]
    by_region: dict[str, list[str]] = {}
    for job_id, job in jobs.items():
        if "environment" in job:
            environment = job["environment"]
            region = environment["name"] if isinstance(environment, dict) else environment
            by_region.setdefault(region, []).append(job_id)
    assert sorted(by_region) == sorted(regions_of(answers))
    assert all(len(ids) == 1 for ids in by_region.values()), by_region

    def needs(job_id: str) -> set[str]:
        value = jobs[job_id].get("needs", [])
        return {value} if isinstance(value, str) else set(value)

    hub_job = by_region[hub][0]
    assert "train" in needs(hub_job), "the hub is deployed after training"
    assert "build-image" in needs("train")
    for edge in edges:
        assert hub_job in needs(by_region[edge][0]), f"{edge} must wait for the hub"
    for region, (job_id,) in by_region.items():
        env = {**workflow.get("env", {}), **jobs[job_id].get("env", {})}
        assert applies_overlay(expand(runs(jobs[job_id]), env), region), job_id
        assert (repo / "deploy" / "overlays" / region / "kustomization.yaml").is_file()
        # The champion is copied into the region's bucket first, behind the same gate.
        steps = [step.get("run", "") for step in jobs[job_id]["steps"]]
        publish = next(i for i, run in enumerate(steps) if run.startswith("publish --overlay"))
        apply = next(i for i, run in enumerate(steps) if "kubectl apply -k" in run)
        assert publish < apply, job_id
        assert 'publish --overlay "deploy/overlays/$REGION"' in steps[publish]
    # Only the main line gets that far: pull requests stop after the checks.
    condition = jobs["build-image"]["if"]
    assert "refs/heads/main" in condition and "pull_request" in condition


@on_github
def test_no_expression_is_interpolated_into_a_script(github: Any) -> None:
    _, _, workflows = github
    for name, workflow in workflows.items():
        for job_id, job in workflow["jobs"].items():
            for step in steps(job):
                script = str(step.get("run", ""))
                assert "${{ github.event" not in script, f"{name}/{job_id}: {script}"
                assert "${{" not in script, (
                    f"{name}/{job_id}: pass expressions to scripts through env: {script}"
                )


@on_github
def test_actions_are_pinned_to_commit_shas(github: Any) -> None:
    _, _, workflows = github
    used = [
        str(s["uses"])
        for w in workflows.values()
        for job in w["jobs"].values()
        for s in steps(job)
        if "uses" in s
    ]
    assert used
    assert [u for u in used if not (u.startswith("./") or PINNED.match(u))] == []


@on_github
def test_jobs_have_timeouts_and_runs_have_concurrency(github: Any) -> None:
    _, _, workflows = github
    for name, workflow in workflows.items():
        assert workflow.get("concurrency", {}).get("group"), name
        for job_id, job in workflow["jobs"].items():
            timeout = job.get("timeout-minutes")
            assert isinstance(timeout, int) and 0 < timeout <= 480, f"{name}/{job_id}: {timeout}"
    jobs = next(w["jobs"] for w in workflows.values() if "train" in w["jobs"])
    for job_id, job in jobs.items():
        if "environment" in job or job_id == "train":
            assert job["concurrency"]["cancel-in-progress"] is False, job_id


# --- GitLab CI --------------------------------------------------------------------------------


@on_gitlab
def test_gitlab_stages_and_checks(gitlab: Any) -> None:
    answers, _, config = gitlab
    stages = config["stages"]
    assert [s for s in stages if s in REQUIRED_STAGES] == list(REQUIRED_STAGES)
    jobs = gitlab_jobs(config)
    assert "ruff check" in script_of(jobs["lint"]) and jobs["lint"]["stage"] == "lint"
    assert "pytest" in script_of(jobs["test"]) and jobs["test"]["stage"] == "test"
    for name in ("lint", "test"):
        assert "pip install -e '.[test]'" in script_of(jobs[name])
        assert jobs[name]["image"] == f"python:{answers.get('python_version', '3.11')}-slim"
        assert "id_tokens" not in jobs[name], f"{name} needs no cloud identity"
    assert jobs["train"]["stage"] == "train"
    for name, job in jobs.items():
        assert job.get("timeout"), f"{name} has no timeout"


@on_gitlab
def test_gitlab_deploys_each_region_after_approval_hub_first(gitlab: Any) -> None:
    answers, repo, config = gitlab
    jobs = gitlab_jobs(config)
    hub = answers["hub_region"]

    def environment_jobs(action: str | None) -> dict[str, tuple[str, dict[str, Any]]]:
        return {
            job["environment"]["name"]: (name, job)
            for name, job in jobs.items()
            if "environment" in job and job["environment"].get("action") == action
        }

    deploys, publishes = environment_jobs(None), environment_jobs("prepare")
    assert sorted(deploys) == sorted(publishes) == sorted(regions_of(answers))
    hub_name = deploys[hub][0]
    for name, job in [*deploys.values(), *publishes.values()]:
        assert job["stage"] == "deploy"
        manual = job.get("when") == "manual" or (
            job.get("rules") and all(rule.get("when") == "manual" for rule in job["rules"])
        )
        assert manual, f"{name} must wait for a person"
        assert job.get("allow_failure") is False, f"{name} must block the pipeline until run"
    for region, (name, job) in deploys.items():
        publish_name, publish = publishes[region]
        # The champion is copied into the region's bucket first, then the overlay applied.
        assert set(job["needs"]) == {publish_name}, (name, job["needs"])
        before = {"train"} if region == hub else {hub_name}
        assert set(publish["needs"]) == before, (publish_name, publish["needs"])
        env = {**config.get("variables", {}), **publish.get("variables", {})}
        assert 'publish --overlay "deploy/overlays/$REGION"' in script_of(publish)
        assert env["REGION"] == region
        env = {**config.get("variables", {}), **job.get("variables", {})}
        assert applies_overlay(expand(script_of(job), env), region), name
        assert (repo / "deploy" / "overlays" / region / "kustomization.yaml").is_file()
    assert "build-image" in jobs["train"]["needs"]


@on_gitlab
def test_gitlab_jobs_use_id_tokens_for_the_cloud(gitlab: Any) -> None:
    _, repo, config = gitlab
    jobs = gitlab_jobs(config)
    cloud_jobs = [name for name, job in jobs.items() if name == "train" or "environment" in job]
    for name in cloud_jobs:
        tokens = jobs[name].get("id_tokens") or {}
        assert tokens, f"{name} signs in to the cloud without an ID token"
        assert all(token.get("aud") for token in tokens.values()), tokens
        assert any(f"${var}" in script_of(jobs[name]) for var in tokens), (
            f"{name} declares an ID token it never uses"
        )
    text = (repo / ".gitlab-ci.yml").read_text()
    for key in ("AWS_SECRET_ACCESS_KEY", "AZURE_CLIENT_SECRET", "service_account_key",
                "private_key"):  # fmt: skip
        assert key not in text
    if "GOOGLE_APPLICATION_CREDENTIALS" in text:  # only ever a token-exchange configuration
        assert '"type": "external_account"' in text and '"type": "service_account"' not in text
    for name in {"build-image", "train", *cloud_jobs}:
        rules = jobs[name].get("rules") or []
        assert rules, f"{name} would run on every branch"
        assert all("$CI_DEFAULT_BRANCH" in rule.get("if", "") for rule in rules), name


@pytest.mark.tools
@on_gitlab
def test_gitlab_ci_passes_checkov(gitlab: Any, checkov_findings: dict[str, Findings]) -> None:
    _, repo, _ = gitlab
    assert "gitlab_ci" in checkov_findings, "checkov scanned no GitLab CI file"
    findings = checkov_findings["gitlab_ci"]
    assert findings.passed, "checkov scanned no GitLab CI job"
    allowed = listed_skips(repo)
    assert sorted({c["check_id"] for c in findings.failed} - allowed) == []
