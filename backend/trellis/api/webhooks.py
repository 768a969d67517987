"""MLflow's registry webhooks: the route MLflow posts to when a model or version changes.

MLflow cannot send a bearer token, so the route is open and each delivery proves itself with
its HMAC signature instead (``trellis.services.webhooks``). It answers 202 at once: the
refresh it asks for runs on the catalog's own thread.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request

from trellis.api.deps import Answer, Detail, RequestError, WebhooksDep
from trellis.services.webhooks import Delivery

__all__ = ["router"]

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])

#: MLflow's envelope (``mlflow.webhooks.delivery``); the route reads the raw bytes it signed.
_ENVELOPE: dict[str, Any] = {
    "type": "object",
    "required": ["entity", "action"],
    "properties": {
        "entity": {"type": "string", "examples": ["model_version"]},
        "action": {"type": "string", "examples": ["created"]},
        "timestamp": {"type": "string", "format": "date-time"},
        "data": {"type": "object"},
    },
}


class WebhookTaken(Answer):
    """A delivery taken: its event, and whether it brings the next catalog refresh forward."""

    event: str
    refresh: bool


@router.post(
    "/mlflow",
    status_code=202,
    response_model=WebhookTaken,
    summary="Take an MLflow registry webhook",
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ENVELOPE}}}
    },
    responses={
        400: {"model": RequestError, "description": "Not a signed MLflow webhook event."},
        401: {"model": Detail, "description": "A stale timestamp or a wrong signature."},
        404: {"model": Detail, "description": "Webhooks are off (no secret is configured)."},
        409: {"model": Detail, "description": "This delivery id was already taken."},
    },
)
async def mlflow(
    request: Request,
    webhooks: WebhooksDep,
    x_mlflow_delivery_id: Annotated[str | None, Header(max_length=1000)] = None,
    x_mlflow_timestamp: Annotated[str | None, Header(max_length=1000)] = None,
    x_mlflow_signature: Annotated[str | None, Header(max_length=4000)] = None,
) -> WebhookTaken:
    """Verify a delivery and, for a registry event, refresh the catalog without waiting.

    Register it in MLflow with ``MlflowClient().create_webhook(url=".../api/webhooks/mlflow",
    secret=..., events=[...])``; the events that refresh are ``registered_model.created``,
    ``model_version.created`` and the version tag and alias events. Other events are
    taken and ignored.
    """
    received = webhooks.receive(
        Delivery(
            body=await request.body(),
            delivery_id=x_mlflow_delivery_id,
            timestamp=x_mlflow_timestamp,
            signature=x_mlflow_signature,
        )
    )
    return WebhookTaken(event=received.event, refresh=received.refresh)
