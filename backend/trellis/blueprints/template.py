"""A blueprint as a Backstage Software Template (``scaffolder.backstage.io/v1beta3``).

The template is derived, never written by hand: its form pages come from the blueprint's
questions (``copier.yml``) and presentation (``blueprint.yaml``); its first step asks Trellis
to render the blueprint with Copier (``trellis:blueprint:render``), so the new repository
carries a ``.copier-answers.yml`` and can follow later blueprint versions with
``copier update``. Publishing and registration use Backstage's standard actions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trellis import annotations as ann
from trellis.blueprints.form import question_schema
from trellis.errors import ConfigError
from trellis.model import Blueprint, Page, Publish, Question

__all__ = ["RENDER_ACTION", "location_entity", "template_entity"]

RENDER_ACTION = "trellis:blueprint:render"
"""The action of Trellis's scaffolder module that renders a blueprint into the workspace."""


def template_entity(blueprint: Blueprint, *, namespace: str = "default") -> dict[str, Any]:
    """The Template entity for one blueprint; raises ``ConfigError`` on an unusable layout."""
    if blueprint.publish is None:
        raise ConfigError(f"{blueprint.name}/blueprint.yaml has no `publish` section")
    _check_pages(blueprint)
    return {
        "apiVersion": ann.TEMPLATE_API_VERSION,
        "kind": "Template",
        "metadata": {
            "name": blueprint.name,
            "namespace": namespace,
            "title": blueprint.title,
            "description": blueprint.description,
            "tags": list(blueprint.tags),
            "annotations": {ann.BLUEPRINT: blueprint.name},
        },
        "spec": {
            "owner": blueprint.owner,
            "type": blueprint.type,
            "parameters": [_page(blueprint, page) for page in blueprint.pages],
            "steps": _steps(blueprint, blueprint.publish),
            "output": _output(blueprint.publish),
        },
    }


def location_entity(names: Sequence[str]) -> dict[str, Any]:
    """A Location listing every template file, so one target brings them all in."""
    return {
        "apiVersion": ann.API_VERSION,
        "kind": "Location",
        "metadata": {
            "name": "trellis-templates",
            "description": "Software Templates generated from the Trellis blueprints",
        },
        "spec": {"targets": [f"./{name}.yaml" for name in names]},
    }


def _check_pages(blueprint: Blueprint) -> None:
    """Every question on exactly one page; a condition's subject on the same page."""
    placed = [name for page in blueprint.pages for name in page.questions]
    names = [q.name for q in blueprint.questions]
    missing = [name for name in names if name not in placed]
    unknown = sorted(set(placed) - set(names))
    twice = sorted({name for name in placed if placed.count(name) > 1})
    problems = [
        f"{', '.join(found)} {what}"
        for what, found in (("on no page", missing), ("not questions", unknown), ("twice", twice))
        if found
    ]
    questions = {q.name: q for q in blueprint.questions}
    for page in blueprint.pages:
        for name in page.questions:
            condition = questions[name].condition if name in questions else None
            if condition and condition[0] not in page.questions:
                problems.append(
                    f"{name} depends on {condition[0]}, which must be on the same page "
                    f"({page.title})"
                )
    if problems:
        raise ConfigError(f"{blueprint.name}/blueprint.yaml pages: {'; '.join(problems)}")


def _page(blueprint: Blueprint, page: Page) -> dict[str, Any]:
    """One form page; conditional questions appear only when their condition holds."""
    questions = {q.name: q for q in blueprint.questions}
    properties: dict[str, Any] = {}
    dependents: dict[str, list[Question]] = {}
    for name in page.questions:
        question = questions[name]
        if question.condition:
            dependents.setdefault(question.condition[0], []).append(question)
        else:
            properties[name] = _field(blueprint, question)
    schema: dict[str, Any] = {"title": page.title}
    required = [name for name in page.questions if name in blueprint.required]
    if required:
        schema["required"] = required
    schema["properties"] = properties
    if dependents:
        schema["dependencies"] = {
            subject: _conditional(blueprint, subject, shown)
            for subject, shown in dependents.items()
        }
    return schema


