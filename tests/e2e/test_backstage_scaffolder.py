"""The Software Templates run in a real Backstage scaffolder and write what `trellis new` writes.

Everything is real and on 127.0.0.1: ``trellis serve`` as a process, and a Backstage backend
with the catalog, the scaffolder, its GitHub module and the Trellis scaffolder module
(``backend/plugin-scaffolder-backend-module-trellis``, compiled), configured with the
``trellis:`` block exactly as docs/backstage.md shows it. The platform's catalog files are
served over HTTP the way a Git host serves them.

Real tasks cannot publish (there is no Git host), so each template also gets a test-only
copy in which every publish step becomes a ``debug:log`` of its ``repoUrl`` (same id, same
``if``, same expression) and one last ``debug:log`` lists the workspace with contents.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.backstage import (
    HARNESS_DIR,
    MODULE_DIR,
    BackstageBackend,
    dry_run_files,
    node_executable,
    task_log,
    workspace_listing,
)
from support.blueprints import (
    FINETUNE_VARIANTS,
    HUB_VARIANTS,
    LLM_VARIANTS,
    SPOKE_VARIANTS,
    VARIANTS,
)
from support.gitrepos import blueprint_source
from support.services import BASE_ENV, TrellisServer, free_port
from support.timing import scaled

REPO = Path(__file__).resolve().parents[2]
TEMPLATES_DIR = REPO / "catalog" / "templates"
TOKEN = "scaffolder-token-" + "s" * 24
CANONICAL = "https://github.com/acme/trellis.git"
WORKSPACE_STEP = "workspace"
CHECK_SUFFIX = "-workspace-check"


@dataclass(frozen=True)
class Sample:
    """Answers a person could give in a template's form, and what they must lead to."""

    values: dict[str, Any]
    repo_url: str
    """What the publish step's ``repoUrl`` evaluates to for these answers."""
    refused_by_blueprint: tuple[str, Any]
    """An answer the form's schema accepts and the blueprint (Copier) refuses."""
    refused_by_form: tuple[str, Any]
    """An answer the form's own schema refuses, before Trellis is asked."""


SAMPLES: dict[str, Sample] = {
    "ml-model": Sample(
        values={**VARIANTS["sklearn-github-aws"], "repository": "acme/fraud-detector"},
        repo_url="github.com?owner=acme&repo=fraud-detector",
        refused_by_blueprint=("owner", "Risk Team"),
        refused_by_form=("project_slug", "Bad Slug"),
    ),
    "llm-service": Sample(
        values={
            **LLM_VARIANTS["kserve-github-aws"],
            "service_repository": "acme/support-assistant",
        },
        repo_url="github.com?owner=acme&repo=support-assistant",
        refused_by_blueprint=("model_license", "llama3.1"),
        refused_by_form=("service_slug", "Bad Slug"),
    ),
    "edge-finetune": Sample(
        values={**FINETUNE_VARIANTS["lora-github-aws"], "repo_path": "acme/support-assistant-eu"},
        repo_url="github.com?owner=acme&repo=support-assistant-eu",
        refused_by_blueprint=("team", "Support Team"),
        refused_by_form=("hub_model", "Bad Model"),
    ),
    "platform-hub": Sample(
        values={**HUB_VARIANTS["create-github-aws"], "hub_repo_path": "acme/acme-hub"},
        repo_url="github.com?owner=acme&repo=acme-hub",
        refused_by_blueprint=("hub_cloud_region", "mars-north-1"),
        refused_by_form=("hub_name", "Bad Hub"),
    ),
    "platform-spoke": Sample(
        values=SPOKE_VARIANTS["aws-eu-west"],
        repo_url="github.com?owner=acme&repo=platform-spoke-eu-west",
        refused_by_blueprint=("spoke_team", "Platform Team"),
        refused_by_form=("spoke_name", "Bad Name"),
    ),
}


