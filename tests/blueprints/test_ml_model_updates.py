"""The scheduled blueprint update of generated repositories: workflow, pipeline job, script.

The script (``scripts/blueprint-update.sh``) is run for real: real git, real Copier, a
scratch blueprint source with newer tags, a bare git repository as ``origin``. Only the
hosting APIs are fakes: ``gh`` (GitHub) and ``curl`` (GitLab) are stand-ins on PATH that
record their arguments and the files they were handed, since no GitHub or GitLab is
reachable from a test.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.blueprints import REPO, VARIANTS
from support.gitlab import pipeline_jobs
from support.gitrepos import blueprint_source, generated_repo, git, release
from support.timing import scaled
from support.tools import shellcheck

SCRIPT = REPO / "blueprints/ml-model/template/scripts/blueprint-update.sh"
WORKFLOW = ".github/workflows/blueprint-update.yml"
YAMLLINT_CONFIG = "{extends: relaxed, rules: {truthy: {check-keys: false}, line-length: disable}}"
NOTES_1_1 = "- Serving scales to three replicas."
NOTES_1_2 = (
    "- The runbook says how to escalate.\n\n### To do by hand\n\n- Add your on-call channel."
)

#: A stand-in for ``gh``/``curl``: records argv, and the content of each file it is handed.
FAKE = f"""#!{sys.executable}
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
files = {{}}
for i, arg in enumerate(args):
    path = args[i + 1] if arg == "--body-file" and i + 1 < len(args) else arg.lstrip("@")
    if (arg == "--body-file" or arg.startswith("@")) and Path(path).is_file():
        files[arg if arg.startswith("@") else "--body-file"] = Path(path).read_text()
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps({{"tool": Path(sys.argv[0]).name, "args": args, "files": files}}) + "\\n")
print(os.environ.get("FAKE_ANSWER", ""))
"""


def copier_major() -> str:
    """The major version of Copier that Trellis itself depends on (pyproject.toml)."""
    text = (REPO / "pyproject.toml").read_text()
    match = re.search(r'"copier>=(\d+)\.[^"]*,<(\d+)"', text)
    assert match, "pyproject.toml pins copier as >=X.Y,<Z"
    return match.group(1)


# --- the workflow and the pipeline job, as files ----------------------------------------------


@pytest.mark.parametrize("variant", ["sklearn-github-aws"], indirect=True)
def test_the_workflow_runs_weekly_and_by_hand_with_write_access_on_its_job_only(variant):
    _, _, repo = variant
    workflow = yaml.safe_load((repo / WORKFLOW).read_text())
    on = workflow.get("on", workflow.get(True))
    assert set(on) == {"schedule", "workflow_dispatch"}
    (cron,) = [entry["cron"] for entry in on["schedule"]]
    minute, hour, day, month, weekday = cron.split()
    assert minute.isdigit() and hour.isdigit(), f"{cron} runs more than once a day"
    assert (day, month) == ("*", "*") and weekday.isdigit(), f"{cron} is not weekly"
    assert workflow["permissions"] == {"contents": "read"}
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "write", "pull-requests": "write"}
    checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0 and checkout["with"]["persist-credentials"] is False
    assert workflow["env"]["COPIER_VERSION"].split(".")[0] == copier_major()
    runs = [s for s in job["steps"] if "run" in s]
    assert 'pip install "copier==$COPIER_VERSION"' in runs[0]["run"]
    update = runs[-1]
    assert update["run"] == "scripts/blueprint-update.sh github"
    assert update["env"]["TRELLIS_BLUEPRINTS_TOKEN"] == "${{ secrets.TRELLIS_BLUEPRINTS_TOKEN }}"
    assert update["env"]["GITHUB_TOKEN"] == "${{ github.token }}"
    text = (repo / WORKFLOW).read_text()
    assert "TRELLIS_BLUEPRINTS_TOKEN" in text.split("name:")[0], "document the token up top"


@pytest.mark.tools
def test_the_script_passes_shellcheck_and_is_executable(variant):
    _, _, repo = variant
    rendered = repo / "scripts/blueprint-update.sh"
    assert rendered.read_bytes() == SCRIPT.read_bytes(), "the script is shipped as it is"
    assert os.access(rendered, os.X_OK), "CI runs it directly: it must be executable"
    result = subprocess.run(
        [shellcheck(), "--shell=bash", str(rendered)],
        capture_output=True, text=True, timeout=scaled(60), check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("variant", ["pytorch-gpu-gitlab-gcp"], indirect=True)
def test_the_scheduled_gitlab_pipeline_runs_the_update_alone(variant):
    _, answers, repo = variant
    config = yaml.safe_load((repo / ".gitlab-ci.yml").read_text())
    main = {"CI_DEFAULT_BRANCH": "main", "CI_COMMIT_BRANCH": "main"}
    scheduled = {**main, "CI_PIPELINE_SOURCE": "schedule", "BLUEPRINT_UPDATE": "true"}
    assert pipeline_jobs(config, scheduled) == {"blueprint-update"}
    # Other schedules (a nightly run, say) and pushes run the usual jobs, never the update.
    nightly = pipeline_jobs(config, {**main, "CI_PIPELINE_SOURCE": "schedule"})
    assert "blueprint-update" not in nightly and {"lint", "test"} <= nightly
    pushed = pipeline_jobs(config, {**main, "CI_PIPELINE_SOURCE": "push"})
    assert "blueprint-update" not in pushed and {"lint", "test", "train"} <= pushed
    merge_request = pipeline_jobs(
        config,
        {**main, "CI_COMMIT_BRANCH": "", "CI_PIPELINE_SOURCE": "merge_request_event",
         "CI_MERGE_REQUEST_IID": "7"},
        changed=["src/demand_forecast/train.py"],
    )  # fmt: skip
    assert merge_request == {"lint", "test"}
    # On another branch, even a schedule with the variable proposes nothing.
    other = {**scheduled, "CI_COMMIT_BRANCH": "experiment"}
    assert "blueprint-update" not in pipeline_jobs(config, other)

    job = config["blueprint-update"]
    assert job["variables"]["GIT_DEPTH"] == "0"
    assert job["variables"]["COPIER_VERSION"].split(".")[0] == copier_major()
    assert job["script"][-1] == "scripts/blueprint-update.sh gitlab"
    assert job["image"] == f"python:{answers.get('python_version', '3.11')}"  # with git, curl
    assert job["timeout"]


# --- the script, run for real -------------------------------------------------------------------


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Releases 1.0.0, 1.1.0 (a manifest change) and 1.2.0 (a docs change)."""
    src = blueprint_source(tmp_path_factory.mktemp("source") / "trellis")
    release(
        src, "1.1.0", NOTES_1_1,
        {"deploy/base/inferenceservice.yaml.jinja": ("maxReplicas: 2", "maxReplicas: 3")},
    )  # fmt: skip
    release(
        src, "1.2.0", NOTES_1_2,
        {"docs/runbook.md.jinja": ("## Roll back\n", "## Roll back\n\nEscalate first.\n")},
    )  # fmt: skip
    return src


