"""A malformed answers file is a clear one-line error naming it, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from support.gitrepos import commit_all
from trellis.cli.app import app

runner = CliRunner()

GOOD = "_commit: 1.0.0\n_src_path: /srv/trellis\nblueprint: ml-model\n"
BAD_ANSWERS = {
    "not YAML": (b"_commit: 1.0.0\nblueprint: [ml-model\n", "not valid YAML"),
    "not UTF-8": (b"_commit: 1.0.0\nblueprint: \xff\xfe\n", "not UTF-8"),
    "not a mapping": (b"- ml-model\n- 1.0.0\n", "must hold a mapping"),
    "a number as the version": (
        b"_commit: 1.0\n_src_path: /srv/trellis\nblueprint: ml-model\n",
        "_commit: Input should be a valid string",
    ),
    "a list as the blueprint": (
        b"_commit: 1.0.0\n_src_path: /srv/trellis\nblueprint: [ml-model, secret-sauce]\n",
        "blueprint: Input should be a valid string",
    ),
    "a mapping as the source": (
        b"_commit: 1.0.0\n_src_path: {url: x}\nblueprint: ml-model\n",
        "_src_path: Input should be a valid string",
    ),
}


def _repository(tmp_path: Path, content: bytes) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".copier-answers.yml").write_bytes(content)
    (repo / "README.md").write_text("a generated repository\n")
    commit_all(repo, "generated")
    return repo


@pytest.mark.parametrize("command", ["check-update", "update"])
@pytest.mark.parametrize("case", sorted(BAD_ANSWERS))
def test_a_malformed_answers_file_is_one_clear_line_and_exit_1(tmp_path, case, command):
    content, expected = BAD_ANSWERS[case]
    repo = _repository(tmp_path, content)

    result = runner.invoke(app, [command, str(repo)])

    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert ".copier-answers.yml" in result.stderr and expected in result.stderr
    assert "secret-sauce" not in result.stderr  # names the key, never the value
    assert (repo / ".copier-answers.yml").read_bytes() == content  # left as it was


@pytest.mark.parametrize("case", ["not YAML", "not UTF-8", "not a mapping"])
def test_a_malformed_data_file_for_new_is_a_configuration_error(tmp_path, case):
    # A path longer than a terminal line: the error names it whole, not wrapped.
    data_file = tmp_path / ("a-folder-with-a-long-name-" * 4) / "answers.yml"
    data_file.parent.mkdir()
    data_file.write_bytes(BAD_ANSWERS[case][0])

    result = runner.invoke(
        app, ["new", "ml-model", str(tmp_path / "out"), "--data-file", str(data_file)]
    )

    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert str(data_file) in result.stderr


def test_a_good_answers_file_still_reads(tmp_path):
    from trellis.sources.repositories import read_answers

    repo = _repository(tmp_path, GOOD.encode())
    assert read_answers(repo)["_commit"] == "1.0.0"
