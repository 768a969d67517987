"""MLflow registry webhooks: verified, never taken twice, and turned into an early refresh.

MLflow signs each delivery the Standard Webhooks way: HMAC-SHA256 with the webhook's secret
over ``{delivery id}.{timestamp}.{body}``, base64, sent as ``v1,<signature>`` in
``X-MLflow-Signature`` beside ``X-MLflow-Delivery-Id`` and ``X-MLflow-Timestamp``. A delivery
is taken only when its timestamp is within the tolerance of now (either way), its signature
matches, and its delivery id was not taken within twice that window. A captured request can
therefore not be replayed: within the window its id is known, after it its timestamp is too
old. A registry event then asks for a catalog refresh; the refresh loop folds a burst of
them into one read, and polling stays the fallback for anything a webhook misses (MLflow
sends no event when a model is deleted). Every registry event names its model
(``data.name``): with ``on_model``, only that model is read again, and the periodic full
read stays the reconciliation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import TTLCache

from trellis.errors import Conflict, InvalidRequest, Unauthorized
from trellis.metrics import Metrics

__all__ = ["REGISTRY_EVENTS", "Delivery", "Received", "RegistryWebhooks", "signature"]

log = logging.getLogger(__name__)

#: The events that change what the catalog shows; prompts and budgets do not.
REGISTRY_EVENTS = frozenset(
    {
        "registered_model.created",
        "model_version.created",
        "model_version_tag.set",
        "model_version_tag.deleted",
        "model_version_alias.created",
        "model_version_alias.deleted",
    }
)
SIGNATURE_VERSION = "v1"
#: Longest delivery id kept (MLflow's are UUIDs): the replay memory stays small.
MAX_DELIVERY_ID = 128
#: Most delivery ids remembered at once; only signed deliveries are remembered.
MAX_REMEMBERED = 100_000
#: Longest model name taken from a delivery (MLflow's limit is far lower); longer: read all.
MAX_MODEL_NAME = 1000


@dataclass(frozen=True)
class Delivery:
    """One POST as it arrived: the raw body and MLflow's three headers (None when absent)."""

    body: bytes
    delivery_id: str | None
    timestamp: str | None
    signature: str | None


@dataclass(frozen=True)
class Received:
    """What a taken delivery was, and whether it asked for a refresh."""

    event: str
    refresh: bool


def signature(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The ``v1,<base64>`` value MLflow sends for this delivery."""
    signed = b".".join((delivery_id.encode(), timestamp.encode(), body))
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


class RegistryWebhooks:
    """Checks MLflow's deliveries and calls ``on_change`` for registry events."""

    def __init__(
        self,
        secret: str,
        *,
        on_change: Callable[[], None],
        metrics: Metrics,
        tolerance_seconds: float = 300.0,
        clock: Callable[[], float] = time.time,
        on_model: Callable[[str], None] | None = None,
    ) -> None:
        """``clock`` is wall time in seconds, as the senders' timestamps are.

        ``on_model`` is called with the model an event names, when it names one; else
        ``on_change``.
        """
        self._secret = secret
        self.on_change = on_change
        self.on_model = on_model
        self.metrics = metrics
        self.tolerance_seconds = tolerance_seconds
        self.clock = clock
        self._taken: TTLCache[str, bool] = TTLCache(
            # A second more than a fresh timestamp can last, so no moment has neither.
            maxsize=MAX_REMEMBERED,
            ttl=2 * tolerance_seconds + 1,
            timer=clock,
        )
        self._lock = threading.Lock()

    def receive(self, delivery: Delivery) -> Received:
        """Take one delivery, or raise why not (nothing is remembered of a refused one)."""
        try:
            received = self._receive(delivery)
        except (InvalidRequest, Unauthorized, Conflict) as exc:
            self.metrics.webhooks.labels(_OUTCOMES[type(exc)]).inc()
            # Anyone can post here: at a higher level, refusals would let them flood the log.
            # The metric counts them; the sender is told why in the answer.
            log.debug("refused an MLflow webhook delivery: %s", exc)
            raise
        self.metrics.webhooks.labels("refresh" if received.refresh else "ignored").inc()
        log.debug("MLflow webhook %s taken (refresh: %s)", received.event, received.refresh)
        if received.refresh:
            model = _model_name(delivery.body) if self.on_model is not None else None
            if model is not None and self.on_model is not None:
                self.on_model(model)
            else:
                self.on_change()
        return received

    def _receive(self, delivery: Delivery) -> Received:
        delivery_id, stamp, signatures = _headers(delivery)
        moment = int(stamp)
        if abs(self.clock() - moment) > self.tolerance_seconds:
            msg = (
                f"the delivery's timestamp is more than {self.tolerance_seconds:g} s from now: "
                "a replay, or a clock that is off"
            )
            raise Unauthorized(msg)
        expected = signature(self._secret, delivery_id, stamp, delivery.body)
        if not any(hmac.compare_digest(expected, given) for given in signatures):
            msg = "the signature does not match: is the webhook's secret TRELLIS_WEBHOOKS__SECRET?"
            raise Unauthorized(msg)
        with self._lock:
            if delivery_id in self._taken:
                msg = f"delivery {delivery_id} was already taken"
                raise Conflict(msg)
            self._taken[delivery_id] = True
        event = _event(delivery.body)
        return Received(event=event, refresh=event in REGISTRY_EVENTS)


_OUTCOMES: dict[type[Exception], str] = {
    InvalidRequest: "malformed",
    Unauthorized: "refused",
    Conflict: "replayed",
}


def _headers(delivery: Delivery) -> tuple[str, str, list[str]]:
    """The delivery id, the timestamp and each ``v1`` signature, or why they are unusable."""
    delivery_id = delivery.delivery_id or ""
    stamp = delivery.timestamp or ""
    given = delivery.signature or ""
    named = {
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": given,
    }
    missing = [header for header, value in named.items() if not value]
    if missing:
        msg = f"not a signed MLflow webhook: {', '.join(missing)} missing"
        raise InvalidRequest(msg)
    if len(delivery_id) > MAX_DELIVERY_ID:
        msg = f"X-MLflow-Delivery-Id is longer than {MAX_DELIVERY_ID} characters"
        raise InvalidRequest(msg)
    if not (stamp.isascii() and stamp.isdigit()):
        msg = "X-MLflow-Timestamp is not a Unix time in whole seconds"
        raise InvalidRequest(msg)
    # Several space-separated signatures may come while a secret is rotated.
    signatures = [
        signed
        for signed in given.split()
        if signed.startswith(f"{SIGNATURE_VERSION},") and _is_base64(signed[3:])
    ]
    if not signatures:
        msg = f"X-MLflow-Signature holds no {SIGNATURE_VERSION} signature"
        raise InvalidRequest(msg)
    return delivery_id, stamp, signatures


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _model_name(body: bytes) -> str | None:
    """The registered model a signed registry event names (``data.name``), if it names one."""
    data = json.loads(body).get("data")
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) and 0 < len(name) <= MAX_MODEL_NAME else None


def _event(body: bytes) -> str:
    """``entity.action`` of a signed body, which must be MLflow's envelope."""
    try:
        envelope = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        envelope = None
    parts = [envelope.get("entity"), envelope.get("action")] if isinstance(envelope, dict) else []
    if len(parts) != 2 or not all(isinstance(part, str) and part for part in parts):
        msg = "the body is not an MLflow webhook event (a JSON object with entity and action)"
        raise InvalidRequest(msg)
    return f"{parts[0]}.{parts[1]}"[:100]
