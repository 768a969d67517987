"""The definitions a scorer reads each run: parsed again only when their files changed."""

import logging
import os
import shutil
from pathlib import Path

import pytest

from trellis.scorecards import DefinitionError
from trellis.scorecards.definitions import MAX_DEFINITION_BYTES
from trellis.services.scoring.definitions import Definitions

SHIPPED = Path(__file__).resolve().parents[3] / "scorecards"


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return Path(shutil.copytree(SHIPPED, tmp_path / "scorecards"))


def test_files_that_did_not_change_are_not_parsed_again(directory: Path):
    definitions = Definitions(directory)
    first = definitions.reload()
    assert definitions.reload() is first  # the same objects: nothing was parsed
    path = directory / "ml-model.yaml"
    text = path.read_text()
    # An edit of the same size, as fast as the file system's clock: told apart by its bytes.
    path.write_text(text.replace("operator: equal", "operator: EQUAL", 1))
    with pytest.raises(DefinitionError):
        Definitions(directory).reload()
    kept = definitions.reload()
    assert kept is first and "ml-model.yaml" in (definitions.error or "")
    path.write_text(text)
    again = definitions.reload()
    assert again is not first and again == first and definitions.error is None


def test_problems_in_unchanged_files_are_logged_once(directory: Path, caplog):
    definitions = Definitions(directory)
    definitions.reload()
    path = directory / "governance.yaml"
    path.write_text(path.read_text() + "\nnot: [valid\n")
    with caplog.at_level(logging.ERROR, logger="trellis.services.scoring"):
        for _ in range(3):
            definitions.reload()
    kept = [r for r in caplog.records if "kept as they were" in r.getMessage()]
    assert len(kept) == 1 and "governance.yaml" in kept[0].getMessage()


def test_a_set_never_valid_fails_every_read_with_every_problem(directory: Path):
    (directory / "governance.yaml").write_text("name: [\n")
    definitions = Definitions(directory)
    for _ in range(2):
        with pytest.raises(DefinitionError) as raised:
            definitions.reload()
        assert "governance.yaml" in str(raised.value)
    assert definitions.ever_valid is False


def test_a_file_that_cannot_be_read_is_a_problem_until_it_can(directory: Path):
    definitions = Definitions(directory)
    first = definitions.reload()
    unreadable = directory / "unreadable.yaml"
    unreadable.mkdir()  # a directory named like a file: it cannot be read
    with pytest.raises(DefinitionError) as raised:
        Definitions(directory).reload()
    assert "unreadable.yaml: $: cannot be read" in str(raised.value)
    assert definitions.reload() is first
    assert "unreadable.yaml" in (definitions.error or "")
    unreadable.rmdir()
    assert definitions.reload() == first and definitions.error is None


def test_a_pipe_or_a_huge_file_is_a_problem_not_a_reader_stuck_or_swamped(directory: Path):
    definitions = Definitions(directory)
    first = definitions.reload()
    os.mkfifo(directory / "pipe.yaml")  # opening it to read would wait for a writer
    (directory / "huge.yaml").write_bytes(b"#" * (MAX_DEFINITION_BYTES + 1))
    assert definitions.reload() is first
    assert "pipe.yaml: $: cannot be read: not a regular file" in (definitions.error or "")
    assert f"huge.yaml: $: larger than {MAX_DEFINITION_BYTES} bytes" in (definitions.error or "")
