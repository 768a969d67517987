"""GitLab CI configuration as GitLab reads it: ``extends`` resolved, ``rules`` evaluated."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
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


def changes_glob(pattern: str) -> re.Pattern[str]:
    """A ``rules: changes`` glob as a regex: ``**`` crosses folders, ``*`` does not."""
    text = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*")
    return re.compile("^" + text.replace(r"\*", "[^/]*") + "$")


def changes_match(changes: Any, changed: Sequence[str]) -> bool:
    """Whether a rule's ``changes`` (a list, or ``paths:``) matches a changed file."""
    patterns = changes.get("paths", []) if isinstance(changes, dict) else changes
    return any(changes_glob(p).match(f) for p in patterns for f in changed)


def rules_allow(
    rules: list[dict[str, Any]] | None,
    variables: Mapping[str, str],
    changed: Sequence[str] | None = None,
) -> bool:
    """Whether ``rules`` (of a job or of ``workflow``) let it run: the first match decides.

    ``changed`` are the files the pipeline's commits change; None means unknown, and a
    ``changes`` rule then matches (as in GitLab for pipelines that have no diff).
    """
    if rules is None:
        return True
    for rule in rules:
        if "if" in rule and not expression_holds(rule["if"], variables):
            continue
        if (
            "changes" in rule
            and changed is not None
            and not changes_match(rule["changes"], changed)
        ):
            continue
        return rule.get("when", "on_success") != "never"
    return False


def pipeline_jobs(
    config: dict[str, Any], variables: Mapping[str, str], changed: Sequence[str] | None = None
) -> set[str]:
    """The jobs of the pipeline GitLab would create for these predefined variables."""
    if not rules_allow((config.get("workflow") or {}).get("rules"), variables):
        return set()
    return {
        name
        for name, job in gitlab_jobs(config).items()
        if rules_allow(job.get("rules"), variables, changed)
    }
