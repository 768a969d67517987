"""A real Backstage backend reads Trellis's catalog and keeps it through MLflow outages.

Everything here is real and on 127.0.0.1: an MLflow tracking server (one worker) over a
registry of 300+ hostile names, ``trellis serve`` as a process, and a Backstage backend with
the catalog plugin reading Trellis through a ``url`` location, with a subscriber to
``experimental.catalog.errors``.
"""

from __future__ import annotations

import shutil
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from support.backstage import BackstageBackend
from support.registry import ModelSpec, client
from support.services import MlflowServer, TrellisServer, free_port, wait_until
from support.timing import scaled

pytestmark = [pytest.mark.backstage, pytest.mark.mlflow]

PROCESSING_SECONDS = 600
"""Longer than the test: every re-read is one it asks for (:func:`reread`), so Backstage does
not reprocess 330 entities every few seconds while the test waits for something else."""
REPO = Path(__file__).resolve().parents[2]


class QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def resource_names(backstage: BackstageBackend) -> set[str]:
    return {e["metadata"]["name"] for e in backstage.entities("kind=resource")}


def is_about_an_entity(event: dict) -> bool:
    """A catalog error about an entity itself, not a location whose read failed."""
    return not event["entity"].startswith("location:")


def reread(
    backstage: BackstageBackend, trellis: TrellisServer, entity_ref: str, count: int
) -> None:
    """Have Backstage re-read Trellis's catalog ``count`` times, as its processing loop would.

    Refreshing an entity re-reads the location that holds it; each re-read is awaited in
    Trellis's own count of catalog fetches before the next is asked for.
    """
    for _ in range(count):
        reads = trellis.entity_reads()
        backstage.refresh(entity_ref)
        wait_until(
            lambda reads=reads: trellis.entity_reads() > reads,
            timeout=scaled(60),
            what="Backstage to re-read the catalog",
        )


def test_backstage_ingests_every_model_and_keeps_them_through_outages(
    tmp_path: Path, hostile_registry: tuple[Path, list[ModelSpec]]
) -> None:
    source_db, specs = hostile_registry
    db = tmp_path / "mlflow" / "mlflow.db"
    db.parent.mkdir()
    shutil.copy(source_db, db)
    mlflow = MlflowServer(db=db, port=free_port()).start()
    trellis = TrellisServer(
        state_dir=tmp_path / "trellis",
        port=free_port(),
        env={
            "TRELLIS_MLFLOW__TRACKING_URI": mlflow.url,
            "TRELLIS_MLFLOW__TIMEOUT_SECONDS": str(scaled(5)),
            "TRELLIS_CATALOG__REFRESH_INTERVAL_SECONDS": "2",
        },
    )
    trellis.state_dir.mkdir()
    # The platform's own catalog files, served the way a Git host would serve them.
    files = ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(QuietFiles, directory=str(REPO / "catalog"))
    )
    threading.Thread(target=files.serve_forever, daemon=True).start()
    platform = f"http://127.0.0.1:{files.server_port}"
    try:
        trellis.start()
        served = httpx.get(f"{trellis.url}/catalog/entities.yaml")
        expected = {
            d["metadata"]["name"]
            for d in yaml.safe_load_all(served.content)
            if d["kind"] == "Resource"
        }
        assert len(expected) == len(specs)

        with BackstageBackend.start(
            tmp_path / "backstage",
            locations=[
                {"type": "url", "target": f"{trellis.url}/catalog/entities.yaml"},
                {"type": "url", "target": f"{platform}/catalog-info.yaml"},
            ],
            reading_allow=[f"127.0.0.1:{trellis.port}", platform.removeprefix("http://")],
            extra_config={"catalog": {"processingInterval": {"seconds": PROCESSING_SECONDS}}},
        ) as backstage:
            # Every model is a Resource in Backstage, and nothing was rejected.
            backstage.wait_for(
                lambda: resource_names(backstage) == expected,
                180,
                f"all {len(expected)} models as Resources in Backstage",
            )
            assert backstage.catalog_errors() == []
            systems = backstage.entities("kind=system")
            assert systems and all(s["spec"]["owner"] for s in systems)
            # The platform's own entities come in through one file location.
            api = backstage.entities("kind=api,metadata.name=trellis-api")
            assert [a["spec"]["definition"] for a in api] == [
                (REPO / "catalog" / "openapi.yaml").read_text()
            ]
            backend = backstage.entities("kind=component,metadata.name=trellis-backend")
            assert {r["type"] for r in backend[0]["relations"]} >= {"providesApi", "partOf"}

            # A model registered later appears after a refresh.
            client(mlflow.url).create_registered_model(
                "registered-later", tags={"owner": "team-late"}
            )
            wait_until(
                lambda: (
                    b"registered-later" in httpx.get(f"{trellis.url}/catalog/entities.yaml").content
                ),
                timeout=scaled(30),
                what="Trellis to serve the model registered later",
            )
            witness = f"resource:default/{sorted(expected)[0]}"
            reread(backstage, trellis, witness, 1)
            backstage.wait_for(
                lambda: "registered-later" in resource_names(backstage),
                90,
                "the model registered later to appear in Backstage",
            )
            everything = resource_names(backstage)
            assert len(everything) == len(specs) + 1

            # MLflow goes down: Trellis serves its last good snapshot, Backstage keeps all.
            mlflow.stop()
            wait_until(
                lambda: (
                    httpx.get(f"{trellis.url}/readyz").json()["sources"]["mlflow"]["state"]
                    == "failing"
                ),
                timeout=scaled(30),
                what="Trellis to notice MLflow is down",
            )
            reread(backstage, trellis, witness, 2)
            assert resource_names(backstage) == everything
            ready = httpx.get(f"{trellis.url}/readyz").json()
            assert ready["ready"] and ready["stale"]
            etag = httpx.get(f"{trellis.url}/catalog/entities.yaml").headers["etag"]

            # Trellis restarts while MLflow is still down: the kept snapshot is served.
            trellis.restart()
            after = httpx.get(f"{trellis.url}/catalog/entities.yaml")
            assert after.status_code == 200
            assert after.headers["etag"] == etag
            assert after.headers["x-trellis-stale"] == "true"
            reread(backstage, trellis, witness, 2)
            assert resource_names(backstage) == everything
            # No entity was ever rejected (a failed read would be about the location alone).
            assert [e for e in backstage.catalog_errors() if is_about_an_entity(e)] == []
    finally:
        trellis.stop()
        mlflow.stop()
        files.shutdown()
        files.server_close()
