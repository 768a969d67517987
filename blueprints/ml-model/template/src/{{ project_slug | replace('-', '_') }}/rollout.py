"""Roll a published model version out to one overlay: a canary first, then all the traffic.

Run it as `rollout deploy --overlay deploy/overlays/<region> --storage-uri <root>/<N>` (a
console script; `publish` prints the URI) with kubectl pointed at the overlay's cluster:

1. `kubectl kustomize` the overlay and set the InferenceService's `storageUri` to version N,
   with `canaryTrafficPercent` when an earlier version is serving (KServe then sends that
   share to the new revision and the rest to the previous one), then `kubectl apply` it.
2. Wait until the new revision is ready and send it one inference request (`smoke`).
3. Watch the canary for `--observe` seconds and ask Prometheus (`canary`): promote it (all
   traffic) or roll back (`canaryTrafficPercent: 0`: every request back to the previous
   revision at once). The exit status is 0 once version N serves everything, 1 otherwise.

`rollout manifest` is step 1's edit alone (stdin to stdout), and `rollout smoke --url` step
2's request, for use by hand. The module needs only PyYAML and, for the verdict,
prometheus-api-client (the `deploy` extra), so CI can run it without the training stack.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from . import canary, project

TAG_ROUTING = "serving.kserve.io/enable-tag-routing"
#: What a rollout applies: not the training Job (the pipeline runs it), nor the Namespace,
#: which a cluster admin creates once (CI may change things only inside the namespace).
APPLIED = "app.kubernetes.io/component notin (training,namespace)"
#: Rows of the bundled sample sent by the smoke test.
SMOKE_ROWS = 2


# --- the manifest --------------------------------------------------------------------------


def set_version(
    documents: list[dict[str, Any]], storage_uri: str, canary_percent: int | None
) -> dict[str, Any]:
    """Point the InferenceService at `storage_uri`, as a canary when `canary_percent` is set.

    Returns the InferenceService (edited in place).
    """
    services = [d for d in documents if d and d.get("kind") == "InferenceService"]
    if len(services) != 1:
        raise ValueError(f"expected one InferenceService, found {len(services)}")
    service = services[0]
    predictor = service["spec"]["predictor"]
    predictor.setdefault("model", {})["storageUri"] = storage_uri
    if canary_percent is None:
        predictor.pop("canaryTrafficPercent", None)
    else:
        if not 0 <= canary_percent <= 100:
            raise ValueError(f"a canary share is 0 to 100 percent, not {canary_percent}")
        predictor["canaryTrafficPercent"] = canary_percent
        # Tag routing gives the new revision its own `latest-` URL next to `prev-`.
        annotations = service["metadata"].setdefault("annotations", {})
        annotations[TAG_ROUTING] = "true"
    return service


def render(overlay: Path, storage_uri: str, canary_percent: int | None) -> tuple[str, dict]:
    """The overlay as kubectl would apply it, pointed at the version; and its service."""
    built = _kubectl("kustomize", str(overlay))
    documents = [d for d in yaml.safe_load_all(built) if d]
    service = set_version(documents, storage_uri, canary_percent)
    return yaml.safe_dump_all(documents, sort_keys=False), service


# --- the smoke test ------------------------------------------------------------------------


def smoke_request(rows: int = SMOKE_ROWS) -> dict[str, Any]:
    """An Open Inference Protocol (v2) request with the first rows of the bundled sample."""
    with resources.files(__package__).joinpath("sample_data/sample.csv").open("r") as handle:
        sample = list(csv.DictReader(handle))[:rows]
    columns = [name for name in sample[0] if name != "target"]
    values = [[float(row[name]) for name in columns] for row in sample]
    if project.SERVING_RUNTIME == "triton" or project.FRAMEWORK == "pytorch":
        # One float32 tensor (the ONNX export's `input`, or MLflow's tensor signature).
        name = "input" if project.SERVING_RUNTIME == "triton" else "input-0"
        tensor = {
            "name": name,
            "shape": [len(values), len(columns)],
            "datatype": "FP32",
            "data": [value for row in values for value in row],
        }
        request: dict[str, Any] = {"inputs": [tensor]}
        if project.SERVING_RUNTIME != "triton":
            request["parameters"] = {"content_type": "np"}
        return request
    # MLServer decodes one input per column into the DataFrame the MLflow signature names.
    inputs = [
        {"name": name, "shape": [len(values)], "datatype": "FP64", "data": [r[i] for r in values]}
        for i, name in enumerate(columns)
    ]
    return {"parameters": {"content_type": "pd"}, "inputs": inputs}


def smoke(url: str, *, timeout: float = 300, interval: float = 5) -> str | None:
    """Send one inference request to `url`; None when it is answered, else what went wrong.

    A cold server (connection refused, 502-504) is retried every `interval` seconds until
    `timeout` seconds passed; a wrong answer is not.
    """
    body = smoke_request()
    rows = body["inputs"][0]["shape"][0]
    endpoint = f"{url.rstrip('/')}/v2/models/{project.MODEL_NAME}/infer"
    deadline = time.monotonic() + timeout
    while True:
        problem, retry = _infer(endpoint, body, rows)
        if problem is None or not retry or time.monotonic() >= deadline:
            return problem
        time.sleep(interval)


def _infer(endpoint: str, body: dict[str, Any], rows: int) -> tuple[str | None, bool]:
    """One request: (problem or None, whether to retry)."""
    data = json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - the URL is the model server's, http(s)
        endpoint, data=data, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            answer = json.load(response)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:500]
        return f"{endpoint} answered HTTP {exc.code}: {detail}", exc.code in {502, 503, 504}
    except (OSError, ValueError) as exc:
        return f"{endpoint} did not answer: {exc}", True
    outputs = answer.get("outputs") or []
    if not outputs or len(outputs[0].get("data") or []) < rows:
        return f"{endpoint} answered without {rows} predictions: {str(answer)[:500]}", False
    return None, False


# --- the rollout ---------------------------------------------------------------------------


def _kubectl(*args: str, stdin: str | None = None) -> str:
    """The output of `kubectl ARGS`; a failure raises RuntimeError with its message."""
    result = subprocess.run(  # noqa: S603 - arguments are passed, never through a shell
        ["kubectl", *args],  # noqa: S607 - kubectl from PATH, as the CI installs it
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args[:2])} failed: {result.stderr.strip()}")
    return result.stdout


def _patch(name: str, namespace: str, kind: str, patch: str) -> None:
    """`kubectl patch` the InferenceService with a patch of `kind` (json or merge)."""
    _kubectl("patch", "inferenceservice", name, "--namespace", namespace, "--type", kind,
             "--patch", patch)  # fmt: skip


def _service(name: str, namespace: str) -> dict[str, Any] | None:
    text = _kubectl(
        "get",
        "inferenceservice",
        name,
        "--namespace",
        namespace,
        "--output",
        "json",
        "--ignore-not-found",
    )
    return json.loads(text) if text.strip() else None


def _predictor_status(service: dict[str, Any] | None) -> dict[str, Any]:
    return ((service or {}).get("status") or {}).get("components", {}).get("predictor") or {}


def wait_for_revision(name: str, namespace: str, before: str | None, timeout: float) -> str:
    """Wait until a revision other than `before` is created and ready; return its name."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = _predictor_status(_service(name, namespace))
        created = status.get("latestCreatedRevision")
        if created and created != before and status.get("latestReadyRevision") == created:
            return created
        time.sleep(10)
    raise TimeoutError(f"no new revision of {name} became ready in {timeout:.0f} s")


