"""A small cookiecutter template exercising what ``cookiecutter.json`` can declare, and trust.

Strings, choices, booleans, dict variables, private ``_``/``__`` variables, Jinja defaults
and ``_copy_without_render`` render as the ``cookiecutter`` command renders them. Hooks and
the template's own Jinja ``_extensions`` run only for a trusted template; an untrusted one
with either is refused before anything runs,
and a hook that hangs is stopped, with what it started, at the template's timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from support.cookiecutter import cookiecutter_command, cookiecutter_settings, tree
from support.gitrepos import commit_all
from trellis.cli.app import app

pytestmark = pytest.mark.tools

runner = CliRunner()

CONTEXT = {
    "project_name": "Demo Service",
    "slug": "{{ cookiecutter.project_name.lower().replace(' ', '-') }}",
    "use_docker": True,
    "license": ["MIT", "Apache-2.0"],
    "settings": {"region": "eu-west-1", "replicas": 2},
    "_copy_without_render": ["raw/*"],
    "__prefix": "{{ cookiecutter.slug }}-svc",
    "_private": "kept",
}
FILES = {
    "README.md": "# {{ cookiecutter.project_name }}\n{{ cookiecutter.__prefix }} in "
    "{{ cookiecutter.settings.region }} x{{ cookiecutter.settings.replicas }}\n"
    "{% if cookiecutter.use_docker %}docker{% else %}no docker{% endif %}\n"
    "{{ cookiecutter.license }} {{ cookiecutter._private }}\n",
    "raw/keep.txt": "{{ left as written }}\n",
    "run.sh": "#!/bin/sh\necho {{ cookiecutter.slug }}\n",
}
HANGING_HOOK = "import subprocess, time\nsubprocess.Popen(['sleep', '3607'])\ntime.sleep(3600)\n"


EXTENSION = """from jinja2.ext import Extension


class ShoutExtension(Extension):
    def __init__(self, environment):
        super().__init__(environment)
        environment.filters["shout"] = lambda text: text.upper() + "!"
