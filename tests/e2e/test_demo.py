"""`make demo`'s main job, end to end: train real models, serve them, print the wiring."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import yaml

from support.registry import client
from support.services import free_port, start_process, wait_until
from support.timing import scaled


def test_the_demo_trains_real_models_and_serves_them(tmp_path: Path, monkeypatch) -> None:
    port = free_port()
    state = tmp_path / ".trellis"
    demo = start_process(
        [sys.executable, "-m", "trellis", "demo"],
        log=tmp_path / "demo.log",
        env={"TRELLIS_STATE_DIR": str(state), "TRELLIS_PORT": str(port), "COLUMNS": "200"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: httpx.get(f"{base}/readyz").json()["ready"],
            timeout=scaled(240),
            what=f"the demo to train and serve (log:\n{demo.tail()})",
        )
        entities = list(yaml.safe_load_all(httpx.get(f"{base}/catalog/entities.yaml").content))
        resources = {e["metadata"]["title"]: e for e in entities if e["kind"] == "Resource"}
        assert set(resources) == {
            "fraud-detector",
            "churn-predictor",
            "demand-forecast",
            "Credit Risk (EU)",
            "house-price-estimator",
        }
        assert resources["fraud-detector"]["spec"]["lifecycle"] == "production"
        assert resources["Credit Risk (EU)"]["spec"]["lifecycle"] == "experimental"
        assert resources["house-price-estimator"]["spec"]["owner"] == "group:default/ml-platform"
        owners = {r["spec"]["owner"] for r in resources.values()}
        assert len(owners) >= 4
        classes = {
            r["metadata"]["annotations"]["trellis.dev/data-classification"]
            for r in resources.values()
        }
        assert classes == {"public", "internal", "confidential", "restricted"}
        assert {e["metadata"]["name"] for e in entities if e["kind"] == "System"} == {
            "payments",
            "customer-insights",
            "logistics",
        }

        output = demo.log.read_text()
        assert f"{base}/catalog/entities.yaml" in output
        assert f"- host: 127.0.0.1:{port}" in output  # the app-config snippet
        token = (state / "demo-token").read_text().strip()
        problems = httpx.get(
            f"{base}/api/catalog/problems", headers={"Authorization": f"Bearer {token}"}
        )
        assert problems.status_code == 200

        # The demo's models are scored: signatures and datasets read from the registry, and
        # the one model without a model card fails that check.
        auth = {"Authorization": f"Bearer {token}"}
        wait_until(
            lambda: httpx.get(f"{base}/readyz").json()["scorecards"]["last_run"],
            timeout=scaled(120),
            what="the first scorecard run",
        )
        fraud = httpx.get(f"{base}/api/scorecards/default/resource/fraud-detector", headers=auth)
        readiness = next(s for s in fraud.json()["scorecards"] if s["name"] == "ml-model")
        outcomes = {c["id"]: c["outcome"] for c in readiness["checks"]}
        assert outcomes["model-has-signature"] == "passed"
        assert outcomes["model-dataset-lineage"] == "passed"
        assert outcomes["model-has-model-card"] == "passed"
        results = httpx.post(
            f"{base}/api/tech-insights/checks/run/default/resource/house-price-estimator",
            headers=auth,
            json={"checks": ["model-has-model-card"]},
        ).json()
        assert [r["result"] for r in results] == [False]

        uri = f"sqlite:///{state / 'mlflow.db'}"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        registry = client(uri)
        champion = registry.get_model_version_by_alias("fraud-detector", "champion")
        run = registry.get_run(champion.run_id)
        assert {"accuracy", "f1"} <= set(run.data.metrics)
        assert run.data.metrics["accuracy"] > 0.9  # breast-cancer data: a real model
        import mlflow

        info = mlflow.models.get_model_info(champion.source)
        assert info.signature is not None and info.signature.inputs.input_names()
    finally:
        demo.stop()
