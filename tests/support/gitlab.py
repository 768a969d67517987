"""GitLab CI configuration as GitLab reads it: ``extends`` resolved, ``rules`` evaluated."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any


def merge(base: Any, override: Any) -> Any:
    """GitLab's ``extends`` merge: mappings merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = merge(base.get(key), value) if key in base else value
        return merged
    return override


def gitlab_job(config: dict[str, Any], name: str) -> dict[str, Any]:
    job = config[name]
    parents = job.get("extends", [])
    resolved: dict[str, Any] = {}
    for parent in [parents] if isinstance(parents, str) else parents:
        resolved = merge(resolved, gitlab_job(config, parent))
    return merge(resolved, {k: v for k, v in job.items() if k != "extends"})


GITLAB_KEYWORDS = {
    "default",
    "include",
    "stages",
    "variables",
    "workflow",
    "image",
    "services",
    "cache",
    "before_script",
    "after_script",
}


def gitlab_jobs(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: gitlab_job(config, name)
        for name in config
        if name not in GITLAB_KEYWORDS and not name.startswith(".")
    }


#: The only syntax ``rules_allow`` evaluates; anything else fails the test instead of guessing.
_EXPRESSION = re.compile(r'^(\s|\$\w+|"[^"]*"|==|!=|&&|\|\||\(|\)|null)+$')


def expression_holds(expression: str, variables: Mapping[str, str]) -> bool:
    """A ``rules: if`` expression of comparisons, ``&&``, ``||`` and parentheses.

    An undefined or empty variable is false and compares equal to ``null``, as in GitLab.
    """
    assert _EXPRESSION.match(expression), f"unsupported expression: {expression}"
    python = re.sub(r"\$(\w+)", lambda m: f"v({m[1]!r})", expression)
    python = python.replace("&&", " and ").replace("||", " or ").replace("null", "None")
    scope = {"v": lambda name: variables.get(name) or None}
    return bool(eval(python, {"__builtins__": {}}, scope))


def rules_allow(rules: list[dict[str, Any]] | None, variables: Mapping[str, str]) -> bool:
    """Whether ``rules`` (of a job or of ``workflow``) let it run: the first match decides."""
    if rules is None:
        return True
    for rule in rules:
        if "if" not in rule or expression_holds(rule["if"], variables):
            return rule.get("when", "on_success") != "never"
    return False


def pipeline_jobs(config: dict[str, Any], variables: Mapping[str, str]) -> set[str]:
    """The jobs of the pipeline GitLab would create for these predefined variables."""
    if not rules_allow((config.get("workflow") or {}).get("rules"), variables):
        return set()
    return {
        name
        for name, job in gitlab_jobs(config).items()
        if rules_allow(job.get("rules"), variables)
    }