def hosted(src: Path, root: Path, variant: str) -> tuple[Path, Path]:
    """A repository generated at 1.0.0, pushed to a bare ``origin``: (checkout, origin)."""
    origin = root / "origin.git"
    git(root, "init", "-q", "--bare", str(origin))
    repo = generated_repo(src, root / "repo", VARIANTS[variant])
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "push", "-q", "origin", "main")
    return repo, origin


def run_script(
    repo: Path, host: str, tmp: Path, **env: str
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]], str]:
    """Run the generated repository's own script: (result, fake API calls, job summary)."""
    fakes = tmp / "fakes"
    fakes.mkdir(exist_ok=True)
    for name in ("gh", "curl"):
        (fakes / name).write_text(FAKE)
        (fakes / name).chmod(0o755)
    log, summary = tmp / "calls.jsonl", tmp / "summary.md"
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    result = subprocess.run(
        [str(repo / "scripts/blueprint-update.sh"), host],
        cwd=repo,
        env={
            # A clean environment, as on a runner: the fakes first, then Copier's venv.
            "PATH": f"{fakes}:{Path(sys.executable).parent}:/usr/bin:/bin",
            "HOME": str(home),
            "FAKE_LOG": str(log),
            **({"GITHUB_STEP_SUMMARY": str(summary)} if host == "github" else {}),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=scaled(300),
        check=False,
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return result, calls, summary.read_text() if summary.exists() else ""


def test_github_an_update_becomes_a_pull_request_with_the_changelog(source, tmp_path):
    repo, origin = hosted(source, tmp_path, "sklearn-github-aws")

    result, calls, summary = run_script(
        repo, "github", tmp_path, FAKE_ANSWER="https://github.com/acme/fraud-detector/pull/1"
    )

    assert result.returncode == 0, result.stdout + result.stderr
    (call,) = calls
    assert call["tool"] == "gh" and call["args"][:2] == ["pr", "create"]
    args = call["args"]
    assert args[args.index("--base") + 1] == "main"
    assert args[args.index("--head") + 1] == "blueprint-update/1.2.0"
    assert args[args.index("--title") + 1] == "Update the ml-model blueprint to 1.2.0"
    body = call["files"]["--body-file"]
    assert "from version `1.0.0` to `1.2.0`" in body
    assert "### 1.2.0 - 2026-12-01" in body and "### 1.1.0 - 2026-12-01" in body
    assert body.index("### 1.2.0") < body.index("### 1.1.0")
    assert NOTES_1_1 in body and "- Add your on-call channel." in body
    assert "### 0.2.0" not in body, "releases up to the version in use are not news"
    assert "Proposed the ml-model blueprint 1.2.0" in summary

    # The branch on origin holds one commit on top of main: the whole update.
    branch = "blueprint-update/1.2.0"
    assert git(origin, "rev-list", "--count", f"main..{branch}").strip() == "1"
    changed = git(origin, "diff", "--name-only", f"main..{branch}").split()
    assert {".copier-answers.yml", "catalog-info.yaml", "deploy/base/inferenceservice.yaml",
            "docs/runbook.md"} <= set(changed)  # fmt: skip
    answers = yaml.safe_load(git(origin, "show", f"{branch}:.copier-answers.yml"))
    assert answers["_commit"] == "1.2.0"
    assert "maxReplicas: 3" in git(origin, "show", f"{branch}:deploy/base/inferenceservice.yaml")
    assert "Update the ml-model blueprint to 1.2.0" in git(origin, "log", "-1", branch)

    # A week later, the same version is not proposed twice.
    git(repo, "switch", "-q", "main")
    again, calls, summary = run_script(repo, "github", tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert [c["tool"] for c in calls] == ["gh"]  # still only the first call
    assert "already pushed" in summary


def test_github_a_conflict_fails_names_the_file_and_opens_nothing(source, tmp_path):
    repo, origin = hosted(source, tmp_path, "sklearn-github-aws")
    manifest = repo / "deploy/base/inferenceservice.yaml"
    manifest.write_text(manifest.read_text().replace("minReplicas: 1", "minReplicas: 2"))
    git(repo, "commit", "-q", "-am", "Two replicas at least")
    git(repo, "push", "-q", "origin", "main")

    result, calls, summary = run_script(repo, "github", tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert calls == [], "no pull request may be opened with conflicts"
    assert "- `deploy/base/inferenceservice.yaml`" in summary
    assert "from 1.0.0 to 1.2.0 needs a person" in summary
    assert "trellis update --to 1.2.0" in summary
    assert git(origin, "branch", "--list", "blueprint-update/*").strip() == ""


def test_github_nothing_to_do_when_up_to_date(source, tmp_path):
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    repo = generated_repo(source, tmp_path / "repo", VARIANTS["sklearn-github-aws"], "1.2.0")
    git(repo, "remote", "add", "origin", str(origin))

    result, calls, summary = run_script(repo, "github", tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert calls == []
    assert "up to date: 1.2.0" in summary
    assert git(repo, "status", "--porcelain") == ""


def test_gitlab_an_update_becomes_a_merge_request_through_the_api(source, tmp_path):
    repo, origin = hosted(source, tmp_path, "pytorch-gpu-gitlab-gcp")
    git(repo, "checkout", "-q", "--detach")  # GitLab runners check out a detached HEAD

    result, calls, _ = run_script(
        repo, "gitlab", tmp_path,
        BLUEPRINT_UPDATE_TOKEN="glpat-project-token",
        BASE_BRANCH="main",
        CI_SERVER_URL="https://gitlab.example.invalid",
        CI_SERVER_HOST="gitlab.example.invalid",
        CI_API_V4_URL="https://gitlab.example.invalid/api/v4",
        CI_PROJECT_ID="42",
        FAKE_ANSWER='{"web_url": "https://gitlab.example.invalid/acme/demand-forecast/-/merge_requests/1"}',
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    (call,) = calls
    assert call["tool"] == "curl"
    assert call["args"][-1] == "https://gitlab.example.invalid/api/v4/projects/42/merge_requests"
    assert "POST" in call["args"]
    headers = [text for arg, text in call["files"].items() if "PRIVATE-TOKEN" in text]
    assert headers == ["PRIVATE-TOKEN: glpat-project-token\n"]
    assert "glpat-project-token" not in " ".join(call["args"]), "the token is never an argument"
    (request,) = [json.loads(text) for text in call["files"].values() if text.startswith("{")]
    assert request["source_branch"] == "blueprint-update/1.2.0"
    assert request["target_branch"] == "main"
    assert request["title"] == "Update the ml-model blueprint to 1.2.0"
    assert NOTES_1_1 in request["description"]
    assert "### 1.2.0 - 2026-12-01" in request["description"]
    answers = yaml.safe_load(git(origin, "show", "blueprint-update/1.2.0:.copier-answers.yml"))
    assert answers["_commit"] == "1.2.0"


def test_gitlab_without_a_project_token_says_what_to_add(source, tmp_path):
    repo, _ = hosted(source, tmp_path, "pytorch-gpu-gitlab-gcp")
    result, calls, _ = run_script(repo, "gitlab", tmp_path, BASE_BRANCH="main")
    assert result.returncode == 1
    assert "BLUEPRINT_UPDATE_TOKEN is not set" in result.stderr
    assert calls == []
    assert git(repo, "status", "--porcelain") == ""


def test_the_script_refuses_an_unknown_host(tmp_path):
    result = subprocess.run(
        [str(SCRIPT), "bitbucket"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 2 and "usage:" in result.stderr
