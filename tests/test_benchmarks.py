"""The benchmark scripts still run and report every figure (a small size, not a measurement)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support.timing import scaled

REPO = Path(__file__).resolve().parents[1]


def run_benchmark(script: str, *args: str) -> dict[str, Any]:
    """Run ``benchmarks/<script>`` with ``args``; its stdout is one JSON object."""
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=scaled(600),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report: dict[str, Any] = json.loads(result.stdout)
    return report


# The benchmarks start their services in a child process, out of the markers' check: marked by hand.
@pytest.mark.mlflow
def test_the_catalog_benchmark_runs_end_to_end(tmp_path):
    report = run_benchmark(
        "catalog.py", "--models", "60", "--subset", "10", "--repeat", "1", "--gets", "5",
        "--not-modified-gets", "5", "--cache-dir", str(tmp_path), "--changes", "5",
        "--clients", "3", "--concurrent-gets", "2", "--load-gets", "3", "--rounds", "1",
        "--write-period", "0.3",
    )  # fmt: skip
    assert report["models"] == 60 and report["versions"] == 180
    assert report["served_yaml_matches_in_process_build"] is True
    goals = {"cold_build_ratio", "warm_get_median_ms", "not_modified_median_ms",
             "serve_peak_rss_mb", "one_change_cpu_seconds", "refresh_get_p95_ratio",
             "refresh_get_p99_ratio"}  # fmt: skip
    assert set(report["met"]) == set(report["goals"]) == goals
    for key in ("bare_paging_seconds", "cold_build_seconds", "bare_fastapi_get_median_ms",
                "naive_per_model_loop_seconds", "serve_peak_rss_mb", "one_change_cpu_seconds",
                "refresh_get_p95_ratio", "refresh_get_p99_ratio"):  # fmt: skip
        assert report[key] > 0, key
    incremental = report["incremental"]
    assert incremental["incremental_matches_full_rebuild"] is True
    assert incremental["serialisation"]["entities_rendered_after_one_change"] == 1
    load = report["refresh_load"]
    assert load["concurrent"]["named_refreshes"]["refreshes"] > 0  # the GETs met refreshes
    assert load["models_after_writes"] > 60  # the writer's models were read


def test_the_blueprint_benchmark_runs_end_to_end():
    report = run_benchmark("blueprints.py", "--repeat", "1")
    assert report["files"] > 1
    assert report["new_median_seconds"] > 0 and report["floor_median_seconds"] > 0
    assert report["update_median_seconds"] > 0 and len(report["update_runs"]) == 1
    assert report["update_over_new"] > 0 and report["copier_update_median_seconds"] > 0
    assert set(report["met"]) == set(report["goal"]) == {"new_over_floor"}


@pytest.mark.tools
def test_the_cookiecutter_benchmark_runs_end_to_end():
    report = run_benchmark("cookiecutter.py", "--repeat", "1")
    for key in ("new_median_seconds", "ccds_median_seconds", "cli_new_median_seconds",
                "update_median_seconds", "floor_median_seconds"):  # fmt: skip
        assert report[key] > 0, key
    assert report["update_conflicts"] == [0]  # edits away from the changes merge cleanly
    assert set(report["met"]) == set(report["goal"]) == {"new_over_ccds"}


@pytest.mark.kube_replay
@pytest.mark.prometheus
def test_the_observability_benchmark_runs_end_to_end(tmp_path):
    report = run_benchmark(
        "observability.py", "--servers", "40", "--regions", "2", "--repeat", "1",
        "--page-requests", "2", "--page-regions", "2", "--many-servers", "3",
        "--fleet-servers", "20", "--fleet-repeat", "1", "--fleet-windows", "3600",
        "--cache-dir", str(tmp_path),
    )  # fmt: skip
    servers = report["deployments"]
    assert servers["servers"] == 40 and servers["clusters"] == 2
    assert servers["list_requests_per_read"] == 8  # four list calls per cluster
    for key in ("kubernetes_read_seconds", "bare_client_seconds", "typed_client_seconds",
                "kubernetes_read_over_bare_client"):  # fmt: skip
        assert servers[key] > 0, key
    page = report["page"]
    # vLLM: 17 signals; the three latency and the three TTFT percentiles share a query each.
    assert page["regions"] == 2 and page["queries_per_page"] == 13
    # Requests, errors, latency (mean and percentiles) and queue time from the hub's rules,
    # tokens, queue depth, KV cache and TTFT from llm-service's (or raw).
    assert page["recorded_queries"] == 10
    assert page["prometheus_requests_per_page"] == {"1_server": 13, "3_servers": 13}
    assert page["requests_independent_of_servers"] is True
    for road in (page, page["raw"]):
        for key in ("page_median_ms", "served_page_median_ms", "observer_median_ms",
                    "raw_queries_median_ms", "page_over_raw_queries",
                    "served_page_over_raw_queries"):  # fmt: skip
            assert road[key] > 0, key
    fleet = report["fleet"]["serving_3600s"]
    assert fleet["values_agree_to_1e-9"] is True
    assert {f for f, v in fleet["facts"].items() if not v["same_query"]} == {
        "requestRate", "errorRatio", "latencyP50", "latencyP95", "latencyP99",
    }  # fmt: skip
    assert all(v["rows"] == 20 for v in fleet["facts"].values())


@pytest.mark.postgres
def test_the_fact_store_benchmark_runs_end_to_end():
    report = run_benchmark(
        "fact_store.py", "--entities", "400", "--checks", "3", "--handovers", "1",
        "--interval", "1",
    )  # fmt: skip
    assert report["results"] == 1200
    for key in ("first_write_seconds", "latest_results_median_ms", "latest_facts_median_ms",
                "plain_sqlite_median_ms", "sqlite_first_write_seconds",
                "postgres_first_write_seconds", "postgres_over_sqlite_first_write",
                "handover_max_seconds"):  # fmt: skip
        assert report[key] > 0, key
    assert len(report["handover_seconds"]) == 1
    assert set(report["met"]) == set(report["goals"])
    assert "postgres_over_sqlite_first_write" in report["goals"]


@pytest.mark.mlflow
@pytest.mark.backstage
def test_the_freshness_benchmark_runs_end_to_end():
    """Both roads with short polling, so the run takes seconds instead of minutes."""
    report = run_benchmark(
        "freshness.py", "--samples", "1", "--polling-interval", "2",
        "--processing-interval", "2", "--deadline", str(scaled(60)),
    )  # fmt: skip
    assert report["samples"] == 1
    for road in ("webhooks", "polling"):
        assert report["roads"][road]["missing"] == 0, report
        assert report["roads"][road]["median_seconds"] > 0
    assert set(report["met"]) == set(report["goal"]) == {"webhooks_median_seconds"}
