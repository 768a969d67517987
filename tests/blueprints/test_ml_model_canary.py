"""ml-model's canary: its verdict from a real Prometheus, and the manifest its rollout applies.

The generated ``canary`` script is run as a user runs it, against Prometheus holding backfilled
history of several Knative revisions of a model (MLServer and Triton): a healthy canary is
promoted (0), one with too many errors or too slow is rolled back (1), and one with too few
requests, or no Prometheus at all, cannot be decided (2). Series of the stable revision and
of a same-named pod in another namespace are there to be ignored.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.blueprints import Renders
from support.prometheus import MLSERVER_BUCKETS, PrometheusServer, Samples, prometheus_with
from support.services import free_port
from support.timing import scaled
from support.tools import kubectl

MLSERVER_VARIANT = "sklearn-github-aws"
TRITON_VARIANT = "pytorch-gpu-gitlab-gcp"
SCRAPE = 30.0
HISTORY = 40 * 60.0  # seconds of history; the canary reads its last 10 minutes


@dataclass(frozen=True)
class Revision:
    """One Knative revision's pods as the PodMonitor scrapes them, per 30 s scrape."""

    namespace: str
    name: str
    ok: int  # successful requests per scrape and pod
    failed: int
    seconds: float  # latency of every inference request
    pods: int = 2

    def pod(self, index: int) -> str:
        return f"{self.name}-deployment-7c9f6d{index}b4-x{index}q2z"


def mlserver(samples: Samples, revision: Revision, times: list[float]) -> None:
    for index in range(revision.pods):
        labels = {
            "namespace": revision.namespace,
            "pod": revision.pod(index),
            "container": "kserve-container",
            "inferenceservice": revision.namespace,
            "region": "eu-west-1",
        }
        model = {**labels, "model": revision.namespace, "version": ""}
        infer = {**labels, "path": f"/v2/models/{revision.namespace}/infer", "method": "POST"}
        # Metadata requests are slow and never count as inference latency.
        meta = {**labels, "path": f"/v2/models/{revision.namespace}", "method": "GET"}
        for i, t in enumerate(times, start=1):
            samples.add("model_infer_request_success_total", model, t, float(revision.ok * i))
            samples.add("model_infer_request_failure_total", model, t, float(revision.failed * i))
            count = float((revision.ok + revision.failed) * i)
            for bound in [*MLSERVER_BUCKETS, float("inf")]:
                le = "+Inf" if bound == float("inf") else repr(bound)
                seen = count if revision.seconds <= bound else 0.0
                bucket = "rest_server_request_duration_seconds_bucket"
                samples.add(bucket, {**infer, "le": le}, t, seen)
                samples.add(bucket, {**meta, "le": le}, t, 5.0 * i if bound >= 7.5 else 0.0)


def triton(samples: Samples, revision: Revision, times: list[float]) -> None:
    for index in range(revision.pods):
        labels = {
            "namespace": revision.namespace,
            "pod": revision.pod(index),
            "container": "kserve-container",
            "model": revision.namespace,
            "version": "1",
        }
        for i, t in enumerate(times, start=1):
            samples.add("nv_inference_request_success", labels, t, float(revision.ok * i))
            failed = {**labels, "reason": "BACKEND"}
            samples.add("nv_inference_request_failure", failed, t, float(revision.failed * i))
            for quantile, factor in (("0.5", 0.5), ("0.95", 1.0), ("0.99", 1.3)):
                value = revision.seconds * factor * 1e6
                summary = {**labels, "quantile": quantile}
                samples.add("nv_inference_request_summary_us", summary, t, value)


FRAUD = "fraud-detector"
DEMAND = "demand-forecast"


def rev(namespace: str, number: int) -> str:
    return f"{namespace}-predictor-{number:05d}"


