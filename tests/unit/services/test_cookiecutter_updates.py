"""Updating a ``.cruft.json`` repository, against fakes of the template and the checkout.

New questions of the target version take ``--data`` (checked), are asked when someone can
answer, or take their defaults; answers the
target no longer asks are dropped; a downgrade, an unknown version and a dirty tree are
refused before anything is rendered.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from trellis.errors import AnswerError, ConfigError
from trellis.model import Blueprint, CruftRecord, Page, Question
from trellis.ports import RenderedFile
from trellis.services.cookiecutter_updates import check_update, update

QUESTIONS = {
    "v1": (Question("name", "str", "", "demo"), Question("legacy", "str", "", "x")),
    "v2": (
        Question("name", "str", "", "demo"),
        Question("region", "str", "", "eu", choices={"eu": "eu", "us": "us"}),
    ),
}


class FakeTemplate:
    """Renders ``README`` from the answers; records each render's answers."""

    name = "demo"
    template_url = "https://example.com/demo.git"

    def __init__(self) -> None:
        self.renders: list[tuple[str, dict[str, Any]]] = []

    def versions(self) -> list[str]:
        return ["v1", "v2"]

    def version_of(self, commit: str) -> str | None:
        return {"c1": "v1", "c2": "v2"}.get(commit)

    def blueprint(self, ref: str | None = None) -> Blueprint:
        questions = QUESTIONS[ref or "v2"]
        page = Page("demo", tuple(q.name for q in questions))
        return Blueprint("demo", "Demo", "", "", "service", (), questions, (page,))

    def render_tree(
        self, answers: Mapping[str, Any], *, ref: str
    ) -> tuple[dict[str, RenderedFile], CruftRecord]:
        self.renders.append((ref, dict(answers)))
        text = f"{ref} {sorted(answers.items())}\n".encode()
        context = {**answers, "_commit": f"c{ref[-1]}"}
        record = CruftRecord(self.template_url, f"c{ref[-1]}", context, checkout=ref)
        return {"README": RenderedFile("README", text, False)}, record


class FakeCheckouts:
    """A repository in memory."""

    def __init__(self, record: CruftRecord, *, dirty: bool = False) -> None:
        self.record = record
        self.dirty = dirty
        self.tree: dict[str, RenderedFile] = {}

    def is_checkout(self, repo: Path) -> bool:
        return True

    def is_dirty(self, repo: Path) -> bool:
        return self.dirty

    def read_record(self, location: str) -> CruftRecord:
        return self.record

    def write_record(self, repo: Path, record: CruftRecord) -> None:
        self.record = record

    def files(self, repo: Path) -> dict[str, RenderedFile]:
        return dict(self.tree)

    def write(self, repo: Path, file: RenderedFile) -> None:
        self.tree[file.path] = file

    def delete(self, repo: Path, path: str) -> None:
        del self.tree[path]

    def merge(self, ours: bytes, base: bytes, theirs: bytes, labels: tuple[str, str, str]):
        return ours + theirs, True


def _repo(tmp_path: Path, **kwargs: Any) -> tuple[FakeTemplate, FakeCheckouts]:
    template = FakeTemplate()
    context = {"name": "shop", "legacy": "y", "_template": template.template_url}
    checkouts = FakeCheckouts(CruftRecord(template.template_url, "c1", context), **kwargs)
    checkouts.tree = template.render_tree({"name": "shop", "legacy": "y"}, ref="v1")[0]
    template.renders.clear()
    return template, checkouts


def test_a_new_question_takes_its_answer_from_data(tmp_path: Path) -> None:
    template, checkouts = _repo(tmp_path)
    result = update(tmp_path, data={"region": "us"}, checkouts=checkouts,
                    templates=lambda _: template)  # fmt: skip
    assert (result.from_version, result.to_version, result.conflicts) == ("v1", "v2", ())
    assert template.renders == [
        ("v1", {"name": "shop", "legacy": "y"}),  # the recorded version, as recorded
        ("v2", {"name": "shop", "region": "us"}),  # legacy is no longer asked
    ]
    assert checkouts.record.commit == "c2" and checkouts.record.context["region"] == "us"
    assert checkouts.tree["README"].content.startswith(b"v2 ")


def test_a_new_question_is_asked_when_someone_can_answer(tmp_path: Path) -> None:
    template, checkouts = _repo(tmp_path)
    asked: list[str] = []

    def ask(question: Question) -> object:
        asked.append(question.name)
        return "us"

    update(tmp_path, ask=ask, checkouts=checkouts, templates=lambda _: template)
    assert asked == ["region"]  # name is recorded; legacy is gone; nothing else is new
    assert template.renders[-1] == ("v2", {"name": "shop", "region": "us"})


def test_without_data_a_new_question_takes_its_default(tmp_path: Path) -> None:
    template, checkouts = _repo(tmp_path)
    update(tmp_path, checkouts=checkouts, templates=lambda _: template)
    assert template.renders[-1] == ("v2", {"name": "shop"})  # the template's default applies


def test_bad_data_an_unknown_version_and_a_dirty_tree_are_refused_first(tmp_path: Path) -> None:
    template, checkouts = _repo(tmp_path)
    with pytest.raises(AnswerError, match="region"):
        update(tmp_path, data={"region": "mars"}, checkouts=checkouts, templates=lambda _: template)
    with pytest.raises(ConfigError, match="v9 is not a version"):
        update(tmp_path, "v9", checkouts=checkouts, templates=lambda _: template)
    template, dirty = _repo(tmp_path, dirty=True)
    with pytest.raises(ConfigError, match="uncommitted"):
        update(tmp_path, checkouts=dirty, templates=lambda _: template)
    assert template.renders == []


def test_a_template_in_a_folder_of_its_repository_is_refused(tmp_path: Path) -> None:
    template, checkouts = _repo(tmp_path)
    checkouts.record = CruftRecord(template.template_url, "c1", {}, directory="sub")
    with pytest.raises(ConfigError, match="folder 'sub'"):
        update(tmp_path, checkouts=checkouts, templates=lambda _: template)
    assert template.renders == []


def test_check_update_counts_the_versions_behind(tmp_path: Path) -> None:
    template, checkouts = _repo(tmp_path)
    status = check_update(str(tmp_path), checkouts=checkouts, templates=lambda _: template)
    assert (status.current, status.newest, status.behind) == ("v1", "v2", 1)