"""


def _template(root: Path, *, hook: str | None = None, extension: bool = False) -> Path:
    """A git repository holding the template, tagged v0.1.0."""
    root.mkdir()
    context = dict(CONTEXT)
    files = dict(FILES)
    if extension:
        context["_extensions"] = ["local_extensions.ShoutExtension"]
        (root / "local_extensions.py").write_text(EXTENSION)
        files["shout.txt"] = "{{ cookiecutter.project_name | shout }}\n"
    (root / "cookiecutter.json").write_text(json.dumps(context, indent=2))
    project = root / "{{ cookiecutter.slug }}"
    for name, text in files.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    (project / "run.sh").chmod(0o755)
    if hook is not None:
        (root / "hooks").mkdir()
        (root / "hooks" / "post_gen_project.py").write_text(hook)
    commit_all(root, "template", tag="v0.1.0")
    return root


def _new(destination: Path, env: str, *data: str):
    args = ["new", "demo", str(destination)]
    for pair in data:
        args += ["--data", pair]
    return runner.invoke(app, args, env={"TRELLIS_BLUEPRINTS__COOKIECUTTER": env})


def test_every_kind_of_variable_renders_as_cookiecutter_renders_it(tmp_path: Path) -> None:
    template = _template(tmp_path / "template")
    env = cookiecutter_settings("demo", template)  # no hooks: trust is not needed
    listed = runner.invoke(
        app, ["blueprints", "list"], env={"TRELLIS_BLUEPRINTS__COOKIECUTTER": env}
    )
    assert "questions: project_name, slug, use_docker, license, settings" in listed.output

    answers = {"use_docker": False, "license": "Apache-2.0", "settings": {"region": "us-east-1"}}
    result = _new(
        tmp_path / "trellis", env, "use_docker=false", "license=Apache-2.0",
        'settings={"region": "us-east-1"}',
    )  # fmt: skip
    assert result.exit_code == 0, result.output

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"default_context": answers, "replay_dir": str(tmp_path / "r"),
                                  "cookiecutters_dir": str(tmp_path / "c")}))  # fmt: skip
    (tmp_path / "plain").mkdir()
    subprocess.run(
        [cookiecutter_command(), str(template), "--no-input", "--output-dir",
         str(tmp_path / "plain"), "--config-file", str(config)],
        check=True, capture_output=True,
    )  # fmt: skip
    rendered = tree(tmp_path / "trellis")
    assert rendered == tree(tmp_path / "plain" / "demo-service")
    readme = rendered["README.md"][0].decode()
    assert "demo-service-svc in us-east-1 x2" in readme  # a dict variable merged, a __ variable
    assert "no docker" in readme and "Apache-2.0 kept" in readme
    assert rendered["raw/keep.txt"][0] == b"{{ left as written }}\n"
    assert rendered["run.sh"][1] is True

    context = json.loads((tmp_path / "trellis" / ".cruft.json").read_text())["context"]
    # cookiecutter renders a dict variable's values as text, and records them so
    assert context["cookiecutter"]["settings"] == {"region": "us-east-1", "replicas": "2"}
    assert context["cookiecutter"]["_copy_without_render"] == ["raw/*"]


def test_answers_are_checked_before_rendering(tmp_path: Path) -> None:
    template = _template(tmp_path / "template")
    result = _new(tmp_path / "out", cookiecutter_settings("demo", template),
                  "license=GPL", "colour=blue")  # fmt: skip
    assert result.exit_code == 2
    assert "license" in result.output and "not one of MIT, Apache-2.0" in result.output
    assert "colour: not a question of demo" in result.output
    assert not (tmp_path / "out").exists()


def test_an_untrusted_template_with_hooks_is_refused(tmp_path: Path) -> None:
    hook = "import os\nopen('ran', 'w').write(os.environ.get('TRELLIS_API_TOKENS', 'none'))\n"
    template = _template(tmp_path / "template", hook=hook)
    result = _new(tmp_path / "out", cookiecutter_settings("demo", template))
    assert result.exit_code == 2
    assert "runs code of its own (hooks/post_gen_project.py)" in result.output
    assert "trusted: true" in result.output
    assert not (tmp_path / "out").exists()

    env = cookiecutter_settings("demo", template, trusted=True)
    trusted = runner.invoke(
        app,
        ["new", "demo", str(tmp_path / "trusted")],
        env={"TRELLIS_BLUEPRINTS__COOKIECUTTER": env, "TRELLIS_API_TOKENS": "t" * 40},
    )
    assert trusted.exit_code == 0, trusted.output
    # The hook ran, once trusted, and saw none of Trellis's settings.
    assert (tmp_path / "trusted" / "ran").read_text() == "none"


def test_a_jinja_extension_of_the_templates_own_needs_trust(tmp_path: Path) -> None:
    template = _template(tmp_path / "template", extension=True)
    refused = _new(tmp_path / "out", cookiecutter_settings("demo", template))
    assert refused.exit_code == 2
    assert "_extensions: local_extensions.ShoutExtension" in refused.output
    trusted = _new(tmp_path / "trusted", cookiecutter_settings("demo", template, trusted=True))
    assert trusted.exit_code == 0, trusted.output
    assert (tmp_path / "trusted" / "shout.txt").read_text() == "DEMO SERVICE!\n"


def test_a_hanging_hook_is_stopped_at_the_timeout(tmp_path: Path) -> None:
    template = _template(tmp_path / "template", hook=HANGING_HOOK)
    env = cookiecutter_settings("demo", template, trusted=True, timeout_seconds=2)
    result = _new(tmp_path / "out", env)
    assert result.exit_code == 1
    assert "took longer than 2 s" in result.output and "stopped" in result.output
    assert not _running("3607"), "the hook's child outlived the render"


def _running(argument: str) -> list[str]:
    """Processes whose command line holds ``argument``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            parts = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argument.encode() in parts and proc.name != str(os.getpid()):
            found.append(proc.name)
    return found


def test_a_remote_templates_new_tags_are_seen_by_a_running_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trellis.sources import cookiecutter as source_module
    from trellis.sources.cookiecutter import CookiecutterSource, CookiecutterSpec

    template = _template(tmp_path / "template")
    source = CookiecutterSource(CookiecutterSpec(name="demo", source=f"file://{template}"))
    assert source.versions() == ["v0.1.0"]
    subprocess.run(["git", "-C", str(template), "tag", "v0.2.0"], check=True)
    assert source.versions() == ["v0.1.0"]  # the clone serves a while ...
    monkeypatch.setattr(source_module, "_REFETCH_SECONDS", 0.0)
    assert source.versions() == ["v0.1.0", "v0.2.0"]  # ... then fetches the new tags


def test_the_line_merge_keeps_both_sides_and_never_mangles_a_binary_file() -> None:
    from trellis.sources.cruft_checkouts import CruftCheckouts

    labels = ("before updating", "v1", "after updating")
    merge = CruftCheckouts().merge
    merged, conflicted = merge(b"ours\nb\nc\n", b"a\nb\nc\n", b"a\nb\ntheirs\n", labels)
    assert (merged, conflicted) == (b"ours\nb\ntheirs\n", False)
    merged, conflicted = merge(b"ours\n", b"a\n", b"theirs\n", labels)
    assert conflicted and b"<<<<<<< before updating\nours\n" in merged
    assert b">>>>>>> after updating" in merged
    assert merge(b"\x00ours", b"\x00base", b"\x00theirs", labels) == (b"\x00ours", True)
