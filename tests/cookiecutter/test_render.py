"""``trellis new`` on cookiecutter templates gives what the template's own command gives.

The proof is byte for byte, executable bits included: v1 of cookiecutter-data-science
against the ``cookiecutter`` command, v2.2.0 against ``ccds`` 2.2.0 (its own entry point,
with hooks that remove files per option) for three option sets.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from support.cookiecutter import (
    CcdsTools,
    cookiecutter_command,
    cookiecutter_settings,
    run_ccds,
    tree,
)
from trellis.cli.app import app

pytestmark = pytest.mark.tools

runner = CliRunner()

OPTION_SETS: dict[str, tuple[dict[str, object], dict[str, object]]] = {
    # name: (answers for trellis new, the same answers as a ccds user config states them)
    "pytest-mkdocs-mit": (
        {
            "project_name": "Churn Model",
            "testing_framework": "pytest",
            "open_source_license": "MIT",
        },
    )
    * 2,
    "s3-conda-bare": (
        {
            "project_name": "Fraud Signals",
            "dataset_storage": "s3",
            "environment_manager": "conda",
            "dependency_file": "environment.yml",
            "testing_framework": "none",
            "docs": "none",
            "include_code_scaffold": "No",
            "linting_and_formatting": "flake8+black+isort",
        },
        {
            "project_name": "Fraud Signals",
            "dataset_storage": {"s3": {"bucket": "bucket-name", "aws_profile": "default"}},
            "environment_manager": "conda",
            "dependency_file": "environment.yml",
            "testing_framework": "none",
            "docs": "none",
            "include_code_scaffold": "No",
            "linting_and_formatting": "flake8+black+isort",
        },
    ),
    "gcs-uv-unittest": (
        {
            "project_name": "demand-forecast",
            "author_name": "Forecasting team",
            "dataset_storage": "gcs",
            "environment_manager": "uv",
            "dependency_file": "pyproject.toml",
            "pydata_packages": "basic",
            "testing_framework": "unittest",
            "open_source_license": "BSD-3-Clause",
        },
        {
            "project_name": "demand-forecast",
            "author_name": "Forecasting team",
            "dataset_storage": {"gcs": {"bucket": "bucket-name"}},
            "environment_manager": "uv",
            "dependency_file": "pyproject.toml",
            "pydata_packages": "basic",
            "testing_framework": "unittest",
            "open_source_license": "BSD-3-Clause",
        },
    ),
}


def _new(blueprint: str, destination: Path, answers: dict[str, object], env: str, *extra: str):
    args = ["new", blueprint, str(destination), *extra]
    for key, value in answers.items():
        args += ["--data", f"{key}={value}"]
    return runner.invoke(app, args, env={"TRELLIS_BLUEPRINTS__COOKIECUTTER": env})


def test_v1_is_what_the_cookiecutter_command_renders(
    tmp_path: Path, ccds_template: Path, template_at: Callable[[str], Path]
) -> None:
    answers = {"project_name": "Churn Model", "open_source_license": "BSD-3-Clause",
               "python_interpreter": "python"}  # fmt: skip
    # Registered at v2.2.0 with ccds as its entry point; v1 has none, so cookiecutter renders
    # it, and the answers are checked against v1's own questions.
    env = cookiecutter_settings(
        "data-science", ccds_template, ref="v2.2.0", trusted=True, entry_point="/nonexistent/ccds"
    )
    result = _new("data-science", tmp_path / "trellis", answers, env, "--vcs-ref", "v1")
    assert result.exit_code == 0, result.output

    (tmp_path / "plain").mkdir()
    subprocess.run(
        [cookiecutter_command(), str(template_at("v1")), "--no-input", "--output-dir",
         str(tmp_path / "plain"), *(f"{k}={v}" for k, v in answers.items())],
        check=True, capture_output=True, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    expected = tree(tmp_path / "plain" / "churn_model")
    rendered = tree(tmp_path / "trellis")
    assert rendered == expected
    assert b"Redistribution and use" in rendered["LICENSE"][0]  # the BSD licence chosen

    record = json.loads((tmp_path / "trellis" / ".cruft.json").read_text())
    assert set(record) == {"template", "commit", "checkout", "context", "directory"}
    assert record["commit"].startswith("c077603e") and record["checkout"] == "v1"
    context = record["context"]["cookiecutter"]
    assert context["repo_name"] == "churn_model"  # a Jinja default, worked out
    assert context["_commit"] == record["commit"] and context["_template"] == record["template"]
    assert "_output_dir" not in context and "_repo_dir" not in context


@pytest.mark.parametrize("option_set", sorted(OPTION_SETS))
def test_v2_is_what_its_own_ccds_renders(
    option_set: str,
    tmp_path: Path,
    ccds_template: Path,
    ccds_tools: CcdsTools,
    template_at: Callable[[str], Path],
) -> None:
    ours, theirs = OPTION_SETS[option_set]
    env = cookiecutter_settings(
        "data-science", ccds_template, ref="v2.2.0", trusted=True, entry_point=ccds_tools.pattern
    )
    ccds = ccds_tools.command("2.2.0")
    result = _new("data-science", tmp_path / "trellis", ours, env)
    assert result.exit_code == 0, result.output
    expected = tree(run_ccds(ccds, template_at("v2.2.0"), "v2.2.0", theirs, tmp_path / "ccds"))
    rendered = tree(tmp_path / "trellis")
    assert sorted(rendered) == sorted(expected)
    assert rendered == expected

    # The hooks removed files per option: the proof compares trees that really differ.
    if option_set == "s3-conda-bare":
        assert "LICENSE" not in rendered and "setup.cfg" in rendered
        assert not any(path.startswith("tests/") or "mkdocs" in path for path in rendered)
        assert "environment.yml" in rendered
    else:
        assert "setup.cfg" not in rendered and "LICENSE" in rendered
    record = json.loads((tmp_path / "trellis" / ".cruft.json").read_text())
    storage = record["context"]["cookiecutter"]["dataset_storage"]
    assert storage == theirs.get("dataset_storage", {"none": "none"})
