"""The API's error answers: the error tree mapped to HTTP statuses, and documented."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from trellis.api.deps import Detail, FieldProblem, RequestError
from trellis.errors import (
    AnswerError,
    Busy,
    Conflict,
    Disabled,
    InvalidQuery,
    InvalidRequest,
    NotFound,
    NotReady,
    SourceUnavailable,
    TimedOut,
    TrellisError,
    Unauthorized,
    reported,
)

__all__ = ["add_error_handlers", "document_errors"]


def add_error_handlers(app: FastAPI) -> None:
    """Map the error tree to HTTP statuses in one place."""

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [(_field(error["loc"]), str(error["msg"])) for error in exc.errors()]
        errors = [
            {"field": field, "message": message}
            for field, message in reported(problems, rest="request")
        ]
        return JSONResponse(
            {"detail": "invalid request: " + _summary(errors), "errors": errors}, status_code=400
        )

    @app.exception_handler(HTTPException)
    async def refused(_: Request, exc: HTTPException) -> JSONResponse:
        """Starlette's and FastAPI's own refusals (no route, a body that cannot be parsed).

        A 400 takes the shape of every other 400, so it matches what each route documents.
        """
        body: dict[str, object] = {"detail": str(exc.detail)}
        if exc.status_code == 400:
            body = {
                "detail": f"invalid request: body: {exc.detail}",
                "errors": [{"field": "body", "message": str(exc.detail)}],
            }
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(TrellisError)
    async def trellis_error(_: Request, exc: Exception) -> JSONResponse:
        body: dict[str, object] = {"detail": str(exc)}
        if isinstance(exc, AnswerError):
            body["errors"] = [
                {"field": field, "message": message} for field, message in exc.reported
            ]
        return JSONResponse(body, status_code=_status(exc), headers=_headers(exc))


_STATUSES: tuple[tuple[type[TrellisError], int], ...] = (
    (AnswerError, 400),
    (InvalidRequest, 400),
    (Unauthorized, 401),
    (NotFound, 404),
    (Conflict, 409),
    (InvalidQuery, 422),
    (Busy, 429),
    (NotReady, 503),
    (SourceUnavailable, 503),
    (Disabled, 503),
    (TimedOut, 504),
)
"""Each error's HTTP status; any other ``TrellisError`` is a 500."""


def _status(exc: Exception) -> int:
    return next((code for kind, code in _STATUSES if isinstance(exc, kind)), 500)


def _headers(exc: Exception) -> dict[str, str] | None:
    """What tells the client how to go on: when to retry, how to authenticate."""
    if isinstance(exc, NotReady):
        return {"Retry-After": "5"}
    if isinstance(exc, Busy):
        return {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, Unauthorized):
        return {"WWW-Authenticate": "Bearer"}
    return None


_JSON = "application/json"


def document_errors(app: FastAPI) -> None:
    """Make the OpenAPI document state the errors the handlers and middleware really give.

    FastAPI documents a ``422`` it never sends here (validation errors are ``400``) and
    knows nothing of ``401`` (token checks) and ``413`` (``BodyLimit``).
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                schemas.pop(name, None)
            for model in (Detail, FieldProblem, RequestError):
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                schema.pop("$defs", None)  # each is a component of its own
                schemas[model.__name__] = schema
            for operations in document.get("paths", {}).values():
                for operation in operations.values():
                    _operation_errors(operation)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _operation_errors(operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})

    def answer(description: str, schema: str) -> dict[str, Any]:
        ref = {"$ref": f"#/components/schemas/{schema}"}
        return {"description": description, "content": {_JSON: {"schema": ref}}}

    default = responses.get("422", {}).get("content", {}).get(_JSON, {}).get("schema", {})
    if default.get("$ref", "").endswith("/HTTPValidationError"):
        del responses["422"]
    if "parameters" in operation or "requestBody" in operation:
        responses.setdefault(
            "400", answer("A request that does not fit the route.", "RequestError")
        )
    if operation.get("security"):
        responses.setdefault("401", answer("No valid bearer token.", "Detail"))
    if "requestBody" in operation:
        responses.setdefault("413", answer("The request body is too large.", "Detail"))


def _field(location: Sequence[object]) -> str:
    """A validation error's location without FastAPI's ``body``/``query``/... prefix."""
    parts = [str(part) for part in location]
    if len(parts) > 1 and parts[0] in {"body", "query", "path", "header"}:
        parts.pop(0)
    return ".".join(parts) or "body"


def _summary(errors: list[dict[str, str]]) -> str:
    return "; ".join(f"{error['field']}: {error['message']}" for error in errors)
