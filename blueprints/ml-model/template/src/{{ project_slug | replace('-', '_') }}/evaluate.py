"""Score the `candidate` against the `champion` on the hold-out data; promote it if it passes.

Run it as `evaluate [--params params.yaml]` (a console script) or with `python -m` on this
module. The candidate becomes the champion only when it meets every threshold in the `gate`
section of `params.yaml` (`min_<metric>` / `max_<metric>`) and beats the current champion's
primary metric by at least `gate.min_improvement`. Exit status: 0 promoted (or already the
champion), 1 refused by the gate, 2 nothing to evaluate or bad input (`MLFLOW_TRACKING_URI`
unset where its default is out of reach included), 3 any other failure (the registry
unreachable, a model that does not load): only 1 means "the candidate is not good enough".
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import model, project, registry
from .data import load_dataset, split
from .metrics import HIGHER_IS_BETTER, PRIMARY, score
from .params import load_params

EXIT_PROMOTED = 0
EXIT_REFUSED = 1
EXIT_UNUSABLE = 2
EXIT_FAILED = 3


@dataclass(frozen=True)
class Verdict:
    """Whether the candidate may be promoted, and every reason it may not."""

    promote: bool
    reasons: list[str] = field(default_factory=list)


def judge(
    task: str,
    gate: Mapping[str, Any],
    candidate: Mapping[str, float],
    champion: Mapping[str, float] | None,
) -> Verdict:
    """Apply the gate to the candidate's scores (and the champion's, when there is one)."""
    reasons = []
    for key, limit in sorted(gate.items()):
        if key == "min_improvement":
            continue
        bound, _, metric = key.partition("_")
        if bound not in {"min", "max"} or metric not in candidate:
            known = ", ".join(sorted(candidate))
            raise ValueError(
                f"unknown gate entry {key!r}: use min_<metric> or max_<metric> with one of {known}"
            )
        value = candidate[metric]
        if bound == "min" and value < float(limit):
            reasons.append(f"{metric} {value:.4f} is below the minimum {float(limit):.4f}")
        if bound == "max" and value > float(limit):
            reasons.append(f"{metric} {value:.4f} is above the maximum {float(limit):.4f}")
    if champion is not None:
        primary = PRIMARY[task]
        margin = float(gate.get("min_improvement", 0.0))
        gain = candidate[primary] - champion[primary]
        if not HIGHER_IS_BETTER[primary]:
            gain = -gain
        if gain < margin:
            direction = "higher" if HIGHER_IS_BETTER[primary] else "lower"
            reasons.append(
                f"{primary} {candidate[primary]:.4f} does not beat the champion's "
                f"{champion[primary]:.4f} by {margin:.4f} ({direction} is better)"
            )
    return Verdict(promote=not reasons, reasons=reasons)


def evaluate(params_path: str | None = None) -> int:
    """Run the evaluation step; return the exit status."""
    params = load_params(params_path)
    client = registry.connect()
    candidate = registry.version_for_alias(client, registry.CANDIDATE)
    if candidate is None:
        print(
            f"{project.MODEL_NAME} has no `{registry.CANDIDATE}` version to evaluate: "
            "run `train` first",
            file=sys.stderr,
        )
        return EXIT_UNUSABLE
    champion = registry.version_for_alias(client, registry.CHAMPION)
    if champion is not None and str(champion.version) == str(candidate.version):
        print(f"version {candidate.version} is already the `{registry.CHAMPION}`")
        return EXIT_PROMOTED

    target = str(params.data.get("target", "target"))
    dataset = load_dataset(params.data.get("path") or None, target=target)
    _, holdout = split(
        dataset,
        test_size=float(params.data.get("test_size", 0.25)),
        seed=int(params.data.get("seed", 42)),
    )

    def scores(version: Any) -> dict[str, float]:
        loaded = model.load(registry.model_uri(version.version))
        return score(project.TASK, holdout.target, model.predict(loaded, holdout.features))

    candidate_scores = scores(candidate)
    champion_scores = scores(champion) if champion is not None else None
    verdict = judge(project.TASK, params.gate, candidate_scores, champion_scores)

    name, version = project.MODEL_NAME, str(candidate.version)
    for metric, value in candidate_scores.items():
        client.set_model_version_tag(name, version, f"holdout_{metric}", f"{value:.6f}")
    client.set_model_version_tag(
        name, version, "validation_status", "passed" if verdict.promote else "refused"
    )
    against = f"champion version {champion.version}" if champion else "no champion yet"
    if not verdict.promote:
        print(
            f"{name} version {version} is NOT promoted ({against}):\n  - "
            + "\n  - ".join(verdict.reasons),
            file=sys.stderr,
        )
        return EXIT_REFUSED
    if champion is not None:
        client.set_model_version_tag(
            name, version, registry.PREVIOUS_CHAMPION_TAG, str(champion.version)
        )
    client.set_registered_model_alias(name, registry.CHAMPION, version)
    primary = PRIMARY[project.TASK]
    print(
        f"{name} version {version} is the new `{registry.CHAMPION}` "
        f"({primary} {candidate_scores[primary]:.4f}; {against})"
    )
    return EXIT_PROMOTED


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", help="parameters file (default: params.yaml)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return evaluate(args.params)
    except ValueError as exc:
        print(f"evaluation failed: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    except Exception:
        # Never exit 1 on a crash: 1 means the gate refused the candidate.
        traceback.print_exc()
        print("evaluation failed; the aliases are unchanged", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
