"""Seconds from `create_registered_model` to the entity in Backstage's catalog API.

Two roads are measured side by side in one run, on the same registry and the same Backstage:

* **webhooks + provider**: MLflow's webhook makes Trellis refresh at once, and the Trellis
  entity provider reads Trellis on its documented default schedule (every 5 s);
* **url location, defaults**: Trellis polls MLflow every 60 s (its default) and Backstage
  reads a `url` location on its own default processing interval (100 to 150 s).

Everything is real and on 127.0.0.1: one `mlflow server` (webhooks allowed to loopback), two
`trellis serve` (one per road, each in its own Backstage namespace so their entities do not
collide) and one Backstage backend holding both the provider and the location. Models are
registered `--spacing` seconds apart, so they meet the polling cycles at different phases;
every model is watched on both roads at once.

    .venv/bin/python benchmarks/freshness.py               # 5 models, about 4 minutes
    .venv/bin/python benchmarks/freshness.py --samples 9   # a steadier median

It prints one JSON object on stdout; progress lines go to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"
_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from harness import log, median  # noqa: E402

from support.backstage import BackstageBackend  # noqa: E402
from support.services import MlflowServer, TrellisServer, free_port  # noqa: E402

GOAL_MEDIAN_SECONDS = 10.0
TOKEN = "freshness-" + secrets.token_hex(16)
SECRET = "freshness-webhook-" + secrets.token_hex(16)
ROADS = {"webhooks": "webhooks + entity provider", "polling": "url location, defaults"}
REGISTRY_EVENTS = ["registered_model.created", "model_version.created"]


def main() -> None:
    """Start the services, register the models, and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5, help="models registered (default 5)")
    parser.add_argument("--spacing", type=float, default=7.0, help="seconds between models")
    parser.add_argument(
        "--deadline", type=float, default=420.0, help="seconds to wait for the last model"
    )
    parser.add_argument(
        "--polling-interval",
        type=float,
        default=None,
        help="Trellis's poll on the url road (default: Trellis's own, 60 s)",
    )
    parser.add_argument(
        "--processing-interval",
        type=float,
        default=None,
        help="Backstage's processing interval (default: Backstage's own, 100 to 150 s)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="trellis-freshness-") as work, ExitStack() as stack:
        root = Path(work)
        mlflow = MlflowServer(
            db=root / "mlflow" / "mlflow.db",
            port=free_port(),
            env={
                "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
                "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
            },
        ).start()
        stack.callback(mlflow.stop)
        log(f"MLflow at {mlflow.url}")
        hooked = serve(stack, root / "webhooks", mlflow.url, "webhooks", webhooks=True)
        polled = serve(
            stack, root / "polling", mlflow.url, "polling", interval=args.polling_interval
        )
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=mlflow.url, registry_uri=mlflow.url)
        client.create_webhook(
            name="trellis",
            url=f"{hooked.url}/api/webhooks/mlflow",
            events=REGISTRY_EVENTS,
            secret=SECRET,
        )
        backstage = stack.enter_context(
            BackstageBackend.start(
                root / "backstage",
                locations=[{"type": "url", "target": f"{polled.url}/catalog/entities.yaml"}],
                reading_allow=[f"127.0.0.1:{polled.port}"],
                extra_config={
                    # The documented provider block, with its default schedule.
                    "trellis": {"baseUrl": hooked.url, "token": TOKEN, "catalog": {}},
                    "catalog": {
                        "processingInterval": (
                            {"seconds": args.processing_interval}
                            if args.processing_interval
                            else None
                        )
                    },
                },
                scaffolder=False,
            )
        )
        log(f"Backstage at {backstage.base_url}")
        report = measure(client, backstage, args)
    report["settings"] = {
        "trellis_webhook_debounce_seconds": 2.0,
        "provider_frequency_seconds": 5,
        "trellis_polling_interval_seconds": args.polling_interval or 60,
        "backstage_processing_interval_seconds": args.processing_interval or "100 to 150",
    }
    print(json.dumps(report, indent=2))


def serve(
    stack: ExitStack,
    state: Path,
    registry: str,
    namespace: str,
    *,
    webhooks: bool = False,
    interval: float | None = None,
) -> TrellisServer:
    """A `trellis serve` for one road, stopped with the stack."""
    env = {
        "TRELLIS_MLFLOW__TRACKING_URI": registry,
        "TRELLIS_API_TOKENS": TOKEN,
        "TRELLIS_CATALOG__NAMESPACE": namespace,
        "TRELLIS_SCORECARDS__INTERVAL_SECONDS": "3600",
    }
    if webhooks:
        env["TRELLIS_WEBHOOKS__SECRET"] = SECRET
    if interval:
        env["TRELLIS_CATALOG__REFRESH_INTERVAL_SECONDS"] = str(interval)
    trellis = TrellisServer(state, env=env, port=free_port()).start(timeout=120)
    stack.callback(trellis.stop)
    log(f"trellis serve ({namespace}) at {trellis.url}")
    return trellis


def measure(client: Any, backstage: BackstageBackend, args: argparse.Namespace) -> dict:
    """Register the models one by one and time each one's arrival on both roads."""
    registered: dict[str, float] = {}
    seen: dict[tuple[str, str], float] = {}
    names = [f"freshness-{i}-{secrets.token_hex(3)}" for i in range(args.samples)]
    next_at = time.monotonic()
    deadline = None
    with httpx.Client(base_url=backstage.base_url, timeout=10) as http:
        while True:
            now = time.monotonic()
            if len(registered) < len(names) and now >= next_at:
                name = names[len(registered)]
                client.create_registered_model(name, tags={"owner": "group:default/ml"})
                registered[name] = time.monotonic()
                log(f"registered {name}")
                next_at += args.spacing
                deadline = time.monotonic() + args.deadline
            for name, at in registered.items():
                for road in ROADS:
                    if (name, road) in seen:
                        continue
                    answer = http.get(f"/api/catalog/entities/by-name/resource/{road}/{name}")
                    if answer.status_code == 200:
                        seen[name, road] = time.monotonic() - at
                        log(f"{name} in Backstage by {road} after {seen[name, road]:.1f} s")
            if len(seen) == len(names) * len(ROADS):
                break
            if deadline is not None and time.monotonic() > deadline:
                log("deadline passed; models not seen are reported as missing")
                break
            time.sleep(0.25)
    roads: dict[str, Any] = {}
    for road, title in ROADS.items():
        latencies = [round(seen[name, road], 2) for name in names if (name, road) in seen]
        roads[road] = {
            "road": title,
            "seconds": latencies,
            "missing": len(names) - len(latencies),
            "median_seconds": round(median(latencies), 2) if latencies else None,
            "max_seconds": max(latencies) if latencies else None,
        }
    hooked, polled = roads["webhooks"]["median_seconds"], roads["polling"]["median_seconds"]
    return {
        "samples": len(names),
        "spacing_seconds": args.spacing,
        "roads": roads,
        "polling_over_webhooks": round(polled / hooked, 1) if hooked and polled else None,
        "goal": {"webhooks_median_seconds": GOAL_MEDIAN_SECONDS},
        "met": {
            "webhooks_median_seconds": hooked is not None
            and roads["webhooks"]["missing"] == 0
            and hooked <= GOAL_MEDIAN_SECONDS
        },
    }


if __name__ == "__main__":
    main()