def _templates() -> dict[str, dict[str, Any]]:
    """Every Template entity in catalog/templates, by name."""
    found = {}
    for path in sorted(TEMPLATES_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc and doc.get("kind") == "Template":
                found[doc["metadata"]["name"]] = doc
    return found


TEMPLATES = _templates()


def sample(name: str) -> Sample:
    assert name in SAMPLES, (
        f"catalog/templates has a template {name!r} with no sample answers: add it to SAMPLES "
        "in tests/e2e/test_backstage_scaffolder.py"
    )
    return SAMPLES[name]


def blueprint_of(template: dict[str, Any]) -> str:
    renders = [s for s in template["spec"]["steps"] if s["action"] == "trellis:blueprint:render"]
    assert len(renders) == 1, f"{template['metadata']['name']}: expected one render step"
    blueprint: str = renders[0]["input"]["blueprint"]
    return blueprint


def publish_steps(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in template["spec"]["steps"] if s["action"].startswith("publish:")]


def workspace_check(template: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``template`` that runs for real without a Git host (see the module doc)."""
    check = json.loads(json.dumps(template))
    check["metadata"]["name"] += CHECK_SUFFIX
    steps = []
    for step in template["spec"]["steps"]:
        if step["action"].startswith("publish:"):
            logged = {k: v for k, v in step.items() if k in ("id", "name", "if")}
            steps.append(
                {**logged, "action": "debug:log", "input": {"message": step["input"]["repoUrl"]}}
            )
        elif step["action"] != "catalog:register":  # it needs the published repository
            steps.append(step)
    steps.append(
        {
            "id": WORKSPACE_STEP,
            "name": "List the workspace",
            "action": "debug:log",
            "input": {"listWorkspace": "with-contents"},
        }
    )
    check["spec"]["steps"] = steps
    check["spec"].pop("output", None)
    return check


def documented_config(address: str) -> dict[str, Any]:
    """The `trellis:` app-config snippet of docs/backstage.md, pointed at ``address``."""
    text = (REPO / "docs" / "backstage.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- snippet: scaffolder -->\n```yaml\n(.*?)```", text, re.S)
    assert match, "docs/backstage.md has no snippet 'scaffolder'"
    config: dict[str, Any] = yaml.safe_load(
        match.group(1).replace("trellis.internal:8080", address)
    )
    return config


class QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@dataclass
class Stack:
    trellis: TrellisServer
    backstage: BackstageBackend
    expected: dict[str, Path]
    """``trellis new`` output of each template's sample answers."""
    working_directory: Path
    """The scaffolder's ``backend.workingDirectory``, where task workspaces are made."""


def trellis_new(blueprint: str, values: dict[str, Any], dest: Path, env: dict[str, str]) -> Path:
    """Run the real CLI with the sample answers, as a person would from a shell."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    answers = dest.parent / f"{dest.name}-answers.yaml"
    answers.write_text(yaml.safe_dump(values), encoding="utf-8")
    command = [sys.executable, "-m", "trellis", "new", blueprint, str(dest)]
    command += ["--defaults", "--vcs-ref", "HEAD", "--data-file", str(answers)]
    done = subprocess.run(
        command,
        env={**os.environ, **BASE_ENV, **env},
        capture_output=True,
        text=True,
        timeout=scaled(120),
        check=False,
    )
    assert done.returncode == 0, f"trellis new failed:\n{done.stdout}\n{done.stderr}"
    return dest


def files_on_disk(root: Path) -> dict[str, tuple[bytes, bool]]:
    return {
        path.relative_to(root).as_posix(): (path.read_bytes(), os.access(path, os.X_OK))
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("scaffolder")
    # A tagged, committed copy: a working tree with edits gives every render a new `_commit`.
    source = blueprint_source(tmp / "blueprints")
    env = {
        "TRELLIS_API_TOKENS": TOKEN,
        "TRELLIS_BLUEPRINTS__SOURCE": str(source),
        "TRELLIS_BLUEPRINTS__VCS_REF": "HEAD",
        "TRELLIS_BLUEPRINTS__REPOSITORY_URL": CANONICAL,
        # No registry of its own: the embedded one in the state directory starts empty.
        "TRELLIS_STATE_DIR": str(tmp / "state"),
    }
    expected = {
        name: trellis_new(blueprint_of(template), sample(name).values, tmp / "expected" / name, env)
        for name, template in TEMPLATES.items()
    }

    served = tmp / "served"
    served.mkdir()
    (served / "platform").symlink_to(REPO / "catalog", target_is_directory=True)
    (served / "checks").mkdir()
    for name, template in TEMPLATES.items():
        check = yaml.safe_dump(workspace_check(template), sort_keys=False)
        (served / "checks" / f"{name}.yaml").write_text(check, encoding="utf-8")
    files = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietFiles, directory=str(served)))
    threading.Thread(target=files.serve_forever, daemon=True).start()
    host = f"127.0.0.1:{files.server_port}"

    working_directory = tmp / "scaffolder-work"
    working_directory.mkdir()
    trellis = TrellisServer(state_dir=tmp / "state", env=env, port=free_port())
    trellis.state_dir.mkdir()
    try:
        trellis.start()
        locations = [{"type": "url", "target": f"http://{host}/platform/catalog-info.yaml"}]
        locations += [
            {"type": "url", "target": f"http://{host}/checks/{name}.yaml"} for name in TEMPLATES
        ]
        with contextlib.ExitStack() as running:
            with pytest.MonkeyPatch.context() as patch:
                # The documented snippet reads the token from the backend's environment.
                patch.setenv("TRELLIS_API_TOKEN", TOKEN)
                backstage = running.enter_context(
                    BackstageBackend.start(
                        tmp / "backstage",
                        locations=locations,
                        reading_allow=[host],
                        extra_config={
                            **documented_config(f"127.0.0.1:{trellis.port}"),
                            "backend": {"workingDirectory": str(working_directory)},
                        },
                    )
                )
            wanted = set(TEMPLATES) | {name + CHECK_SUFFIX for name in TEMPLATES}
            backstage.wait_for(
                lambda: (
                    wanted <= {e["metadata"]["name"] for e in backstage.entities("kind=template")}
                ),
                60,
                f"the templates {sorted(wanted)} in the catalog",
            )
            yield Stack(
                trellis=trellis,
                backstage=backstage,
                expected=expected,
                working_directory=working_directory,
            )
    finally:
        trellis.stop()
        files.shutdown()
        files.server_close()


def utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def headings(listing: str) -> list[str]:
    """The `` - path:`` lines of a workspace listing."""
    return re.findall(r"^ - (.+):$", listing, re.M)


def template_entity(backstage: BackstageBackend, name: str) -> dict[str, Any]:
    found = backstage.entities(f"kind=template,metadata.name={name}")
    assert len(found) == 1, f"template {name} is not in the catalog"
    return found[0]


def step_status(events: list[dict[str, Any]], step_id: str) -> str | None:
    """The last status the task reported for a step (``completed``, ``failed``, ...)."""
    statuses = [
        e["body"]["status"]
        for e in events
        if e["body"].get("stepId") == step_id and "status" in e["body"]
    ]
    return statuses[-1] if statuses else None


def completion_error(events: list[dict[str, Any]]) -> dict[str, Any]:
    completions = [e for e in events if e["type"] == "completion"]
    assert completions, "the task has no completion event"
    error: dict[str, Any] = completions[-1]["body"].get("error", {})
    return error


@pytest.mark.backstage
def test_every_template_is_ingested_without_errors(stack: Stack) -> None:
    names = {e["metadata"]["name"] for e in stack.backstage.entities("kind=template")}
    assert set(TEMPLATES) <= names
    assert stack.backstage.catalog_errors() == []


@pytest.mark.backstage
@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_a_dry_run_of_the_template_writes_what_trellis_new_writes(stack: Stack, name: str) -> None:
    template = template_entity(stack.backstage, name)
    response = stack.backstage.dry_run(template, sample(name).values)
    rendered = dry_run_files(response)
    expected = files_on_disk(stack.expected[name])
    assert sorted(rendered) == sorted(expected)
    assert [path for path in rendered if rendered[path] != expected[path]] == []
    answers = yaml.safe_load(rendered[".copier-answers.yml"][0])
    assert answers["_commit"] == "1.0.0" and answers["_src_path"] == CANONICAL
    # The real publish step (the GitHub module's action; it skips itself in a dry run)
    # received the repoUrl its expression computes from the answers.
    logged = "\n".join(task_log(response.json()["log"]))
    assert f'"repoUrl": "{sample(name).repo_url}"' in logged


@pytest.mark.backstage
@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_a_task_writes_exactly_the_trellis_new_files(stack: Stack, name: str) -> None:
    task, events = stack.backstage.run_task(
        f"template:default/{name}{CHECK_SUFFIX}", sample(name).values
    )
    assert task["status"] == "completed", "\n".join(task_log(events))
    listings = [m for m in task_log(events, WORKSPACE_STEP) if m.startswith("Workspace:\n")]
    expected = workspace_listing(stack.expected[name])
    # debug:log prints files as UTF-8 text, which is lossless only for UTF-8 files.
    assert [
        p for p, (data, _) in files_on_disk(stack.expected[name]).items() if not utf8(data)
    ] == []
    assert len(listings) == 1, "\n".join(task_log(events))
    # File names first, for a readable failure; then every byte of every file.
    assert headings(listings[0]) == headings(expected)
    assert listings[0] == expected
    # Exactly one publish step ran, and its repoUrl expression gave the expected target.
    published = [
        step["id"]
        for step in publish_steps(TEMPLATES[name])
        if sample(name).repo_url in task_log(events, step["id"])
    ]
    assert len(published) == 1, "\n".join(task_log(events))
    rendered = [m for m in task_log(events, "render") if m.startswith("Rendered ")]
    expected_count = len(files_on_disk(stack.expected[name]))
    assert rendered == [f"Rendered {blueprint_of(TEMPLATES[name])} 1.0.0: {expected_count} files"]
    # The token stays out of the task's events and the backend's log.
    assert TOKEN not in json.dumps(events)
    assert TOKEN not in stack.backstage.log_path.read_text(errors="replace")


@pytest.mark.backstage
@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_each_missing_required_answer_is_refused_by_name(stack: Stack, name: str) -> None:
    template = template_entity(stack.backstage, name)
    required = [
        field for page in template["spec"]["parameters"] for field in page.get("required", [])
    ]
    assert required, f"{name} has no required answers"
    for field in required:
        values = {k: v for k, v in sample(name).values.items() if k != field}
        response = stack.backstage.dry_run(template, values)
        assert response.status_code == 400, response.text
        stacks = [e["stack"] for e in response.json()["errors"]]
        assert f'instance requires property "{field}"' in stacks


@pytest.mark.backstage
@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_an_answer_the_blueprint_refuses_fails_naming_the_field(stack: Stack, name: str) -> None:
    field, value = sample(name).refused_by_blueprint
    values = {**sample(name).values, field: value}
    prefix = f"Trellis rejected the answers for {blueprint_of(TEMPLATES[name])}: {field}: "

    response = stack.backstage.dry_run(template_entity(stack.backstage, name), values)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["name"] == "InputError" and error["message"].startswith(prefix), error

    task, events = stack.backstage.run_task(f"template:default/{name}{CHECK_SUFFIX}", values)
    assert task["status"] == "failed"
    error = completion_error(events)
    assert error["name"] == "InputError" and error["message"].startswith(prefix), error
    assert step_status(events, WORKSPACE_STEP) == "skipped"


@pytest.mark.backstage
@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_an_answer_the_form_refuses_never_reaches_trellis(stack: Stack, name: str) -> None:
    field, value = sample(name).refused_by_form
    values = {**sample(name).values, field: value}
    response = stack.backstage.dry_run(template_entity(stack.backstage, name), values)
    assert response.status_code == 400, response.text
    assert [e["property"] for e in response.json()["errors"]] == [f"instance.{field}"]
    task = stack.backstage.client.post(
        "/api/scaffolder/v2/tasks",
        json={"templateRef": f"template:default/{name}{CHECK_SUFFIX}", "values": values},
    )
    assert task.status_code == 400, task.text
    assert [e["property"] for e in task.json()["errors"]] == [f"instance.{field}"]


@contextlib.contextmanager
def trellis_stopped(trellis: TrellisServer) -> Iterator[None]:
    """Stop the shared Trellis server for the block; start it again, as it was, after."""
    env = dict(trellis.env)
    trellis.stop()
    try:
        yield
    finally:
        trellis.stop()
        trellis.env = env
        trellis.start()


@contextlib.contextmanager
def misbehaving_trellis(port: int, body: bytearray) -> Iterator[None]:
    """A server in Trellis's place that answers every render with ``body`` (as it is then).

    It stands in for a broken or compromised backend, which the real one cannot be made into.
    """

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            answer = bytes(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def _file(path: str, content: str = "x") -> dict[str, Any]:
    encoded = base64.b64encode(content.encode()).decode()
    return {"path": path, "base64Content": encoded, "executable": False}


def bad_renderings(outside: Path) -> dict[str, tuple[list[dict[str, Any]], str]]:
    """Answers a broken or compromised backend could give, each refused for the reason given.

    Each has a good file first, which must not be written either. ``outside`` is an absolute
    path outside every workspace.
    """
    return {
        "parent": ([_file("README.md"), _file("../escaped")], 'unsafe path "../escaped"'),
        "absolute": ([_file("README.md"), _file(str(outside))], f'unsafe path "{outside}"'),
        "dotdot-inside": ([_file("README.md"), _file("a/../../escaped")], "unsafe path"),
        "bad-base64": (
            [_file("README.md"), {**_file("x.txt"), "base64Content": "!!"}],
            "x.txt has no valid base64Content",
        ),
        "duplicate": ([_file("README.md"), _file("README.md")], "README.md appears twice"),
        "file-and-folder": (
            [_file("docs"), _file("docs/index.md")],
            "docs/index.md is inside docs",
        ),
    }


def fails_while_stopped(stack: Stack, name: str) -> None:
    """With Trellis stopped, the task and the dry-run fail at the render step."""
    trellis = stack.trellis
    task, events = stack.backstage.run_task(
        f"template:default/{name}{CHECK_SUFFIX}", sample(name).values
    )
    dry_run = stack.backstage.dry_run(template_entity(stack.backstage, name), sample(name).values)
    message = (
        f"Trellis at {trellis.url} is unreachable: connect ECONNREFUSED 127.0.0.1:{trellis.port}"
    )
    assert task["status"] == "failed"
    assert completion_error(events) == {"name": "ServiceUnavailableError", "message": message}
    assert step_status(events, "render") == "failed"
    # Nothing after the render step ran: no publish, no workspace listing.
    assert step_status(events, WORKSPACE_STEP) == "skipped"
    assert not [m for m in task_log(events) if m.startswith("Workspace:")]
    assert dry_run.status_code == 503
    assert dry_run.json()["error"]["message"] == message


def refuses_bad_renderings(stack: Stack, name: str, subtests: pytest.Subtests) -> None:
    """A stand-in on Trellis's port answers each bad rendering; every task fails naming it."""
    prefix = f"Trellis returned an invalid rendering of {blueprint_of(TEMPLATES[name])}: "
    outside = stack.working_directory.parent / "escaped-absolute"
    body = bytearray()
    with misbehaving_trellis(stack.trellis.port, body):
        for case, (files, reason) in bad_renderings(outside).items():
            with subtests.test(f"bad rendering: {case}"):
                body[:] = json.dumps({"blueprint": name, "version": "1", "files": files}).encode()
                task, events = stack.backstage.run_task(
                    f"template:default/{name}{CHECK_SUFFIX}", sample(name).values
                )
                assert task["status"] == "failed"
                error = completion_error(events)["message"]
                assert error.startswith(prefix) and reason in error, error
                assert step_status(events, WORKSPACE_STEP) == "skipped"
    # Workspaces live in the scaffolder's working directory; nothing got out of one.
    assert sorted(p.name for p in stack.working_directory.parent.rglob("*escaped*")) == []


def fails_with_the_token_reason(stack: Stack, name: str) -> None:
    """Trellis, started with other tokens, refuses the configured one; the task says why."""
    trellis = stack.trellis
    trellis.env = {**trellis.env, "TRELLIS_API_TOKENS": "another-token-" + "t" * 24}
    trellis.start()
    task, events = stack.backstage.run_task(
        f"template:default/{name}{CHECK_SUFFIX}", sample(name).values
    )
    assert task["status"] == "failed"
    assert completion_error(events) == {
        "name": "Error",
        "message": f"Trellis could not render {blueprint_of(TEMPLATES[name])}: "
        "HTTP 401: a valid bearer token is required",
    }
    assert step_status(events, WORKSPACE_STEP) == "skipped"


@pytest.mark.backstage
def test_a_trellis_that_fails_fails_the_task_before_any_file_is_written(
    stack: Stack, subtests: pytest.Subtests
) -> None:
    """Trellis stopped, a stand-in giving bad renderings, then Trellis refusing the token.

    The cases run in that order during one stop of the shared Trellis: each restart of it
    costs seconds of CPU.
    """
    name = sorted(TEMPLATES)[0]
    with trellis_stopped(stack.trellis):
        with subtests.test("stopped"):
            fails_while_stopped(stack, name)
        refuses_bad_renderings(stack, name, subtests)
        with subtests.test("token"):
            fails_with_the_token_reason(stack, name)


def test_the_documented_install_line_names_this_package() -> None:
    package = json.loads((MODULE_DIR / "package.json").read_text(encoding="utf-8"))
    line = f"backend.add(import('{package['name']}'));"
    assert line in (REPO / "docs" / "backstage.md").read_text(encoding="utf-8")
    assert line in (MODULE_DIR / "README.md").read_text(encoding="utf-8")
    assert package["backstage"] == {
        "role": "backend-plugin-module",
        "pluginId": "scaffolder",
        "pluginPackage": "@backstage/plugin-scaffolder-backend",
    }


CONFIG_SCHEMA_PROBE = """
const { loadConfigSchema } = require('@backstage/config-loader');
(async () => {
  const [packageJson, data] = process.argv.slice(1);
  const schema = await loadConfigSchema({ dependencies: [], packagePaths: [packageJson] });
  const [processed] = schema.process([{ data: JSON.parse(data), context: 'app' }], {
    visibility: ['frontend', 'backend'],
    withFilteredKeys: true,
  });
  process.stdout.write(JSON.stringify(processed));
})();
"""


@pytest.mark.backstage
def test_the_config_schema_keeps_the_token_secret() -> None:
    config = documented_config("127.0.0.1:8080")
    probe = subprocess.run(
        [
            node_executable(),
            "-e",
            CONFIG_SCHEMA_PROBE,
            str(MODULE_DIR / "package.json"),
            json.dumps(config),
        ],
        cwd=HARNESS_DIR,
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    processed = json.loads(probe.stdout)
    # Everything but the secret is visible to backend and frontend config readers.
    assert processed["filteredKeys"] == ["trellis.token"]
    assert processed["data"]["trellis"] == {
        "baseUrl": "http://127.0.0.1:8080",
        "timeoutSeconds": 120,
    }


@pytest.mark.backstage
def test_without_a_base_url_the_backend_does_not_start(tmp_path: Path) -> None:
    with (
        pytest.raises(AssertionError) as failed,
        BackstageBackend.start(
            tmp_path,
            locations=[],
            reading_allow=[],
            extra_config={"trellis": {"token": TOKEN}},
            timeout=scaled(60),
        ),
    ):
        pass
    assert "Missing required config value at 'trellis.baseUrl'" in str(failed.value)
