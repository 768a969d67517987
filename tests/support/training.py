"""Registered models whose versions come from real MLflow runs with logged metric histories."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from support.registry import client


@dataclass(frozen=True)
class RunSpec:
    """A training run: each metric's values, logged at steps 0, 1, 2, ..."""

    metrics: dict[str, list[float]]


@dataclass
class Trained:
    """What was seeded: each version's run id and the values logged, by alias."""

    name: str
    runs: dict[int, str] = field(default_factory=dict)
    logged: dict[str, dict[str, list[float]]] = field(default_factory=dict)


def curve(steps: int, start: float, end: float) -> list[float]:
    """A loss-like curve from ``start`` towards ``end``."""
    return [end + (start - end) * math.exp(-4 * i / max(1, steps - 1)) for i in range(steps)]


def seed_trained(
    uri: str, name: str, versions: dict[int, RunSpec], aliases: dict[str, int]
) -> Trained:
    """A registered model with one version per run (``runs:/<id>/model``) and the aliases."""
    from mlflow.entities import Metric

    mlflow = client(uri)
    experiment = mlflow.get_experiment_by_name(name) or None
    experiment_id = experiment.experiment_id if experiment else mlflow.create_experiment(name)
    mlflow.create_registered_model(name, tags={"owner": "group:default/ml"})
    trained = Trained(name)
    now = int(time.time() * 1000)
    for number in sorted(versions):
        run = mlflow.create_run(experiment_id)
        run_id = run.info.run_id
        spec = versions[number]
        batch = [
            Metric(key, value, now + step * 1000, step)
            for key, values in spec.metrics.items()
            for step, value in enumerate(values)
        ]
        for start in range(0, len(batch), 1000):  # MLflow takes up to 1,000 metrics per batch
            mlflow.log_batch(run_id, metrics=batch[start : start + 1000])
        mlflow.set_terminated(run_id)
        version = mlflow.create_model_version(name, source=f"runs:/{run_id}/model", run_id=run_id)
        assert int(version.version) == number, (version.version, number)
        trained.runs[number] = run_id
    for alias, number in aliases.items():
        mlflow.set_registered_model_alias(name, alias, str(number))
        trained.logged[alias] = versions[number].metrics
    return trained
