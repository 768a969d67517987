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
from support.gitlab import changes_match, gitlab_job, gitlab_jobs, rules_allow
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


def rolls_out(script: str, overlay: str) -> re.Match[str] | None:
    """``rollout deploy`` of ``deploy/overlays/<overlay>`` in an expanded script."""
    return re.search(
        rf'rollout deploy --overlay "?deploy/overlays/{re.escape(overlay)}"?\s+'
        r'--storage-uri "?(\S+?)"?(\s+(?P<flags>.*))?$',
        script,
        flags=re.MULTILINE,
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
def test_deploy_jobs_skip_the_training_job_and_the_namespace(variant: Variant) -> None:
    """Rollouts apply ``-l app.kubernetes.io/component notin (training,namespace)``: that must
    leave the hub overlay's serving objects, drop its training Job, and leave only namespaced
    objects (CI's identity may not change a Namespace); an admin's selector finds the Namespace.
    """
    _, answers, repo = variant
    hub = render_overlay(repo / "deploy" / "overlays" / answers["hub_region"])
    component = [o["metadata"].get("labels", {}).get("app.kubernetes.io/component") for o in hub]
    kept = [o for o, c in zip(hub, component, strict=True) if c not in ("training", "namespace")]
    assert any(o["kind"] == "InferenceService" for o in kept)
    assert not any(o["kind"] in ("Job", "Namespace") for o in kept)
    assert [o["kind"] for o, c in zip(hub, component, strict=True) if c == "namespace"] == [
        "Namespace"
    ]


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


def environment_name(job: dict[str, Any]) -> str | None:
    environment = job.get("environment")
    return environment.get("name") if isinstance(environment, dict) else environment


@on_github
def test_staging_then_each_region_rolls_out_behind_its_own_approval(github: Any) -> None:
    """train → staging (all traffic, smoke test) → hub → each edge, one environment each, every
    one publishing the champion to its bucket, then rolling that exact version out."""
    answers, _, workflows = github
    hub, edges = answers["hub_region"], answers["edge_regions"]
    workflow = workflows["ci-cd.yml"]
    jobs = workflow["jobs"]
    by_environment: dict[str, list[str]] = {}
    for job_id, job in jobs.items():
        if name := environment_name(job):
            by_environment.setdefault(name, []).append(job_id)
    assert sorted(by_environment) == sorted(["staging", *regions_of(answers), "infrastructure"])
    assert all(len(ids) == 1 for ids in by_environment.values()), by_environment

    def needs(job_id: str) -> set[str]:
        value = jobs[job_id].get("needs", [])
        return {value} if isinstance(value, str) else set(value)

    first = {name: ids[0] for name, ids in by_environment.items()}
    assert needs(first["staging"]) == {"train"}, "staging comes straight after training"
    assert needs(first[hub]) == {first["staging"]}, "production waits for staging"
    for edge in edges:
        assert needs(first[edge]) == {first[hub]}, f"{edge} must wait for the hub"
    assert "build-image" in needs("train")
    percent = answers.get("canary_traffic_percent", 10)
    assert workflow["env"]["CANARY_TRAFFIC_PERCENT"] == str(percent)
    for environment in ["staging", *regions_of(answers)]:
        job = jobs[first[environment]]
        env = {**workflow["env"], **job["env"]}
        assert env["REGION"] == (hub if environment == "staging" else environment)
        job_steps = steps(job)
        # The champion is copied under the overlay's model root first, in the same job.
        publish = next(
            i for i, s in enumerate(job_steps) if "publish --overlay" in s.get("run", "")
        )
        assert 'uri=$(publish --overlay "$OVERLAY")' in job_steps[publish]["run"]
        assert "MLFLOW_TRACKING_TOKEN" in job_steps[publish]["env"]
        rollout = next(i for i, s in enumerate(job_steps) if "rollout deploy" in s.get("run", ""))
        assert publish < rollout, first[environment]
        step = job_steps[rollout]
        publish_id = job_steps[publish]["id"]
        assert step["env"]["STORAGE_URI"] == f"${{{{ steps.{publish_id}.outputs.uri }}}}"
        found = rolls_out(expand(step["run"], env), environment)
        assert found, step["run"]
        assert found["flags"] == (
            "--no-canary" if environment == "staging" else f'--canary-percent "{percent}"'
        ), found["flags"]
        if environment != "staging":
            assert "PROMETHEUS_URL" in step["env"], "the canary is judged from Prometheus"
        assert "pip install -e '.[deploy]'" in runs(job)
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
def test_gitlab_stages_staging_then_each_region_behind_approval(gitlab: Any) -> None:
    answers, _, config = gitlab
    jobs = gitlab_jobs(config)
    hub = answers["hub_region"]

    def environment_jobs(action: str | None) -> dict[str, tuple[str, dict[str, Any]]]:
        return {
            job["environment"]["name"]: (name, job)
            for name, job in jobs.items()
            if "environment" in job and job["environment"].get("action") == action
        }

    deploys, publishes = environment_jobs(None), environment_jobs("prepare")
    environments = ["staging", *regions_of(answers)]
    assert sorted(publishes) == sorted(environments)
    assert sorted(deploys) == sorted([*environments, "infrastructure"])
    for name, job in [*deploys.values(), *publishes.values()]:
        manual = job.get("when") == "manual" or (
            job.get("rules") and all(rule.get("when") == "manual" for rule in job["rules"])
        )
        assert manual, f"{name} must wait for a person"
        assert job.get("allow_failure") is False, f"{name} must block the pipeline until run"
    percent = str(answers.get("canary_traffic_percent", 10))
    assert config["variables"]["CANARY_TRAFFIC_PERCENT"] == percent
    for environment in environments:
        name, job = deploys[environment]
        publish_name, publish = publishes[environment]
        assert job["stage"] == publish["stage"] == "deploy"
        # The champion is copied under the overlay's model root, then that version rolled out.
        assert set(job["needs"]) == {publish_name}, (name, job["needs"])
        before = {"staging": "train", hub: deploys["staging"][0]}.get(environment)
        assert set(publish["needs"]) == {before or deploys[hub][0]}, publish_name
        env = {**config.get("variables", {}), **publish.get("variables", {})}
        assert env["OVERLAY"] == f"deploy/overlays/{environment}"
        assert env["REGION"] == (hub if environment == "staging" else environment)
        assert 'STORAGE_URI="$(publish --overlay "$OVERLAY")"' in script_of(publish)
        assert publish["artifacts"]["reports"]["dotenv"] == "publish.env"
        env = {**config.get("variables", {}), **job.get("variables", {})}
        assert job["environment"]["deployment_tier"] == (
            "staging" if environment == "staging" else "production"
        )
        assert env["CANARY"] == ("false" if environment == "staging" else "true")
        assert rolls_out(expand(script_of(job), env), environment), name
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


# --- what runs for which change ---------------------------------------------------------------

DOCS_ONLY = ["docs/index.md", "README.md", "mkdocs.yml", "catalog-info.yaml"]
MODEL_CHANGE = ["src/{package}/train.py"]
INFRA_ONLY = ["infra/main.tf"]


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=scaled(30),
        check=True,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(repo),
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com",
        },
    )
    return result.stdout.strip()