#: (runtime, revision): what the canary script must answer about it.
CASES = {
    "mlserver-healthy": (MLSERVER_VARIANT, Revision(FRAUD, rev(FRAUD, 2), 40, 0, 0.04), 0),
    "mlserver-errors": (MLSERVER_VARIANT, Revision(FRAUD, rev(FRAUD, 3), 40, 2, 0.04), 1),
    "mlserver-slow": (MLSERVER_VARIANT, Revision(FRAUD, rev(FRAUD, 4), 40, 0, 0.9), 1),
    "mlserver-quiet": (MLSERVER_VARIANT, Revision(FRAUD, rev(FRAUD, 5), 0, 0, 0.04), 2),
    "triton-healthy": (TRITON_VARIANT, Revision(DEMAND, rev(DEMAND, 2), 60, 0, 0.02), 0),
    "triton-errors": (TRITON_VARIANT, Revision(DEMAND, rev(DEMAND, 3), 60, 5, 0.02), 1),
    "triton-slow": (TRITON_VARIANT, Revision(DEMAND, rev(DEMAND, 4), 60, 0, 0.8), 1),
}
#: Must never be read for a canary above: the stable revision (failing often), and pods of
#: the healthy canaries' names in another namespace (failing always).
DECOYS = [
    (mlserver, Revision(FRAUD, rev(FRAUD, 1), 40, 40, 3.0)),
    (mlserver, Revision("other", rev(FRAUD, 2), 0, 40, 3.0)),
    (triton, Revision(DEMAND, rev(DEMAND, 1), 60, 60, 3.0)),
    (triton, Revision("other", rev(DEMAND, 2), 0, 60, 3.0)),
]

