"""Views of blueprints: answers, form schemas, Backstage templates, changelogs, usage."""

from trellis.blueprints.answers import check_answers
from trellis.blueprints.changelog import Release, parse_changelog, releases_between
from trellis.blueprints.form import answers_schema, question_schema
from trellis.blueprints.usage import (
    blueprint_fact,
    minor_versions_behind,
    newer_releases,
    usage_by_version,
    versions_behind,
)

__all__ = [
    "Release",
    "answers_schema",
    "blueprint_fact",
    "check_answers",
    "minor_versions_behind",
    "newer_releases",
    "parse_changelog",
    "question_schema",
    "releases_between",
    "usage_by_version",
    "versions_behind",
]
