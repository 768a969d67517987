"""The ml-model blueprint's serving alerts and dashboard, checked by Prometheus's own tools.

``promtool check rules`` parses every alert and every dashboard panel; ``promtool test rules``
evaluates the alerts over synthetic series: one history where each alert fires (and a GPU of a
training pod that must not count), one healthy history where none does.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.prometheus import binaries
from support.timing import scaled

pytestmark = pytest.mark.prometheus

Variant = tuple[str, dict[str, Any], Path]

SLO_ALERTS = ("ModelLatencyP95High", "ModelErrorRateHigh", "ModelServerDown")
GPU_ALERTS = ("ModelGPUIdle", "ModelGPUSaturated", "ModelGPUMemoryHigh", "ModelGPUXidError")

#: A metric name where PromQL selects it: ``name{...}``.
SELECTED = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{")


def base(variant: Variant, name: str) -> dict[str, Any]:
    return yaml.safe_load((variant[2] / "deploy" / "base" / f"{name}.yaml").read_text())


def slug(variant: Variant) -> str:
    return re.sub(r"[^a-z0-9]+", "-", variant[1]["project_name"].lower()).strip("-")


def promtool(*args: str, stdin: str | None = None, cwd: Path | None = None) -> str:
    """Run promtool; its output, or the test fails with it."""
    _, tool = binaries()
    result = subprocess.run(
        [tool, *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        timeout=scaled(60),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def panel_queries(variant: Variant) -> dict[str, str]:
    """Panel title → its PromQL, with the dashboard's variables set as Grafana would."""
    dashboard = json.loads(base(variant, "grafanadashboard")["spec"]["json"])
    values = {"$namespace": slug(variant), "$region": ".*"}
    queries = {}
    for panel in dashboard["panels"]:
        (target,) = panel["targets"]
        expr = target["expr"]
        for variable, value in values.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"{panel['title']}: unknown variable in {expr}"
        queries[panel["title"]] = expr
    return queries


def alert_rules(variant: Variant) -> list[dict[str, Any]]:
    return [r for g in base(variant, "prometheusrule")["spec"]["groups"] for r in g["rules"]]


def test_dashboard_panels_parse_and_query_what_the_alerts_read(variant: Variant) -> None:
    queries = panel_queries(variant)
    rules = [{"record": f"panel:{i}", "expr": e} for i, e in enumerate(queries.values())]
    checked = promtool("check", "rules", "/dev/stdin", stdin=json.dumps({"groups": [
        {"name": "dashboard", "rules": rules}]}))  # fmt: skip
    assert f"SUCCESS: {len(rules)} rules found" in checked
    alerts = alert_rules(variant)
    alert_metrics = {m for rule in alerts for m in SELECTED.findall(rule["expr"])}
    panel_metrics = {title: set(SELECTED.findall(expr)) for title, expr in queries.items()}
    assert all(panel_metrics.values()), panel_metrics
    assert set().union(*panel_metrics.values()) == alert_metrics
    # The dashboard has the alerts' thresholds in its titles and a GPU row only with GPUs.
    gpu = [title for title in queries if "GPU" in title]
    assert len(gpu) == (3 if variant[1]["use_gpu"] else 0), list(queries)
    dashboard = base(variant, "grafanadashboard")
    assert dashboard["spec"]["instanceSelector"]["matchLabels"]
    assert dashboard["metadata"]["namespace"] == slug(variant)


def series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    text = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{text}}}", "values": values}