@on_github
def test_a_docs_only_push_trains_and_deploys_nothing(github: Any, tmp_path: Path) -> None:
    """Run the `changes` job's own script on real commits, and follow its outputs."""
    _, _, workflows = github
    jobs = workflows["ci-cd.yml"]["jobs"]
    step = next(s for s in steps(jobs["changes"]) if s.get("id") == "diff")
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / "src" / "train.py").write_text("x = 1\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "first")

    def outputs(files: list[str], base: str | None) -> dict[str, str]:
        for name in files:
            path = repo / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{path.name} changed\n")
        git(repo, "add", ".")
        git(repo, "commit", "-qm", "change")
        output = tmp_path / "output"
        output.write_text("")
        result = subprocess.run(
            ["bash", "-e", "-c", step["run"]],
            cwd=repo,
            env={"PATH": "/usr/bin:/bin", "BASE": base or "", "GITHUB_OUTPUT": str(output)},
            capture_output=True,
            text=True,
            timeout=scaled(30),
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return dict(line.split("=", 1) for line in output.read_text().splitlines())

    head = git(repo, "rev-parse", "HEAD")
    assert outputs(DOCS_ONLY, head) == {"model": "false", "infra": "false"}
    head = git(repo, "rev-parse", "HEAD")
    assert outputs(["src/train.py", "docs/x.md"], head) == {"model": "true", "infra": "false"}
    head = git(repo, "rev-parse", "HEAD")
    assert outputs(INFRA_ONLY, head) == {"model": "false", "infra": "true"}
    # A run by hand (no base) or a base the clone lacks: everything runs.
    assert outputs(["docs/y.md"], None) == {"model": "true", "infra": "true"}
    assert outputs(["docs/z.md"], "0" * 40) == {"model": "true", "infra": "true"}

    # Training hangs on `model`, Terraform on `infra`; the checks run whatever changed.
    assert "needs.changes.outputs.model == 'true'" in jobs["build-image"]["if"]
    assert "changes" in jobs["build-image"]["needs"]
    for job_id in ("terraform-check", "terraform-plan"):
        assert "needs.changes.outputs.infra == 'true'" in jobs[job_id]["if"]
    for job_id in ("lint", "test"):
        assert "if" not in jobs[job_id]


def gitlab_runs(job: dict[str, Any], variables: dict[str, str], files: list[str]) -> bool:
    return rules_allow(job.get("rules"), variables, changed=files)


@on_gitlab
def test_gitlab_docs_only_pushes_train_and_deploy_nothing(gitlab: Any) -> None:
    answers, repo, config = gitlab
    jobs = gitlab_jobs(config)
    package = slug_of(repo).replace("-", "_")
    push = {"CI_COMMIT_BRANCH": "main", "CI_DEFAULT_BRANCH": "main", "CI_PIPELINE_SOURCE": "push"}
    release = [
        n for n in jobs if n in {"build-image", "train"} or n.startswith(("publish-", "deploy-"))
    ]
    assert len(release) == 2 + 2 * (2 + len(answers["edge_regions"]))
    model = [f.format(package=package) for f in MODEL_CHANGE]
    for name in release:
        assert not gitlab_runs(jobs[name], push, DOCS_ONLY), f"{name} runs for a docs change"
        assert not gitlab_runs(jobs[name], push, INFRA_ONLY), f"{name} runs for infra/ alone"
        assert gitlab_runs(jobs[name], push, model), f"{name} ignores a change to the model"
        assert gitlab_runs(jobs[name], {**push, "CI_PIPELINE_SOURCE": "web"}, DOCS_ONLY), name
    for name in ("lint", "test"):
        assert gitlab_runs(jobs[name], push, DOCS_ONLY), f"{name} must check every change"
    for name in ("terraform-validate", "terraform-plan", "terraform-apply"):
        assert gitlab_runs(jobs[name], push, INFRA_ONLY), name
        assert not gitlab_runs(jobs[name], push, [*DOCS_ONLY, *model]), name
    # The model files listed are ones the repository has.
    files = [str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file()]
    for pattern in jobs["train"]["rules"][1]["changes"]:
        assert changes_match([pattern], files), pattern


# --- Terraform --------------------------------------------------------------------------------

#: The backend settings each cloud's CI fills in from its variables.
BACKEND_SETTINGS = {
    "aws": {"bucket": "TF_STATE_BUCKET"},
    "gcp": {"bucket": "TF_STATE_BUCKET"},
    "azure": {
        "resource_group_name": "TF_STATE_RESOURCE_GROUP",
        "storage_account_name": "TF_STATE_STORAGE_ACCOUNT",
    },
}


def backend_settings(script: str) -> dict[str, str]:
    """``-backend-config=KEY=$VAR`` pairs of a ``terraform init`` line."""
    return dict(re.findall(r'-backend-config="(\w+)=\$(\w+)"', script))


def assert_backend_completes_the_example(repo: Path, cloud: str, script: str) -> None:
    init = r"terraform (-chdir=infra )?init -input=false -backend-config=backend.hcl.example"
    assert re.search(init, script), script
    assert backend_settings(script) == BACKEND_SETTINGS[cloud]
    example = (repo / "infra" / "backend.hcl.example").read_text()
    for key in BACKEND_SETTINGS[cloud]:
        assert re.search(rf'^{key}\s*=\s*"REPLACE', example, flags=re.MULTILINE), key


@on_github
def test_terraform_is_planned_on_main_and_applied_after_its_own_approval(github: Any) -> None:
    answers, repo, workflows = github
    jobs = workflows["ci-cd.yml"]["jobs"]
    login, _ = CLOUD_LOGIN[answers["cloud"]]
    check, plan, apply = jobs["terraform-check"], jobs["terraform-plan"], jobs["terraform-apply"]
    assert {"terraform fmt -check -recursive", "terraform validate"} <= {
        s.get("run") for s in steps(check)
    }
    assert "id-token" not in (check.get("permissions") or {}), "validation needs no cloud"
    assert "refs/heads/main" in plan["if"] and "pull_request" in plan["if"]
    assert set(plan["needs"]) == {"changes", "terraform-check"}
    assert apply["needs"] == "terraform-plan"
    assert apply["environment"] == "infrastructure"
    assert "environment" not in plan
    identity = {"aws": "TERRAFORM_ROLE_ARN", "gcp": "TERRAFORM_SERVICE_ACCOUNT",
                "azure": "TERRAFORM_CLIENT_ID"}[answers["cloud"]]  # fmt: skip
    for job in (plan, apply):
        assert job["defaults"]["run"]["working-directory"] == "infra"
        assert job["concurrency"] == {"group": "terraform", "cancel-in-progress": False}
        sign_in = next(s for s in steps(job) if str(s.get("uses", "")).startswith(f"{login}@"))
        assert f"vars.{identity}" in str(sign_in["with"]), "Terraform has its own identity"
        assert_backend_completes_the_example(repo, answers["cloud"], runs(job))
    assert "terraform plan -input=false -out=tfplan" in runs(plan)
    assert "terraform apply -input=false tfplan" in runs(apply)
    upload = next(s for s in steps(plan) if "upload-artifact" in s.get("uses", ""))
    download = next(s for s in steps(apply) if "download-artifact" in s.get("uses", ""))
    assert upload["with"]["name"] == download["with"]["name"]
    assert set(upload["with"]["path"].split()) == {"infra/tfplan", "infra/.terraform.lock.hcl"}
    assert upload["with"]["include-hidden-files"] is True
    order = [s.get("uses", s.get("run", "")) for s in steps(apply)]
    fetched = next(i for i, u in enumerate(order) if "download-artifact" in u)
    assert fetched < next(i for i, u in enumerate(order) if "terraform apply" in u)


@on_gitlab
def test_gitlab_terraform_is_planned_and_applied_by_a_person(gitlab: Any) -> None:
    answers, repo, config = gitlab
    jobs = gitlab_jobs(config)
    validate, plan, apply = (jobs[f"terraform-{n}"] for n in ("validate", "plan", "apply"))
    assert "terraform -chdir=infra validate" in script_of(validate)
    assert "id_tokens" not in validate
    assert plan["needs"] == ["terraform-validate"] and apply["needs"] == ["terraform-plan"]
    assert apply["environment"]["name"] == "infrastructure"
    assert all(rule.get("when") == "manual" for rule in apply["rules"])
    assert apply["allow_failure"] is False
    identity = {"aws": "TERRAFORM_ROLE_ARN", "gcp": "TERRAFORM_SERVICE_ACCOUNT",
                "azure": "TERRAFORM_CLIENT_ID"}[answers["cloud"]]  # fmt: skip
    for job in (plan, apply):
        assert job["variables"]["CLOUD_IDENTITY"] == f"${identity}"
        assert "${CLOUD_IDENTITY:-" in script_of(job), "the ID token signs in as CLOUD_IDENTITY"
        assert job["resource_group"] == "terraform"
        assert_backend_completes_the_example(repo, answers["cloud"], script_of(job))
    assert "terraform -chdir=infra plan -input=false -out=tfplan" in script_of(plan)
    assert set(plan["artifacts"]["paths"]) == {"infra/tfplan", "infra/.terraform.lock.hcl"}
    assert "terraform -chdir=infra apply -input=false tfplan" in script_of(apply)


# --- the variables the header promises --------------------------------------------------------


def header_of(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if line.startswith("#"))


@on_github
def test_every_variable_and_secret_the_workflow_reads_is_listed_in_its_header(
    github: Any,
) -> None:
    _, repo, _ = github
    text = (repo / ".github" / "workflows" / "ci-cd.yml").read_text()
    used = set(re.findall(r"\$\{\{\s*(?:vars|secrets)\.(\w+)\s*\}\}", text)) - {"GITHUB_TOKEN"}
    header = header_of(text.split("\njobs:")[0])
    assert {"MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN", "PROMETHEUS_URL"} <= used
    assert sorted(v for v in used if not re.search(rf"\b{v}\b", header)) == []


@on_gitlab
def test_every_variable_the_pipeline_reads_is_listed_in_its_header(gitlab: Any) -> None:
    _, repo, config = gitlab
    text = (repo / ".gitlab-ci.yml").read_text()
    header = header_of(text.split("\nworkflow:")[0])
    defined = set(config.get("variables", {}))
    scripts = []
    for name, job in gitlab_jobs(config).items():
        if name == "blueprint-update":  # documented next to the job itself
            continue
        defined |= set(job.get("variables") or {}) | set(job.get("id_tokens") or {})
        scripts.append(script_of(job))
        scripts.extend(str(value) for value in (job.get("variables") or {}).values())
        scripts.extend(str(t["aud"]) for t in (job.get("id_tokens") or {}).values())
    text = "\n".join(scripts)
    assigned = set(re.findall(r"(?:^|[\s;(])(?:export\s+)?(\w+)=", text))
    used = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", text))
    needed = {v for v in used - defined - assigned if not v.startswith(("CI_", "GITLAB_"))}
    needed -= {"HOME", "PATH", "PYTHONPATH"}
    # MLflow reads these two from the environment: the header must still name them.
    needed |= {"MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN", "PROMETHEUS_URL"}
    assert sorted(v for v in needed if not re.search(rf"\b{v}\b", header)) == []
