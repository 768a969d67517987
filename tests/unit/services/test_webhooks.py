"""MLflow webhook deliveries: taken only when signed, fresh and new; registry events refresh.

The signature is computed here from MLflow's documented scheme (HMAC-SHA256 over
``{delivery id}.{timestamp}.{body}``, base64, ``v1,`` prefix), independently of the code
under test; ``tests/integration/test_registry_webhooks.py`` has a real MLflow server sign them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import replace

import pytest

from trellis.errors import Conflict, InvalidRequest, Unauthorized
from trellis.metrics import Metrics
from trellis.services.webhooks import Delivery, Received, RegistryWebhooks

SECRET = "webhook-secret-" + "s" * 20
NOW = 1_800_000_000.0
TOLERANCE = 300.0


def mlflow_signature(secret: str, delivery_id: str, stamp: str, body: bytes) -> str:
    signed = f"{delivery_id}.{stamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def delivery(
    event: str = "model_version.created",
    *,
    delivery_id: str = "4b1f6a52-0d7e-4a8e-9f0e-1c2d3e4f5a6b",
    at: float = NOW,
    secret: str = SECRET,
    body: bytes | None = None,
) -> Delivery:
    entity, action = event.rsplit(".", 1)
    if body is None:
        data = {"name": "fraud-detector", "version": "3"}
        body = json.dumps({"entity": entity, "action": action, "data": data}).encode()
    stamp = str(int(at))
    return Delivery(body, delivery_id, stamp, mlflow_signature(secret, delivery_id, stamp, body))


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def refreshes() -> list[int]:
    return []


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def hooks(clock: Clock, refreshes: list[int], metrics: Metrics) -> RegistryWebhooks:
    return RegistryWebhooks(
        SECRET,
        on_change=lambda: refreshes.append(1),
        metrics=metrics,
        tolerance_seconds=TOLERANCE,
        clock=clock,
    )


def counted(metrics: Metrics) -> dict[str, float]:
    return {
        sample.labels["outcome"]: sample.value
        for metric in metrics.webhooks.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    }


@pytest.mark.parametrize(
    "event",
    [
        "registered_model.created",
        "model_version.created",
        "model_version_tag.set",
        "model_version_tag.deleted",
        "model_version_alias.created",
        "model_version_alias.deleted",
    ],
)
def test_a_signed_registry_event_refreshes_the_catalog(hooks, refreshes, event):
    assert hooks.receive(delivery(event)) == Received(event=event, refresh=True)
    assert refreshes == [1]


def test_other_events_are_taken_and_change_nothing(hooks, refreshes, metrics):
    assert hooks.receive(delivery("prompt.created")) == Received("prompt.created", refresh=False)
    assert refreshes == []
    assert counted(metrics) == {"ignored": 1.0}


def test_a_wrong_secret_is_refused(hooks, refreshes, metrics):
    with pytest.raises(Unauthorized, match="signature does not match"):
        hooks.receive(delivery(secret="another-secret-" + "x" * 20))
    assert refreshes == []
    assert counted(metrics) == {"refused": 1.0}


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"body": b'{"entity": "registered_model", "action": "created"}'}, id="body"),
        pytest.param({"delivery_id": "another-id"}, id="delivery-id"),
        pytest.param({"timestamp": str(int(NOW) + 1)}, id="timestamp"),
    ],
)
def test_a_delivery_changed_after_signing_is_refused(hooks, refreshes, change):
    with pytest.raises(Unauthorized, match="signature does not match"):
        hooks.receive(replace(delivery(), **change))
    assert refreshes == []


@pytest.mark.parametrize("offset", [-TOLERANCE - 1, TOLERANCE + 1])
def test_a_timestamp_outside_the_tolerance_is_refused(hooks, refreshes, offset):
    """Signed correctly, but too old (a replay) or too far ahead (a clock that is off)."""
    with pytest.raises(Unauthorized, match="from now"):
        hooks.receive(delivery(at=NOW + offset))
    assert refreshes == []


@pytest.mark.parametrize("offset", [-TOLERANCE, TOLERANCE])
def test_a_timestamp_at_the_tolerance_is_taken(hooks, offset):
    assert hooks.receive(delivery(at=NOW + offset)).refresh


def test_a_replayed_delivery_is_refused(hooks, refreshes, metrics):
    taken = delivery()
    hooks.receive(taken)
    with pytest.raises(Conflict, match="already taken"):
        hooks.receive(taken)
    assert refreshes == [1]
    assert counted(metrics) == {"refresh": 1.0, "replayed": 1.0}


def test_a_delivery_is_remembered_for_as_long_as_its_timestamp_is_fresh(hooks, clock):
    """Stamped as far ahead as allowed, it stays fresh for twice the tolerance: so does its id."""
    ahead = delivery(at=NOW + TOLERANCE)
    hooks.receive(ahead)
    clock.now = NOW + 2 * TOLERANCE
    with pytest.raises(Conflict):
        hooks.receive(ahead)
    clock.now += 1
    with pytest.raises(Unauthorized, match="from now"):
        hooks.receive(ahead)


def test_a_refused_delivery_is_not_remembered(hooks, refreshes):
    """A forged delivery cannot spend a real delivery's id before it arrives."""
    forged = delivery(secret="another-secret-" + "x" * 20)
    with pytest.raises(Unauthorized):
        hooks.receive(forged)
    assert hooks.receive(delivery()).refresh
    assert refreshes == [1]


