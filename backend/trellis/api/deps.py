"""Dependencies shared by the routers: the catalog service and bearer-token auth."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from trellis.config import Settings
from trellis.services.catalog_refresh import CatalogService

__all__ = [
    "CatalogAccess",
    "Detail",
    "FieldProblem",
    "RequestError",
    "ServiceDep",
    "SettingsDep",
    "TokenRequired",
]


class Detail(BaseModel):
    """A failure in one sentence."""

    detail: str


class FieldProblem(BaseModel):
    """One field of a request that does not fit, and why."""

    field: str
    message: str


class RequestError(BaseModel):
    """What is wrong with the request: each field (past 20, a last entry counts the rest)."""

    detail: str
    errors: list[FieldProblem] = []


_bearer = HTTPBearer(auto_error=False, description="A token from TRELLIS_API_TOKENS.")


def _service(request: Request) -> CatalogService:
    service: CatalogService = request.app.state.catalog_service
    return service


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


ServiceDep = Annotated[CatalogService, Depends(_service)]
SettingsDep = Annotated[Settings, Depends(_settings)]


def _token_matches(presented: str, settings: Settings) -> bool:
    """Constant-time comparison against every configured token (no early exit)."""
    matched = False
    for token in settings.api_tokens:
        matched |= hmac.compare_digest(presented.encode(), token.get_secret_value().encode())
    return matched


def _unauthorized() -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail="a valid bearer token is required",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _require_token(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    if credentials is None or not _token_matches(credentials.credentials, settings):
        raise _unauthorized()


def _catalog_access(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """The catalog files are open unless configured otherwise.

    Backstage's url reader cannot send headers, so a protected catalog also accepts the token
    as the ``token`` query parameter of the location URL.
    """
    if not settings.catalog.requires_token:
        return
    presented = credentials.credentials if credentials else request.query_params.get("token")
    if not presented or not _token_matches(presented, settings):
        raise _unauthorized()


TokenRequired = Depends(_require_token)
CatalogAccess = Depends(_catalog_access)