pytestmark = pytest.mark.prometheus


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PrometheusServer, float]]:
    """One Prometheus with every revision's history; and the end of that history."""
    end = float(int(time.time()) // 60 * 60 - 120)
    times = [end - HISTORY + 7 + SCRAPE * i for i in range(int(HISTORY // SCRAPE))]
    samples = Samples()
    for variant, revision, _ in CASES.values():
        (mlserver if variant == MLSERVER_VARIANT else triton)(samples, revision, times)
    for write, revision in DECOYS:
        write(samples, revision, times)
    with prometheus_with(samples, tmp_path_factory.mktemp("canary") / "data") as server:
        yield server, end


def run_canary(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The generated `canary` script, run with this interpreter (it has its dependencies)."""
    package = yaml.safe_load((repo / ".copier-answers.yml").read_text())["project_slug"]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(repo / "src"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", f"{package.replace('-', '_')}.canary", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=scaled(120),
        check=False,
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_canary_is_promoted_only_when_its_own_requests_are_healthy(
    case: str, history: tuple[PrometheusServer, float], renders: Renders
) -> None:
    variant, revision, expected = CASES[case]
    server, end = history
    _, _, repo = renders.get("ml-model", variant)
    result = run_canary(
        repo,
        "--prometheus", server.url,
        "--namespace", revision.namespace,
        "--revision", revision.name,
        "--at", str(end),
    )  # fmt: skip
    verdict = result.stdout + result.stderr
    assert result.returncode == expected, verdict
    word = {0: "promote:", 1: "roll back:", 2: "cannot decide:"}[expected]
    assert verdict.startswith(word), verdict
    if expected == 0:
        # Exactly the canary's own requests in the 10-minute window: its pods, no others.
        per_window = revision.ok * revision.pods * 20
        assert f"{per_window} requests, error ratio 0.00%" in verdict, verdict


def test_stricter_limits_roll_back_what_the_defaults_promote(
    history: tuple[PrometheusServer, float], renders: Renders
) -> None:
    server, end = history
    _, _, repo = renders.get("ml-model", MLSERVER_VARIANT)
    common = ["--prometheus", server.url, "--namespace", FRAUD, "--at", str(end)]
    slow = run_canary(repo, *common, "--revision", rev(FRAUD, 4), "--max-p95-latency", "2")
    assert slow.returncode == 0, slow.stderr
    errors = run_canary(repo, *common, "--revision", rev(FRAUD, 3), "--max-error-ratio", "0.1")
    assert errors.returncode == 0, errors.stderr
    quiet = run_canary(repo, *common, "--revision", rev(FRAUD, 2), "--min-requests", "1e6")
    assert quiet.returncode == 2, quiet.stderr


def test_without_prometheus_the_canary_cannot_be_decided(renders: Renders) -> None:
    _, _, repo = renders.get("ml-model", MLSERVER_VARIANT)
    url = f"http://canary:s3cr3t@127.0.0.1:{free_port()}"
    result = run_canary(repo, "--prometheus", url, "--namespace", FRAUD, "--revision", "r-1")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "did not answer" in result.stderr
    assert "s3cr3t" not in result.stdout + result.stderr, "the password reached the log"


class NotAVector(BaseHTTPRequestHandler):
    """A Prometheus look-alike that answers every query with a range vector's shape."""

    def do_GET(self) -> None:
        body = json.dumps(
            {"status": "success", "data": {"resultType": "matrix", "result": [{"values": []}]}}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        """Quiet."""


def test_an_answer_that_is_no_instant_vector_leaves_the_canary_undecided(
    renders: Renders,
) -> None:
    _, _, repo = renders.get("ml-model", MLSERVER_VARIANT)
    server = ThreadingHTTPServer(("127.0.0.1", 0), NotAVector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = run_canary(repo, "--prometheus", url, "--namespace", FRAUD, "--revision", "r-1")
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 2, result.stdout + result.stderr
    assert "answered no instant vector" in result.stderr
    assert "Traceback" not in result.stderr


# --- the manifest the rollout applies ------------------------------------------------------


def kustomize(overlay: Path) -> str:
    return subprocess.run(
        [kubectl(), "kustomize", str(overlay)],
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=True,
    ).stdout


def rollout_manifest(repo: Path, built: str, *args: str) -> list[dict[str, Any]]:
    """`kubectl kustomize <overlay> | rollout manifest ...`, as the rollout builds it."""
    package = yaml.safe_load((repo / ".copier-answers.yml").read_text())["project_slug"]
    edited = subprocess.run(
        [sys.executable, "-m", f"{package.replace('-', '_')}.rollout", "manifest", *args],
        input=built,
        cwd=repo,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(repo / "src")},
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=False,
    )
    assert edited.returncode == 0, edited.stderr
    return [d for d in yaml.safe_load_all(edited.stdout) if d]


@pytest.mark.tools
def test_every_overlay_gets_the_version_as_a_canary_and_keeps_everything_else(
    variant: tuple[str, dict[str, Any], Path],
) -> None:
    _, answers, repo = variant
    overlays = sorted(p.parent for p in (repo / "deploy" / "overlays").glob("*/kustomization.yaml"))
    assert {o.name for o in overlays} >= {answers["hub_region"], *answers["edge_regions"]}
    percent = answers.get("canary_traffic_percent", 10)
    for overlay in overlays:
        built = kustomize(overlay)
        before = [d for d in yaml.safe_load_all(built) if d]
        service = next(d for d in before if d["kind"] == "InferenceService")
        root = service["spec"]["predictor"]["model"]["storageUri"]
        after = rollout_manifest(
            repo, built, "--storage-uri", f"{root}/7", "--canary-percent", str(percent)
        )
        assert [(d["kind"], d["metadata"]["name"]) for d in after] == [
            (d["kind"], d["metadata"]["name"]) for d in before
        ], overlay.name
        edited = next(d for d in after if d["kind"] == "InferenceService")
        predictor = edited["spec"]["predictor"]
        assert predictor["model"]["storageUri"] == f"{root}/7"
        assert predictor["canaryTrafficPercent"] == percent
        assert edited["metadata"]["annotations"]["serving.kserve.io/enable-tag-routing"] == "true"
        kept = {k: v for k, v in predictor.items() if k not in {"model", "canaryTrafficPercent"}}
        assert kept == {k: v for k, v in service["spec"]["predictor"].items() if k != "model"}
        assert edited["metadata"]["namespace"] == service["metadata"]["namespace"]


def test_the_podmonitor_keeps_the_labels_the_canary_is_selected_by(
    variant: tuple[str, dict[str, Any], Path],
) -> None:
    """`canary` selects a revision's series by Kubernetes' `namespace` and `pod` labels, which
    the Prometheus Operator puts on every target: the PodMonitor must not drop or rewrite them."""
    _, _, repo = variant
    monitor = yaml.safe_load((repo / "deploy" / "base" / "podmonitor.yaml").read_text())
    for endpoint in monitor["spec"]["podMetricsEndpoints"]:
        for rule in [*endpoint.get("relabelings", []), *endpoint.get("metricRelabelings", [])]:
            assert rule.get("targetLabel") not in {"pod", "namespace"}, rule
            for label in ("pod", "namespace"):
                matched = re.fullmatch(rule.get("regex", "(.*)"), label) is not None
                assert not (rule.get("action") == "labeldrop" and matched), rule
                assert not (rule.get("action") == "labelkeep" and not matched), rule


def test_gitlab_runs_the_rollout_with_the_deploy_extra_it_declares(
    renders: Renders,
) -> None:
    """GitLab runs `rollout` beside the cloud CLI with only its own requirements (uv
    `--with`): they must be the `deploy` extra plus PyYAML, as pyproject.toml declares them."""
    _, _, repo = renders.get("ml-model", TRITON_VARIANT)
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    wanted = {
        *project["optional-dependencies"]["deploy"],
        *(r for r in project["dependencies"] if r.lower().startswith("pyyaml")),
    }
    config = yaml.safe_load((repo / ".gitlab-ci.yml").read_text())
    script = "\n".join(config[".rollout"]["script"])
    assert set(re.findall(r'--with "([^"]+)"', script)) == wanted
    assert "rollout deploy" in script