def test_one_matching_signature_among_several_is_enough(hooks):
    """While a secret is rotated a sender may sign with both, space-separated."""
    good = delivery()
    other = delivery(secret="another-secret-" + "x" * 20).signature
    assert hooks.receive(replace(good, signature=f"{other} {good.signature}")).refresh


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"delivery_id": None}, "X-MLflow-Delivery-Id missing"),
        ({"timestamp": None, "signature": ""}, "X-MLflow-Timestamp, X-MLflow-Signature missing"),
        ({"delivery_id": "d" * 129}, "longer than 128"),
        ({"timestamp": "1.8e9"}, "not a Unix time"),
        ({"timestamp": "\u0661\u0662"}, "not a Unix time"),
        ({"signature": "v0,abc"}, "no v1 signature"),
        ({"signature": "v1,not base64!"}, "no v1 signature"),
    ],
)
def test_a_delivery_that_is_not_signed_as_mlflow_signs_is_malformed(
    hooks, refreshes, metrics, change, reason
):
    with pytest.raises(InvalidRequest, match=reason):
        hooks.receive(replace(delivery(), **change))
    assert refreshes == []
    assert counted(metrics) == {"malformed": 1.0}


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"entity": "model_version"}',
        b'{"entity": 1, "action": "x"}',
    ],
)
def test_a_signed_body_that_is_not_an_mlflow_event_is_malformed(hooks, refreshes, body):
    with pytest.raises(InvalidRequest, match="not an MLflow webhook event"):
        hooks.receive(delivery(body=body))
    assert refreshes == []


def test_with_on_model_a_registry_event_asks_for_its_model_alone(clock, refreshes, metrics):
    named: list[str] = []
    hooks = RegistryWebhooks(
        SECRET,
        on_change=lambda: refreshes.append(1),
        on_model=named.append,
        metrics=metrics,
        tolerance_seconds=TOLERANCE,
        clock=clock,
    )
    assert hooks.receive(delivery("model_version_alias.created")).refresh is True
    assert named == ["fraud-detector"] and refreshes == []
    unnamed = json.dumps({"entity": "registered_model", "action": "created", "data": {}})
    hooks.receive(delivery("registered_model.created", delivery_id="other", body=unnamed.encode()))
    assert named == ["fraud-detector"] and refreshes == [1]  # no name: a full read
