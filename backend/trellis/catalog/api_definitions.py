"""The inference APIs model servers speak, as OpenAPI 3 text for Backstage ``API`` entities.

* KServe (MLServer) and Triton speak the Open Inference Protocol (KServe's v2 protocol):
  health, model metadata and readiness, and ``infer`` with typed tensors.
* vLLM speaks the OpenAI-compatible API: models, completions and chat completions.
* A custom server's protocol is not known; its definition names the server and no paths,
  rather than claim endpoints it may not have.

The definitions are data, kept as YAML files in ``openapi/`` beside this module. Each is
rendered for one server: its title and model name replace the ``<title>`` and ``<model>``
values of the parsed document (values, never text, so a hostile name stays a string), and its
URL is added as ``servers``. Compact, but complete enough for Backstage's API docs and for
client generators.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from typing import Any

import yaml

from trellis.model import Runtime
from trellis.yaml_text import dump

__all__ = ["OPENAI", "OPENAPI", "api_definition"]

OPENAPI = "openapi"
OPENAI = "openai"
_TITLE = "<title>"
_MODEL = "<model>"

Spec = dict[str, Any]


def api_definition(
    runtime: str, *, title: str, model: str, url: str | None, kserve: bool
) -> tuple[str, str]:
    """``(spec.type, definition text)`` of the API a server with ``runtime`` provides.

    ``kserve`` says the server is a KServe InferenceService, which speaks the Open Inference
    Protocol whatever its runtime.
    """
    if runtime == Runtime.VLLM:
        name, kind = "openai.yaml", OPENAI
    elif runtime in {Runtime.MLSERVER, Runtime.TRITON} or kserve:
        name, kind = "open-inference.yaml", OPENAPI
    else:
        name, kind = "unknown.yaml", OPENAPI
    spec: Spec = _filled(_template(name), {_TITLE: title, _MODEL: model}, {})
    if url:
        spec["servers"] = [{"url": url}]
    return kind, dump(spec, width=100)


@cache
def _template(name: str) -> Spec:
    """One definition file, parsed once; never changed (each server gets a filled copy)."""
    text = files(__package__).joinpath("openapi", name).read_text(encoding="utf-8")
    spec: Spec = yaml.safe_load(text)
    return spec


def _filled(node: Any, values: Mapping[str, str], copies: dict[int, Any]) -> Any:
    """A copy of ``node`` with each string that is a key of ``values`` replaced.

    What the file shares (its YAML anchors) stays shared in the copy, so the text written
    shares it the same way.
    """
    if isinstance(node, str):
        return values.get(node, node)
    if not isinstance(node, dict | list):
        return node
    copy = copies.get(id(node))
    if copy is not None:
        return copy
    if isinstance(node, dict):
        copy = copies[id(node)] = {}
        copy.update((key, _filled(value, values, copies)) for key, value in node.items())
    else:
        copy = copies[id(node)] = []
        copy.extend(_filled(item, values, copies) for item in node)
    return copy
