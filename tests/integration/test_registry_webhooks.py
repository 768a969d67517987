"""A real MLflow server's webhooks refresh a real `trellis serve` without waiting for its poll.

Trellis polls the registry only once an hour here, so every change that shows up in its
catalog within the test's deadline came through a webhook that MLflow signed and delivered.
MLflow is told to deliver over plain HTTP to a loopback address, as an in-cluster Service
would be configured (by default it delivers only to public `https` URLs).
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient

from support.services import MlflowServer, TrellisServer, free_port, wait_until
from support.timing import scaled
from trellis.annotations import CHAMPION_VERSION
from trellis.services.webhooks import REGISTRY_EVENTS, signature

pytestmark = [pytest.mark.mlflow]

SECRET = "webhook-" + secrets.token_hex(16)
MODEL = "fraud-detector"
WEBHOOK_ENV = {
    "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
    "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
}


@dataclass
class Wired:
    mlflow: MlflowClient
    trellis: TrellisServer
    webhook_id: str


@pytest.fixture(scope="module")
def wired(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wired]:
    root = tmp_path_factory.mktemp("webhooks")
    mlflow = MlflowServer(db=root / "mlflow" / "mlflow.db", port=free_port(), env=WEBHOOK_ENV)
    mlflow.start()
    trellis = TrellisServer(
        root / "state",
        env={
            "TRELLIS_MLFLOW__TRACKING_URI": mlflow.url,
            "TRELLIS_CATALOG__REFRESH_INTERVAL_SECONDS": "3600",
            "TRELLIS_SCORECARDS__INTERVAL_SECONDS": "3600",
            "TRELLIS_WEBHOOKS__SECRET": SECRET,
            "TRELLIS_WEBHOOKS__DEBOUNCE_SECONDS": "0.5",
            "TRELLIS_LOG_LEVEL": "debug",  # refusals are logged at debug only
        },
        port=free_port(),
    )
    try:
        trellis.start(timeout=scaled(60))
        client = MlflowClient(tracking_uri=mlflow.url, registry_uri=mlflow.url)
        hook = client.create_webhook(
            name="trellis-catalog",
            url=f"{trellis.url}/api/webhooks/mlflow",
            events=sorted(REGISTRY_EVENTS),
            secret=SECRET,
        )
        yield Wired(client, trellis, hook.webhook_id)
    finally:
        trellis.stop()
        mlflow.stop()


def served_model(trellis: TrellisServer) -> dict | None:
    items = httpx.get(f"{trellis.url}/catalog/entities", timeout=scaled(10)).json()["items"]
    return next((e for e in items if e["metadata"].get("title") == MODEL), None)


def deliveries(trellis: TrellisServer) -> dict[str, float]:
    text = httpx.get(f"{trellis.url}/metrics", timeout=scaled(5)).text
    pattern = r'trellis_webhook_deliveries_total\{outcome="(\w+)"\} ([0-9.]+)'
    return {outcome: float(count) for outcome, count in re.findall(pattern, text)}


def test_a_new_model_and_its_champion_reach_the_catalog_through_webhooks(wired):
    assert served_model(wired.trellis) is None
    wired.mlflow.create_registered_model(MODEL, tags={"owner": "group:default/risk"})
    wait_until(
        lambda: served_model(wired.trellis) is not None,
        timeout=scaled(20),
        what="the new model in Trellis's catalog",
    )

    version = wired.mlflow.create_model_version(MODEL, "s3://models/fraud-detector/1")
    wired.mlflow.set_registered_model_alias(MODEL, "champion", version.version)
    wait_until(
        lambda: (
            served_model(wired.trellis)["metadata"]["annotations"].get(CHAMPION_VERSION)
            == version.version
        ),
        timeout=scaled(20),
        what="the champion alias in Trellis's catalog",
    )
    counted = deliveries(wired.trellis)
    # Three events (model, version, alias); a burst may be folded, never refused.
    assert counted.get("refresh") == 3
    assert set(counted) == {"refresh"}


def test_mlflows_own_webhook_test_succeeds(wired):
    """MLflow's "test webhook" button sends an example event: Trellis takes it as real."""
    result = wired.mlflow.test_webhook(wired.webhook_id)
    assert result.success, result
    assert result.response_status == 202


def test_a_forged_or_replayed_delivery_changes_nothing(wired):
    body = b'{"entity": "registered_model", "action": "created", "data": {"name": "x"}}'
    stamp, delivery = str(int(time.time())), secrets.token_hex(8)
    url = f"{wired.trellis.url}/api/webhooks/mlflow"

    def post(secret: str) -> httpx.Response:
        headers = {
            "X-MLflow-Delivery-Id": delivery,
            "X-MLflow-Timestamp": stamp,
            "X-MLflow-Signature": signature(secret, delivery, stamp, body),
        }
        return httpx.post(url, content=body, headers=headers, timeout=scaled(10))

    before = deliveries(wired.trellis)
    forged = post("not-the-secret-" + secrets.token_hex(8))
    taken, replayed = post(SECRET), post(SECRET)
    assert (forged.status_code, taken.status_code, replayed.status_code) == (401, 202, 409)
    assert "signature does not match" in forged.json()["detail"]
    after = deliveries(wired.trellis)
    assert {k: after[k] - before.get(k, 0) for k in after} == {
        "refresh": 1,
        "refused": 1,
        "replayed": 1,
    }


def test_the_secret_is_in_no_log_line(wired):
    """The refusals of the test above are logged (at debug) with their reason, never the secret."""
    log = Path(wired.trellis.process_log).read_text()
    assert "refused an MLflow webhook delivery: the signature does not match" in log
    assert "refused an MLflow webhook delivery: delivery " in log  # the replay
    assert SECRET not in log