@contextmanager
def port_forward(namespace: str, revision: str) -> Iterator[str]:
    """A local URL to the model server in one pod of `revision`."""
    pods = _kubectl(
        "get",
        "pods",
        "--namespace",
        namespace,
        "--selector",
        f"serving.knative.dev/revision={revision}",
        "--output",
        "name",
    ).split()
    if not pods:
        raise RuntimeError(f"revision {revision} has no pod to test")
    process = subprocess.Popen(  # noqa: S603 - arguments are passed, never through a shell
        ["kubectl", "port-forward", "--namespace", namespace, pods[0], ":8080"],  # noqa: S607
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline() if process.stdout else ""
        match = re.search(r"127\.0\.0\.1:(\d+)", line)
        if not match:
            raise RuntimeError(f"kubectl port-forward failed: {line}")
        yield f"http://127.0.0.1:{match.group(1)}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def deploy(args: argparse.Namespace) -> int:
    """Steps 1-3 of the module's docstring; the exit status."""
    _, service = render(args.overlay, args.storage_uri, None)
    name, namespace = service["metadata"]["name"], service["metadata"]["namespace"]
    current = _service(name, namespace) or {}
    predictor = current.get("spec", {}).get("predictor", {})
    previous_uri = predictor.get("model", {}).get("storageUri")
    # A new model version goes to a canary first; so does one a roll-back left at 0 %. A
    # change of the manifests alone (same version) rolls out at once, smoke-tested.
    retried = previous_uri == args.storage_uri and "canaryTrafficPercent" in predictor
    use_canary = bool(previous_uri) and (previous_uri != args.storage_uri or retried)
    percent = args.canary_percent if use_canary and not args.no_canary else None
    manifests, _ = render(args.overlay, args.storage_uri, percent)
    before = _predictor_status(current).get("latestCreatedRevision")
    _kubectl("apply", "--selector", APPLIED, "--filename", "-", stdin=manifests)
    generation = (_service(name, namespace) or {}).get("metadata", {}).get("generation")
    if current and generation == current.get("metadata", {}).get("generation"):
        print(f"{name} in {namespace} already serves {args.storage_uri} as applied")
        return 0
    share = f"{percent} % of the traffic" if percent is not None else "all the traffic"
    print(f"{name} in {namespace}: {args.storage_uri} applied with {share}")
    try:
        revision = wait_for_revision(name, namespace, before, args.ready_timeout)
        with port_forward(namespace, revision) as url:
            problem = smoke(url, timeout=args.ready_timeout)
    except (RuntimeError, TimeoutError) as exc:
        problem = str(exc)
        revision = None
    if problem is None and percent is not None:
        print(f"{revision} answered; watching it for {args.observe:.0f} s")
        time.sleep(args.observe)
        verdict = canary.judge(
            canary.Thresholds.from_args(args),
            canary.observe(args.prometheus, namespace, str(revision), args.window),
        )
        print(verdict.explain())
        if verdict.code == canary.PROMOTE:
            remove = '[{"op": "remove", "path": "/spec/predictor/canaryTrafficPercent"}]'
            _patch(name, namespace, "json", remove)
            print(f"{name} in {namespace}: {args.storage_uri} now serves all the traffic")
            return 0
        problem = "the canary was not promoted"
    elif problem is None:
        print(f"{name} in {namespace}: {args.storage_uri} answered and serves all the traffic")
        return 0
    print(f"{name} in {namespace}: {problem}", file=sys.stderr)
    if percent is not None:
        _patch(name, namespace, "merge", '{"spec": {"predictor": {"canaryTrafficPercent": 0}}}')
        print(
            "Rolled back: every request goes to the previous revision. "
            "Move the champion back with `promote`, or fix and publish a new version.",
            file=sys.stderr,
        )
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("deploy", help="apply, smoke-test, then promote or roll back")
    run.add_argument("--overlay", type=Path, required=True, help="deploy/overlays/<name>")
    run.add_argument("--storage-uri", required=True, help="the version to serve (<root>/<N>)")
    run.add_argument(
        "--canary-percent",
        type=int,
        default=int(os.environ.get("CANARY_TRAFFIC_PERCENT", "10")),
        help="share of traffic the new version gets first (default: %(default)s)",
    )
    run.add_argument("--no-canary", action="store_true", help="all traffic at once (staging)")
    run.add_argument(
        "--observe", type=float, default=600, help="seconds the canary serves before judging"
    )
    run.add_argument(
        "--ready-timeout", type=float, default=900, help="seconds to wait for the new revision"
    )
    run.add_argument(
        "--prometheus",
        default=os.environ.get("PROMETHEUS_URL"),
        help="Prometheus that scrapes the region (default: $PROMETHEUS_URL)",
    )
    canary.add_threshold_options(run)

    edit = commands.add_parser("manifest", help="set the version on manifests (stdin to stdout)")
    edit.add_argument("--storage-uri", required=True)
    edit.add_argument("--canary-percent", type=int)

    probe = commands.add_parser("smoke", help="send one inference request to a model server")
    probe.add_argument("--url", required=True, help="the server's base URL")
    probe.add_argument("--timeout", type=float, default=300)

    args = parser.parse_args(argv)
    if args.command == "manifest":
        documents = [d for d in yaml.safe_load_all(sys.stdin) if d]
        set_version(documents, args.storage_uri, args.canary_percent)
        yaml.safe_dump_all(documents, sys.stdout, sort_keys=False)
        return 0
    if args.command == "smoke":
        problem = smoke(args.url, timeout=args.timeout)
        print(problem or f"{args.url} answered", file=sys.stderr if problem else sys.stdout)
        return 1 if problem else 0
    # Without Prometheus a canary cannot be judged, and is rolled back (`canary` says why).
    return deploy(args)


if __name__ == "__main__":
    sys.exit(main())
