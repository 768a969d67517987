"""Registered models whose versions come from real MLflow runs with logged metric histories."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

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


@dataclass(frozen=True)
class Champion:
    """A registered model whose champion is a real logged model, as the blueprints make it."""

    name: str
    tags: dict[str, str]
    description: str = ""
    #: Logged with an input/output signature (``infer_signature``), or without one.
    signed: bool = True
    #: Dataset names logged as the run's training inputs.
    datasets: tuple[str, ...] = ()
    metrics: dict[str, float] = field(default_factory=dict)
    #: None: no champion alias (the version is registered all the same).
    champion: bool = True


def log_champions(db: Path, scratch: Path, models: list[Champion]) -> None:
    """Log each model through MLflow's own client into the SQLite registry ``db``.

    Each gets a run with its metrics and dataset inputs, an MLflow 3 logged model (a tiny
    scikit-learn model saved by ``mlflow.sklearn``), and one version registered from it.
    """
    import pandas as pd
    from mlflow import sklearn as mlflow_sklearn
    from mlflow.entities import Dataset, DatasetInput, InputTag, LoggedModelStatus, Metric
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    uri = f"sqlite:///{db}"
    mlflow = client(uri)
    features = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    tiny = LogisticRegression().fit(features, [0, 1, 0, 1])
    signature = infer_signature(features, tiny.predict(features))
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    # MLflow's SQL store resolves `models:/` sources through the process-wide tracking URI.
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        for model in models:
            artifacts = db.parent / "artifacts" / model.name
            experiment = mlflow.create_experiment(model.name, artifact_location=str(artifacts))
            run_id = mlflow.create_run(experiment).info.run_id
            now = int(time.time() * 1000)
            mlflow.log_batch(
                run_id, metrics=[Metric(k, v, now, 0) for k, v in model.metrics.items()]
            )
            if model.datasets:
                context = [InputTag("mlflow.data.context", "training")]
                inputs = [
                    DatasetInput(
                        Dataset(name, f"d-{name}", "s3", f'{{"uri": "s3://lake/{name}"}}'), context
                    )
                    for name in model.datasets
                ]
                mlflow.log_inputs(run_id, inputs)
            mlflow.set_terminated(run_id)
            logged = mlflow.create_logged_model(experiment, name="model", source_run_id=run_id)
            local = scratch / model.name
            mlflow_sklearn.save_model(
                tiny, local, signature=signature if model.signed else None, pip_requirements=[]
            )
            mlflow.log_model_artifacts(logged.model_id, str(local))
            mlflow.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
            mlflow.create_registered_model(
                model.name, tags=model.tags, description=model.description
            )
            version = mlflow.create_model_version(
                model.name, source=f"models:/{logged.model_id}", run_id=run_id
            )
            if model.champion:
                mlflow.set_registered_model_alias(model.name, "champion", version.version)
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous
