"""Terraform directories of generated repositories, parsed offline with python-hcl2.

No terraform binary can be installed here, so generated Terraform is read as data: its
resources, data sources, variables, locals and providers, indexed by address.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import hcl2

# python-hcl2 wraps every attribute value in a one-element list in some versions (and in the
# fork checkov installs); newer versions keep the quotes of strings and keys. Accept both.
_WRAPPED = isinstance(hcl2.loads('a = "b"\n')["a"], list)


def _unquote(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            _unquote(key): _plain(value)
            for key, value in node.items()
            if not (key.startswith("__") and key.endswith("__"))
        }
    if isinstance(node, list):
        return [_plain(item) for item in node]
    return _unquote(node)


def attr(body: dict[str, Any], key: str) -> Any:
    """The value of attribute ``key`` of a block body (None when absent)."""
    value = body.get(key)
    return value[0] if _WRAPPED and isinstance(value, list) and len(value) == 1 else value


def blocks(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The nested blocks called ``key`` (empty when there are none)."""
    found = body.get(key, [])
    return [found] if isinstance(found, dict) else list(found)


class Terraform:
    """Every .tf file of one directory, parsed and indexed."""

    def __init__(self, directory: Path) -> None:
        self.files = sorted(directory.glob("*.tf"))
        self.parsed: dict[str, dict[str, Any]] = {}
        for path in self.files:
            with path.open() as handle:
                self.parsed[path.name] = _plain(hcl2.load(handle))
        self.resources: dict[str, dict[str, Any]] = {}
        self.data: dict[str, dict[str, Any]] = {}
        self.variables: dict[str, dict[str, Any]] = {}
        self.locals: dict[str, Any] = {}
        self.terraform: list[dict[str, Any]] = []
        self.providers: dict[str, dict[str, Any]] = {}
        for content in self.parsed.values():
            for kind, index in (("resource", self.resources), ("data", self.data)):
                for block in content.get(kind, []):
                    for type_, named in block.items():
                        for name, body in named.items():
                            index[f"{type_}.{name}"] = body
            for block in content.get("variable", []):
                self.variables.update(block)
            for block in content.get("locals", []):
                self.locals.update({key: attr(block, key) for key in block})
            for block in content.get("provider", []):
                self.providers.update(block)
            self.terraform += content.get("terraform", [])

    def of_type(self, type_: str) -> dict[str, dict[str, Any]]:
        return {addr: body for addr, body in self.resources.items() if addr.startswith(f"{type_}.")}

    def default(self, variable: str) -> Any:
        return attr(self.variables[variable], "default")

    def text(self, value: Any) -> str:
        """``value`` as text, with ``local.`` references it makes expanded and the string
        variables it uses replaced by their defaults."""
        text = json.dumps(value)
        for name in re.findall(r"local\.([a-z0-9_]+)", text):
            text += " " + json.dumps(self.locals.get(name, ""))
        for name in set(re.findall(r"\$\{var\.([a-z0-9_]+)\}", text)):
            default = attr(self.variables[name], "default") if name in self.variables else None
            if isinstance(default, str):
                text = text.replace(f"${{var.{name}}}", default)
        return text
