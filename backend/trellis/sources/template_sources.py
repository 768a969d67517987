"""Every blueprint under one name space: the Copier blueprints and registered cookiecutter ones.

The scaffolder, the render API and the Backstage templates see one ``TemplateSource``; each
name goes to the source that has it. A cookiecutter blueprint's versions are its template's
version tags; it has no changelog in Trellis's format, so none is shown.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from trellis.errors import AnswerError, ConfigError
from trellis.model import Blueprint
from trellis.ports import RecordedRelease, Rendering
from trellis.sources.blueprints import BlueprintSource
from trellis.sources.cookiecutter import CookiecutterSource

__all__ = ["TemplateSources"]


class TemplateSources:
    """The Copier source (when there is one) and the registered cookiecutter templates."""

    def __init__(
        self,
        copier: BlueprintSource | None,
        cookiecutter: Mapping[str, CookiecutterSource],
    ) -> None:
        self.copier = copier
        self.cookiecutter = dict(cookiecutter)
        if copier is not None:
            clash = sorted(set(copier.names()) & set(self.cookiecutter))
            if clash:
                raise ConfigError(
                    f"TRELLIS_BLUEPRINTS__COOKIECUTTER: {', '.join(clash)} is already a "
                    "blueprint name; register the template under another name"
                )

    def names(self) -> list[str]:
        """Every blueprint, Copier's and cookiecutter's."""
        copier = self.copier.names() if self.copier is not None else []
        return sorted([*copier, *self.cookiecutter])

    def blueprint(self, name: str, *, ref: str | None = None) -> Blueprint:
        """A blueprint's questions and presentation; a cookiecutter one's at ``ref``."""
        if name in self.cookiecutter:
            return self.cookiecutter[name].blueprint(ref)
        return self._copier(name).blueprint(name, ref=ref)

    def render(
        self,
        blueprint: str,
        destination: Path,
        answers: Mapping[str, Any],
        *,
        defaults: bool,
        vcs_ref: str | None = None,
    ) -> Path:
        """Render a new repository; a cookiecutter one with its ``.cruft.json``."""
        if blueprint in self.cookiecutter:
            source = self.cookiecutter[blueprint]
            return source.render_repository(destination, answers, ref=vcs_ref).path
        return self._copier(blueprint).render(
            blueprint, destination, answers, defaults=defaults, vcs_ref=vcs_ref
        )

    def render_files(
        self, blueprint: str, answers: Mapping[str, Any], *, vcs_ref: str | None = None
    ) -> Rendering:
        """Render in a scratch folder and return the files."""
        if blueprint in self.cookiecutter:
            return self.cookiecutter[blueprint].render_files(answers, ref=vcs_ref)
        return self._copier(blueprint).render_files(blueprint, answers, vcs_ref=vcs_ref)

    def releases(self, blueprint: str) -> Sequence[RecordedRelease]:
        """The releases of ``blueprint``, oldest first."""
        if blueprint in self.cookiecutter:
            return self.cookiecutter[blueprint].releases()
        return self._copier(blueprint).releases(blueprint)

    def versions(self, blueprint: str) -> list[str]:
        """The final releases of ``blueprint``, oldest first."""
        if blueprint in self.cookiecutter:
            return self.cookiecutter[blueprint].versions()
        return self._copier(blueprint).versions(blueprint)

    def versions_by_blueprint(self) -> dict[str, list[str]]:
        """Each blueprint's final releases, oldest first."""
        found = self.copier.versions_by_blueprint() if self.copier is not None else {}
        for name, source in self.cookiecutter.items():
            found[name] = source.versions()
        return found

    def tag_warnings(self, blueprint: str) -> list[str]:
        """Tags that disagree with releases; a cookiecutter template's tags are its releases."""
        if blueprint in self.cookiecutter:
            return []
        return self._copier(blueprint).tag_warnings(blueprint)

    def changelog(self, blueprint: str, *, ref: str | None = None) -> str:
        """A Copier blueprint's changelog; empty for a cookiecutter one."""
        if blueprint in self.cookiecutter:
            return ""
        return self._copier(blueprint).changelog(blueprint, ref=ref)

    @contextmanager
    def updating(self, blueprint: str) -> Iterator[dict[str, str]]:
        """Copier's update environment; cookiecutter repositories update by re-rendering."""
        if blueprint in self.cookiecutter:
            raise ConfigError(
                f"{blueprint} is a cookiecutter template; it is not updated by Copier"
            )
        with self._copier(blueprint).updating(blueprint) as env:
            yield env

    def _copier(self, name: str) -> BlueprintSource:
        if self.copier is None:
            raise AnswerError.one(
                "blueprint", f"unknown blueprint {name!r}; choose from {', '.join(self.names())}"
            )
        return self.copier
