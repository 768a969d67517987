"""The inference APIs model servers speak, as OpenAPI 3 text for Backstage ``API`` entities.

* KServe (MLServer) and Triton speak the Open Inference Protocol (KServe's v2 protocol):
  health, model metadata and readiness, and ``infer`` with typed tensors.
* vLLM speaks the OpenAI-compatible API: models, completions and chat completions.
* A custom server's protocol is not known; its definition names the server and no paths,
  rather than claim endpoints it may not have.

Each definition is rendered for one server (its URL as ``servers``, its model name as the
example), compact but complete enough for Backstage's API docs and for client generators.
"""

from __future__ import annotations

from typing import Any

from trellis.model import Runtime
from trellis.yaml_text import dump

__all__ = ["OPENAI", "OPENAPI", "api_definition"]

OPENAPI = "openapi"
OPENAI = "openai"
_OPENAPI_VERSION = "3.0.3"

Spec = dict[str, Any]


def api_definition(
    runtime: str, *, title: str, model: str, url: str | None, kserve: bool
) -> tuple[str, str]:
    """``(spec.type, definition text)`` of the API a server with ``runtime`` provides.

    ``kserve`` says the server is a KServe InferenceService, which speaks the Open Inference
    Protocol whatever its runtime.
    """
    if runtime == Runtime.VLLM:
        spec = _openai(title, model)
        kind = OPENAI
    elif runtime in {Runtime.MLSERVER, Runtime.TRITON} or kserve:
        spec = _open_inference(title, model)
        kind = OPENAPI
    else:
        spec = _unknown(title)
        kind = OPENAPI
    if url:
        spec["servers"] = [{"url": url}]
    return kind, dump(spec, width=100)


def _info(title: str, description: str, version: str) -> Spec:
    return {"title": title, "description": description, "version": version}


def _json(schema: Spec, description: str = "OK") -> Spec:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> Spec:
    return {"$ref": f"#/components/schemas/{name}"}


# --------------------------------------------------------------------------- Open Inference


def _open_inference(title: str, model: str) -> Spec:
    model_param = {
        "name": "model_name",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "example": model,
    }
    error = _json(_ref("Error"), "The request failed")
    return {
        "openapi": _OPENAPI_VERSION,
        "info": _info(
            title,
            "Open Inference Protocol (KServe v2) REST API of this model server.",
            "2.0",
        ),
        "paths": {
            "/v2": {
                "get": {
                    "operationId": "serverMetadata",
                    "summary": "Server name, version and extensions",
                    "responses": {"200": _json(_ref("ServerMetadata"))},
                }
            },
            "/v2/health/live": {
                "get": {
                    "operationId": "serverLive",
                    "summary": "Whether the server is alive",
                    "responses": {"200": _json(_flag("live"))},
                }
            },
            "/v2/health/ready": {
                "get": {
                    "operationId": "serverReady",
                    "summary": "Whether every model is ready for inference",
                    "responses": {"200": _json(_flag("ready"))},
                }
            },
            "/v2/models/{model_name}": {
                "parameters": [model_param],
                "get": {
                    "operationId": "modelMetadata",
                    "summary": "The model's versions, platform, inputs and outputs",
                    "responses": {"200": _json(_ref("ModelMetadata")), "404": error},
                },
            },
            "/v2/models/{model_name}/ready": {
                "parameters": [model_param],
                "get": {
                    "operationId": "modelReady",
                    "summary": "Whether the model is ready for inference",
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["name", "ready"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "ready": {"type": "boolean"},
                                },
                            }
                        ),
                        "404": error,
                    },
                },
            },
            "/v2/models/{model_name}/infer": {
                "parameters": [model_param],
                "post": {
                    "operationId": "modelInfer",
                    "summary": "Run inference on input tensors",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("InferenceRequest")}},
                    },
                    "responses": {
                        "200": _json(_ref("InferenceResponse")),
                        "400": error,
                        "404": error,
                    },
                },
            },
        },
        "components": {"schemas": _oip_schemas()},
    }


def _flag(name: str) -> Spec:
    return {"type": "object", "required": [name], "properties": {name: {"type": "boolean"}}}


def _oip_schemas() -> Spec:
    datatype = {
        "type": "string",
        "enum": [
            "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
            "FP16", "FP32", "FP64", "BYTES",
        ],
    }  # fmt: skip
    shape = {"type": "array", "items": {"type": "integer", "format": "int64"}}
    parameters = {"type": "object", "additionalProperties": True}
    tensor_metadata = {
        "type": "object",
        "required": ["name", "datatype", "shape"],
        "properties": {"name": {"type": "string"}, "datatype": datatype, "shape": shape},
    }
    tensor = {
        "type": "object",
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"type": "string"},
            "shape": shape,
            "datatype": datatype,
            "parameters": parameters,
            "data": {
                "type": "array",
                "description": "Tensor contents in row-major order (nested arrays allowed).",
                "items": {},
            },
        },
    }
    return {
        "ServerMetadata": {
            "type": "object",
            "required": ["name", "version", "extensions"],
            "properties": {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "extensions": {"type": "array", "items": {"type": "string"}},
            },
        },
        "ModelMetadata": {
            "type": "object",
            "required": ["name", "platform", "inputs", "outputs"],
            "properties": {
                "name": {"type": "string"},
                "versions": {"type": "array", "items": {"type": "string"}},
                "platform": {"type": "string"},
                "inputs": {"type": "array", "items": tensor_metadata},
                "outputs": {"type": "array", "items": tensor_metadata},
            },
        },
        "RequestInput": tensor,
        "ResponseOutput": tensor,
        "InferenceRequest": {
            "type": "object",
            "required": ["inputs"],
            "properties": {
                "id": {"type": "string"},
                "parameters": parameters,
                "inputs": {"type": "array", "items": _ref("RequestInput")},
                "outputs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {"name": {"type": "string"}, "parameters": parameters},
                    },
                },
            },
        },
        "InferenceResponse": {
            "type": "object",
            "required": ["model_name", "outputs"],
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "id": {"type": "string"},
                "parameters": parameters,
                "outputs": {"type": "array", "items": _ref("ResponseOutput")},
            },
        },
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}},
        },
    }


