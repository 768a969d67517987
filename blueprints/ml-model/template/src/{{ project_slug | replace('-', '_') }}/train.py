"""Train the model, log the run to MLflow and register a new version as the `candidate`.

Run it as `train [--params params.yaml]` (a console script) or with `python -m` on this
module. The version gets the registry tags Trellis reads; `evaluate` then decides whether it
becomes the `champion`. Exit status: 0 registered, 2 bad data or parameters (or
`MLFLOW_TRACKING_URI` to set), 3 the tracking server does not answer.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from . import model, project, registry
from .data import load_dataset, split
from .metrics import score
from .params import load_params


def train(params_path: str | None = None) -> Any:
    """Run the whole training step; return the registered model version."""
    params = load_params(params_path)
    client = registry.connect()
    import mlflow

    target = str(params.data.get("target", "target"))
    dataset = load_dataset(params.data.get("path") or None, target=target)
    training, holdout = split(
        dataset,
        test_size=float(params.data.get("test_size", 0.25)),
        seed=int(params.data.get("seed", 42)),
    )
    commit = registry.git_commit()
    blueprint_version = registry.blueprint_version()
    mlflow.set_experiment(registry.experiment_name())
    with mlflow.start_run(run_name=f"train-{commit[:12]}") as run:
        mlflow.set_tags(
            {
                **registry.version_tags(commit, blueprint_version),
                "mlflow.source.git.commit": commit,
                "training_region": registry.training_region(),
            }
        )
        mlflow.log_params(
            {
                **params.flat(),
                "framework": project.FRAMEWORK,
                "features": ",".join(map(str, dataset.features.columns)),
                "training_rows": len(training.target),
                "holdout_rows": len(holdout.target),
            }
        )
        with warnings.catch_warnings():
            # Needless warnings: a local path matches two of MLflow's source types, and the
            # schema hint about integer columns (the labels) does not apply to lineage.
            warnings.filterwarnings("ignore", message="The specified dataset source can be")
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
            lineage = mlflow.data.from_pandas(
                dataset.frame, source=dataset.source, targets=target, name=project.MODEL_NAME
            )
            mlflow.log_input(lineage, context="training")
        fitted = model.fit(params.model, training.features, training.target)
        metrics = score(project.TASK, holdout.target, model.predict(fitted, holdout.features))
        mlflow.log_metrics(metrics)
        info = model.log_model(fitted, training.features, project.MODEL_NAME)

    version = str(info.registered_model_version)
    registry.describe_model(client, blueprint_version)
    for key, value in registry.version_tags(commit, blueprint_version).items():
        client.set_model_version_tag(project.MODEL_NAME, version, key, value)
    client.update_model_version(
        project.MODEL_NAME,
        version,
        description=f"Trained from {commit} on {dataset.source} (run {run.info.run_id}).",
    )
    client.set_registered_model_alias(project.MODEL_NAME, registry.CANDIDATE, version)
    summary = ", ".join(f"{name} {value:.4f}" for name, value in sorted(metrics.items()))
    print(
        f"registered {project.MODEL_NAME} version {version} as `{registry.CANDIDATE}` "
        f"(hold-out: {summary})"
    )
    return client.get_model_version(project.MODEL_NAME, version)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", help="parameters file (default: params.yaml)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        train(args.params)
    except ValueError as exc:  # bad data or parameters: say what, not a traceback
        print(f"training failed: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