def history(variant: Variant, healthy: bool, gpu_util: float) -> list[dict[str, str]]:
    """90 minutes of a production server's series, 1 minute apart."""
    answers, name = variant[1], slug(variant)
    server = {"namespace": name, "inferenceservice": name, "region": answers["hub_region"]}
    pod = f"{name}-predictor-00001-deployment-5d8f7c9b6-x2x4q"
    triton = answers.get("serving_runtime") == "triton"
    ok, failed = (
        ("nv_inference_request_success", "nv_inference_request_failure")
        if triton
        else ("model_infer_request_success_total", "model_infer_request_failure_total")
    )
    found = [
        series(ok, server, "0+100x90"),
        series(failed, server, "0x90" if healthy else "0+10x90"),
        series("up", {**server, "pod": pod}, "1x90" if healthy else "0x90"),
    ]
    if triton:
        p95_us = 100_000 if healthy else 800_000
        found.append(
            series(
                "nv_inference_request_summary_us", {**server, "quantile": "0.95"}, f"{p95_us}x90"
            )
        )
    else:
        infer = {**server, "path": f"/v2/models/{name}/infer"}
        # Healthy: every request under 0.25 s; else every one between 0.25 s and 1 s.
        found += [
            series("rest_server_request_duration_seconds_bucket", {**infer, "le": "0.25"},
                   "0+100x90" if healthy else "0x90"),
            series("rest_server_request_duration_seconds_bucket", {**infer, "le": "1.0"},
                   "0+100x90"),
            series("rest_server_request_duration_seconds_bucket", {**infer, "le": "+Inf"},
                   "0+100x90"),
        ]  # fmt: skip
    if answers["use_gpu"]:
        gpu = {"namespace": name, "pod": pod, "gpu": "0", "Hostname": "gpu-node-1"}
        training = {**gpu, "pod": f"{name}-train-8xk2p", "Hostname": "gpu-node-2"}
        mig = answers.get("gpu_sharing") == "mig"
        util, scale = (
            ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", 0.01) if mig else ("DCGM_FI_DEV_GPU_UTIL", 1)
        )
        found += [
            series(util, gpu, f"{gpu_util * scale}x90"),
            # A training pod's GPU at the other extreme: never part of the serving alerts.
            series(util, training, f"{(100 - gpu_util) * scale}x90"),
            series("DCGM_FI_DEV_FB_USED", gpu, "4000x90" if healthy else "9500x90"),
            series("DCGM_FI_DEV_FB_FREE", gpu, "6000x90" if healthy else "500x90"),
            series("DCGM_FI_DEV_XID_ERRORS", gpu, "0x90" if healthy else "79x90"),
        ]
    return found


def expected(variant: Variant, firing: set[str]) -> list[dict[str, Any]]:
    """What each alert should give after 80 minutes: the alerts in ``firing`` fire."""
    answers, name = variant[1], slug(variant)
    pod = f"{name}-predictor-00001-deployment-5d8f7c9b6-x2x4q"
    own = {"inferenceservice": name}
    labels = {
        "ModelLatencyP95High": {"region": answers["hub_region"], "severity": "warning"},
        "ModelErrorRateHigh": {"region": answers["hub_region"], "severity": "critical"},
        "ModelServerDown": {"severity": "critical"},
        "ModelGPUIdle": {"namespace": name, "severity": "warning"},
        "ModelGPUSaturated": {"namespace": name, "severity": "warning"},
        "ModelGPUMemoryHigh": {"namespace": name, "pod": pod, "gpu": "0", "severity": "warning"},
        "ModelGPUXidError": {"namespace": name, "pod": pod, "gpu": "0",
                             "Hostname": "gpu-node-1", "severity": "critical"},
    }  # fmt: skip
    alerts = SLO_ALERTS + (GPU_ALERTS if answers["use_gpu"] else ())
    return [
        {
            "eval_time": "80m",
            "alertname": alert,
            "exp_alerts": [{"exp_labels": {**labels[alert], **own}}] if alert in firing else [],
        }
        for alert in alerts
    ]


def test_alerts_parse_and_fire_on_synthetic_series(variant: Variant, tmp_path: Path) -> None:
    rule = base(variant, "prometheusrule")
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(rule["spec"]))
    assert "SUCCESS" in promtool("check", "rules", str(rules))  # annotations' templates too
    names = {r["alert"] for r in alert_rules(variant)}
    gpu = variant[1]["use_gpu"]
    assert names == set(SLO_ALERTS + (GPU_ALERTS if gpu else ())), names

    # promtool compares annotations as well: the unit tests leave them out.
    for group in rule["spec"]["groups"]:
        for r in group["rules"]:
            r.pop("annotations", None)
    rules.write_text(yaml.safe_dump(rule["spec"]))
    broken = set(SLO_ALERTS) | (
        {"ModelGPUIdle", "ModelGPUMemoryHigh", "ModelGPUXidError"} if gpu else set()
    )
    cases = [
        (history(variant, healthy=True, gpu_util=50), set()),
        (history(variant, healthy=False, gpu_util=5), broken),
    ]
    if gpu:
        cases.append((history(variant, healthy=True, gpu_util=95), {"ModelGPUSaturated"}))
    tests = {
        "rule_files": [rules.name],
        "evaluation_interval": "1m",
        "tests": [
            {"interval": "1m", "input_series": found, "alert_rule_test": expected(variant, firing)}
            for found, firing in cases
        ],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    assert "SUCCESS" in promtool("test", "rules", "tests.yaml", cwd=tmp_path)