# --------------------------------------------------------------------------- OpenAI-compatible


def _openai(title: str, model: str) -> Spec:
    error = _json(_ref("ErrorResponse"), "The request failed")
    return {
        "openapi": _OPENAPI_VERSION,
        "info": _info(title, "OpenAI-compatible API served by vLLM for this model server.", "1.0"),
        "paths": {
            "/health": {
                "get": {
                    "operationId": "health",
                    "summary": "200 once the engine is up",
                    "responses": {"200": {"description": "The server is healthy"}},
                }
            },
            "/v1/models": {
                "get": {
                    "operationId": "listModels",
                    "summary": "The models (and LoRA adapters) this server serves",
                    "responses": {"200": _json(_ref("ModelList"))},
                }
            },
            "/v1/completions": {
                "post": {
                    "operationId": "createCompletion",
                    "summary": "Complete a prompt",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("CompletionRequest")}},
                    },
                    "responses": {"200": _json(_ref("Completion")), "400": error},
                }
            },
            "/v1/chat/completions": {
                "post": {
                    "operationId": "createChatCompletion",
                    "summary": "Answer a conversation",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("ChatCompletionRequest")}},
                    },
                    "responses": {"200": _json(_ref("ChatCompletion")), "400": error},
                }
            },
        },
        "components": {"schemas": _openai_schemas(model)},
    }


def _openai_schemas(model: str) -> Spec:
    sampling = {
        "max_tokens": {"type": "integer", "minimum": 1},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2, "default": 1},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1, "default": 1},
        "n": {"type": "integer", "minimum": 1, "default": 1},
        "stream": {"type": "boolean", "default": False},
        "stop": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "seed": {"type": "integer"},
    }
    model_field = {"type": "string", "example": model}
    usage = {
        "type": "object",
        "required": ["prompt_tokens", "total_tokens"],
        "properties": {
            "prompt_tokens": {"type": "integer"},
            "completion_tokens": {"type": "integer"},
            "total_tokens": {"type": "integer"},
        },
    }
    finish = {
        "type": "string",
        "nullable": True,
        "description": "stop, length or tool_calls; null while streaming.",
    }
    message = {
        "type": "object",
        "required": ["role", "content"],
        "properties": {
            "role": {"type": "string", "enum": ["system", "user", "assistant", "tool"]},
            "content": {"type": "string", "nullable": True},
        },
    }
    return {
        "ModelList": {
            "type": "object",
            "required": ["object", "data"],
            "properties": {
                "object": {"type": "string", "enum": ["list"]},
                "data": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "object"],
                        "properties": {
                            "id": {"type": "string"},
                            "object": {"type": "string", "enum": ["model"]},
                            "created": {"type": "integer"},
                            "owned_by": {"type": "string"},
                            "max_model_len": {"type": "integer"},
                        },
                    },
                },
            },
        },
        "CompletionRequest": {
            "type": "object",
            "required": ["model", "prompt"],
            "properties": {
                "model": model_field,
                "prompt": {
                    "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
                },
                **sampling,
            },
        },
        "Completion": {
            "type": "object",
            "required": ["id", "object", "created", "model", "choices"],
            "properties": {
                "id": {"type": "string"},
                "object": {"type": "string", "enum": ["text_completion"]},
                "created": {"type": "integer"},
                "model": {"type": "string"},
                "choices": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["index", "text"],
                        "properties": {
                            "index": {"type": "integer"},
                            "text": {"type": "string"},
                            "finish_reason": finish,
                        },
                    },
                },
                "usage": usage,
            },
        },
        "ChatMessage": message,
        "ChatCompletionRequest": {
            "type": "object",
            "required": ["model", "messages"],
            "properties": {
                "model": model_field,
                "messages": {"type": "array", "minItems": 1, "items": _ref("ChatMessage")},
                **sampling,
            },
        },
        "ChatCompletion": {
            "type": "object",
            "required": ["id", "object", "created", "model", "choices"],
            "properties": {
                "id": {"type": "string"},
                "object": {"type": "string", "enum": ["chat.completion"]},
                "created": {"type": "integer"},
                "model": {"type": "string"},
                "choices": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["index", "message"],
                        "properties": {
                            "index": {"type": "integer"},
                            "message": _ref("ChatMessage"),
                            "finish_reason": finish,
                        },
                    },
                },
                "usage": usage,
            },
        },
        "ErrorResponse": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {
                "object": {"type": "string", "enum": ["error"]},
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": "string", "nullable": True},
                "code": {"type": "integer"},
            },
        },
    }


# --------------------------------------------------------------------------- unknown


def _unknown(title: str) -> Spec:
    return {
        "openapi": _OPENAPI_VERSION,
        "info": _info(
            title,
            "A custom model server: Trellis could not tell which protocol it speaks, so no "
            "operations are listed. Its repository documents them.",
            "0",
        ),
        "paths": {},
    }