def _field(blueprint: Blueprint, question: Question) -> dict[str, Any]:
    schema = question_schema(question, dict(blueprint.form.get(question.name, {})))
    if question.name in blueprint.required:
        schema.pop("default", None)  # no guess for what the user must say
    elif question.computed_default:
        if question.type == "bool":
            schema["default"] = False  # the box shows what will be rendered
        else:
            help_text = schema.get("description", "")
            schema["description"] = f"{help_text}; leave empty to derive it from the other answers"
    return schema


def _conditional(blueprint: Blueprint, subject: str, shown: list[Question]) -> dict[str, Any]:
    """JSON Schema ``dependencies`` that reveal ``shown`` when ``subject`` has its value."""
    values = {q.condition[1] for q in shown if q.condition}
    if len(values) != 1:
        raise ConfigError(f"{blueprint.name}: questions on {subject} need one shared value")
    value = values.pop()
    revealed = {q.name: _field(blueprint, q) for q in shown}
    return {
        "oneOf": [
            {"required": [subject], "properties": {subject: {"const": value}, **revealed}},
            {"properties": {subject: {"not": {"const": value}}}},
        ]
    }


def _steps(blueprint: Blueprint, publish: Publish) -> list[dict[str, Any]]:
    render_input: dict[str, Any] = {"blueprint": blueprint.name, "values": "${{ parameters }}"}
    secrets = [q.name for q in blueprint.questions if q.secret]
    if secrets:
        render_input["secrets"] = {name: f"${{{{ secrets.{name} }}}}" for name in secrets}
    steps: list[dict[str, Any]] = [
        {
            "id": "render",
            "name": f"Render the {blueprint.title} blueprint",
            "action": RENDER_ACTION,
            "input": render_input,
        }
    ]
    repository = f"parameters.{publish.repository}"
    owner = f"${{{{ {repository}.split('/').slice(0, -1).join('/') }}}}"
    repo = f"${{{{ {repository}.split('/') | last }}}}"
    description = "${{ parameters.description }}" if _asks(blueprint, "description") else None
    for kind, host in publish.hosts.items():
        step: dict[str, Any] = {"id": f"publish-{kind}", "name": f"Publish to {host}"}
        if publish.selector:
            step["if"] = f"${{{{ parameters.{publish.selector} == '{kind}' }}}}"
        step["action"] = f"publish:{kind}"
        step["input"] = {
            "repoUrl": f"{host}?owner={owner}&repo={repo}",
            "defaultBranch": "main",
            "repoVisibility": "private",
            **({"description": description} if description else {}),
        }
        steps.append(step)
    steps.append(
        {
            "id": "register",
            "name": "Register in the catalog",
            "action": "catalog:register",
            "input": {
                "repoContentsUrl": _from_publish(publish, "repoContentsUrl"),
                "catalogInfoPath": "/catalog-info.yaml",
            },
        }
    )
    return steps


def _output(publish: Publish) -> dict[str, Any]:
    return {
        "links": [
            {"title": "Repository", "url": _from_publish(publish, "remoteUrl")},
            {
                "title": "Open in catalog",
                "icon": "catalog",
                "entityRef": "${{ steps['register'].output.entityRef }}",
            },
        ]
    }


def _from_publish(publish: Publish, output: str) -> str:
    """An output of whichever publish step ran, as one template expression."""
    kinds = list(publish.hosts)
    expression = f"steps['publish-{kinds[-1]}'].output.{output}"
    for kind in reversed(kinds[:-1]):
        expression = (
            f"steps['publish-{kind}'].output.{output} if parameters.{publish.selector} == "
            f"'{kind}' else {expression}"
        )
    return f"${{{{ {expression} }}}}"


def _asks(blueprint: Blueprint, name: str) -> bool:
    return any(q.name == name for q in blueprint.questions)
