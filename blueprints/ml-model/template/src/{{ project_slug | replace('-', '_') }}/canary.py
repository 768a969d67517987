"""Judge a canary from Prometheus: promote it, roll it back, or say it cannot be judged yet.

Run it as `canary --prometheus URL --namespace NS --revision REV` (a console script; needs
the `deploy` extra: `pip install -e '.[deploy]'`). It reads the requests that the pods of one
Knative revision (the canary KServe created for the new version) answered in the last
`--window`: the share that failed and the 95th percentile latency of inference requests.

Exit status: 0 promote (enough requests, both within their limits), 1 roll back (a limit is
exceeded), 2 cannot decide (too few requests, no data, or Prometheus unreachable): send more
traffic or wait, then run it again.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from . import project
from .registry import without_credentials

PROMOTE, ROLL_BACK, UNDECIDED = 0, 1, 2
#: Kubernetes names (RFC 1123 labels): safe to place inside a PromQL string as they are.
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DURATION = re.compile(r"^[0-9]+[smhd]$")


@dataclass(frozen=True)
class Thresholds:
    """When a canary may be promoted."""

    max_error_ratio: float = 0.01
    max_p95_seconds: float = 0.5
    min_requests: float = 50

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Thresholds:
        """The limits given on the command line (`add_threshold_options`)."""
        return cls(args.max_error_ratio, args.max_p95_latency, args.min_requests)


@dataclass(frozen=True)
class Observation:
    """What the canary's pods did during the window (None: Prometheus has no such data)."""

    requests: float = 0.0
    errors: float = 0.0
    p95_seconds: float | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Verdict:
    """The exit status to give (PROMOTE, ROLL_BACK or UNDECIDED) and why."""

    code: int
    reasons: list[str] = field(default_factory=list)

    def explain(self) -> str:
        """One line for the job's log."""
        word = {PROMOTE: "promote", ROLL_BACK: "roll back", UNDECIDED: "cannot decide"}
        return f"{word[self.code]}: " + "; ".join(self.reasons)


def queries(namespace: str, revision: str, window: str) -> dict[str, str]:
    """PromQL for the requests, errors and p95 latency of one revision's pods.

    Knative names a revision's pods `<revision>-deployment-<hash>-<hash>`; the PodMonitor
    keeps Kubernetes' `namespace` and `pod` labels on every series it scrapes.
    """
    for value, what in ((namespace, "namespace"), (revision, "revision")):
        if not NAME.match(value):
            raise ValueError(f"{value!r} is not a Kubernetes {what} name")
    if not DURATION.match(window):
        raise ValueError(f"{window!r} is not a duration such as 10m")
    pods = f'namespace="{namespace}", pod=~"{revision}-deployment-.+"'
    if project.SERVING_RUNTIME == "triton":
        ok, failed = "nv_inference_request_success", "nv_inference_request_failure"
        # Triton's summary holds the p95 of its last minute: take the worst in the window.
        p95 = (
            f'max(max_over_time(nv_inference_request_summary_us{{{pods}, quantile="0.95"}}'
            f"[{window}])) / 1e6"
        )
    else:
        ok, failed = "model_infer_request_success_total", "model_infer_request_failure_total"
        p95 = (
            "histogram_quantile(0.95, sum by (le) (rate("
            f'rest_server_request_duration_seconds_bucket{{{pods}, path=~".*/infer"}}'
            f"[{window}])))"
        )
    return {
        "ok": f"sum(increase({ok}{{{pods}}}[{window}]))",
        "failed": f"sum(increase({failed}{{{pods}}}[{window}]))",
        "p95": p95,
    }


def observe(
    url: str | None, namespace: str, revision: str, window: str, at: str | None = None
) -> Observation:
    """Ask the Prometheus at `url` about the revision's last `window` (ending at `at`)."""
    if not url:
        return Observation(problem="no Prometheus URL given (--prometheus or $PROMETHEUS_URL)")
    from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
    from requests import RequestException

    params = {"time": at} if at else None
    values: dict[str, float | None] = {}
    shown = without_credentials(url)  # a user:password@ in the URL stays out of the job's log
    promql_of = queries(namespace, revision, window)
    try:
        with PrometheusConnect(url=url, timeout=30) as prometheus:
            for key, promql in promql_of.items():
                rows = prometheus.custom_query(promql, params=params)
                values[key] = float(rows[0]["value"][1]) if rows else None
    except (PrometheusApiClientException, RequestException) as exc:
        return Observation(problem=f"Prometheus at {shown} did not answer: {exc}")
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        return Observation(problem=f"Prometheus at {shown} answered no instant vector ({exc!r})")
    ok, failed, p95 = values["ok"] or 0.0, values["failed"] or 0.0, values["p95"]
    if p95 is not None and p95 != p95:  # NaN: no inference request in the window
        p95 = None
    return Observation(requests=ok + failed, errors=failed, p95_seconds=p95)


def judge(limits: Thresholds, seen: Observation) -> Verdict:
    """Promote, roll back or wait, with the reasons."""
    if seen.problem:
        return Verdict(UNDECIDED, [seen.problem])
    if seen.requests < limits.min_requests:
        return Verdict(
            UNDECIDED,
            [f"{seen.requests:.0f} requests, fewer than the {limits.min_requests:.0f} needed"],
        )
    ratio = seen.errors / seen.requests
    failed = []
    if ratio > limits.max_error_ratio:
        failed.append(f"error ratio {ratio:.2%} above {limits.max_error_ratio:.2%}")
    if seen.p95_seconds is not None and seen.p95_seconds > limits.max_p95_seconds:
        failed.append(f"p95 latency {seen.p95_seconds:.3f} s above {limits.max_p95_seconds} s")
    if failed:
        return Verdict(ROLL_BACK, failed)
    if seen.p95_seconds is None:
        return Verdict(UNDECIDED, ["no latency data for the canary's inference requests"])
    return Verdict(
        PROMOTE,
        [
            f"{seen.requests:.0f} requests, error ratio {ratio:.2%}, "
            f"p95 latency {seen.p95_seconds:.3f} s: within the limits"
        ],
    )


def add_threshold_options(parser: argparse.ArgumentParser) -> None:
    """The window and limits, shared with `rollout deploy`."""
    defaults = Thresholds()
    parser.add_argument("--window", default="10m", help="how far back to look (default: 10m)")
    parser.add_argument(
        "--max-error-ratio",
        type=float,
        default=defaults.max_error_ratio,
        help="highest share of failed requests (default: %(default)s)",
    )
    parser.add_argument(
        "--max-p95-latency",
        type=float,
        default=defaults.max_p95_seconds,
        help="highest 95th percentile latency in seconds (default: %(default)s)",
    )
    parser.add_argument(
        "--min-requests",
        type=float,
        default=defaults.min_requests,
        help="fewest requests to judge by (default: %(default)s)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--prometheus",
        default=os.environ.get("PROMETHEUS_URL"),
        help="Prometheus that scrapes the canary (default: $PROMETHEUS_URL)",
    )
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--revision", required=True, help="the canary's Knative revision")
    parser.add_argument("--at", help="judge the window ending then (RFC 3339 or Unix time)")
    add_threshold_options(parser)
    args = parser.parse_args(argv)
    try:
        seen = observe(args.prometheus, args.namespace, args.revision, args.window, args.at)
    except ValueError as exc:
        parser.error(str(exc))
    verdict = judge(Thresholds.from_args(args), seen)
    print(verdict.explain(), file=sys.stdout if verdict.code == PROMOTE else sys.stderr)
    return verdict.code


if __name__ == "__main__":
    sys.exit(main())
