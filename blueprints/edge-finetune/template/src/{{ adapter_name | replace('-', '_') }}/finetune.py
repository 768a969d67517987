"""Entry point `finetune`: tune the hub model on regional data, gate it, register the adapter.

Exit status says the decision: 0 the gate passed and the regional `champion` moved, 1 the gate
failed (the version is registered with `gate=failed`, the alias is unchanged), 2 the run could
not start (data outside the region, a classification the region may not tune on, bad input).
Only the adapter, parameters and metrics reach the registry; the rows never do.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow import MlflowClient

from . import data, gate, lineage, params, project, registry, tuning


@dataclass(frozen=True)
class Outcome:
    """What a run registered and decided."""

    version: str
    decision: gate.Decision
    fingerprint: str
    hub: tuning.Score
    adapter: tuning.Score


class Refused(RuntimeError):
    """The run may not start: governance or input says no."""


def check_classification(classification: str, allowed: Sequence[str]) -> None:
    """Refuse data whose classification this region may not tune on."""
    if classification not in allowed:
        raise Refused(
            f"data classified {classification} may not be used here (allowed: {', '.join(allowed)})"
        )


def artifact_path(method: str) -> str:
    """Where the tuned weights are logged: `adapter/` (PEFT folder), or `model/` in full."""
    return "model" if method == "full" else "adapter"


def run(location: str, settings: params.Params) -> Outcome:
    """Tune, evaluate against the hub model, log and register; move the alias on a pass."""
    check_classification(project.CLASSIFICATION, project.ALLOWED_CLASSIFICATIONS)
    rows = data.read(location, project.REGION)
    fingerprint = data.fingerprint(rows)
    train_rows, holdout_rows = data.split(rows, settings.holdout_fraction, settings.seed)
    train_texts = [data.text_of(row) for row in train_rows]
    holdout_texts = [data.text_of(row) for row in holdout_rows]

    tuning.seed_everything(settings.seed)
    client = MlflowClient()
    with tempfile.TemporaryDirectory(prefix="finetune-") as scratch:
        hub = registry.fetch_hub(
            client, project.HUB_MODEL, project.HUB_ALIAS, Path(scratch) / "hub"
        )
        model, tokenizer = tuning.load(hub.folder, settings.method)
        hub_score = tuning.score(model, tokenizer, holdout_texts, settings)
        tuned = tuning.wrap(model, settings)
        losses = tuning.train(tuned, tokenizer, train_texts, settings)
        adapter_score = tuning.score(tuned, tokenizer, holdout_texts, settings)
        decision = gate.decide(adapter_score, hub_score, settings)

        weights = Path(scratch) / artifact_path(settings.method)
        tuned.save_pretrained(weights)
        if settings.method == "full":
            tokenizer.save_pretrained(weights)
        metrics = {
            "hub_loss": hub_score.loss,
            "hub_perplexity": hub_score.perplexity,
            "adapter_loss": adapter_score.loss,
            "adapter_perplexity": adapter_score.perplexity,
            "loss_improvement": hub_score.loss - adapter_score.loss,
        }
        mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME", project.ADAPTER_NAME))
        with mlflow.start_run(run_name=f"{project.ADAPTER_NAME}-{project.REGION}") as active:
            mlflow.log_params(
                {
                    **settings.flat(),
                    "hub_model": hub.name,
                    "hub_version": hub.version,
                    "region": project.REGION,
                    "train_rows": len(train_rows),
                    "holdout_rows": len(holdout_rows),
                }
            )
            mlflow.log_metrics(metrics)
            for step, loss in enumerate(losses):
                mlflow.log_metric("train_loss", loss, step=step)
            mlflow.set_tags(
                {lineage.DATASET_FINGERPRINT: fingerprint, lineage.GATE: decision.verdict}
            )
            mlflow.log_artifacts(str(weights), artifact_path=weights.name)
            source = f"{active.info.artifact_uri}/{weights.name}"
            run_id = active.info.run_id

    registry.ensure_model(
        client, project.ADAPTER_NAME, lineage.model_tags(settings.method), _description()
    )
    version = registry.register_version(
        client,
        project.ADAPTER_NAME,
        source,
        run_id,
        lineage.version_tags(
            parent_version=hub.version,
            fingerprint=fingerprint,
            method=settings.method,
            gate=decision.verdict,
            metrics=metrics,
        ),
    )
    if decision.passed:
        registry.move_champion(client, project.ADAPTER_NAME, version)
    return Outcome(version, decision, fingerprint, hub_score, adapter_score)


def _description() -> str:
    return (
        f"{project.HUB_MODEL} fine-tuned ({project.METHOD}) on {project.CLASSIFICATION} data "
        f"of {project.REGION}, which never left the region."
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``finetune [--data PATH_OR_URI] [--params FILE]``."""
    parser = argparse.ArgumentParser(prog="finetune", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        default=os.environ.get("DATA_LOCATION") or project.DATA_LOCATION,
        help="regional JSONL: a local path, or the region's bucket (default: DATA_LOCATION)",
    )
    parser.add_argument("--params", default=None, help="params.yaml to use (or PARAMS_FILE)")
    args = parser.parse_args(argv)
    try:
        outcome = run(args.data, params.load(args.params))
    except (Refused, data.DataError, ValueError) as exc:
        print(f"finetune: {exc}", file=sys.stderr)
        return 2
    name = project.ADAPTER_NAME
    print(f"{name} version {outcome.version} (data fingerprint {outcome.fingerprint})")
    for reason in outcome.decision.reasons:
        print(f"  {reason}")
    if outcome.decision.passed:
        print(f"gate passed: `champion` of {name} is now version {outcome.version}")
        return 0
    print(f"gate failed: `champion` of {name} is unchanged")
    return 1


if __name__ == "__main__":
    sys.exit(main())
