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
            "tiny-gpt2",
            "tiny-gpt2-eu-west-1",
            "tiny-gpt2-ap-southeast-1",
        }
        # Hub-to-region lineage: each adapter depends on the open model, which lists both.
        hub = resources["tiny-gpt2"]
        adapters = [resources[f"tiny-gpt2-{r}"] for r in ("ap-southeast-1", "eu-west-1")]
        for adapter in adapters:
            assert adapter["spec"]["dependsOn"] == ["resource:default/tiny-gpt2"]
        assert hub["metadata"]["annotations"]["trellis.dev/adapters"] == ",".join(
            f"resource:default/{a['metadata']['name']}" for a in adapters
        )
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
            "assistants",
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
        lineage = {
            ref: httpx.post(
                f"{base}/api/tech-insights/checks/run/default/resource/{ref}", headers=auth
            ).json()
            for ref in ("tiny-gpt2", "tiny-gpt2-eu-west-1")
        }
        passed = {r["check"]["id"]: r["result"] for rs in lineage.values() for r in rs}
        assert passed["open-model-license-allowed"] is True
        assert passed["adapter-trained-in-data-region"] is True
        assert passed["adapter-champion-gate-passed"] is True

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
