"""``trellis demo``: real models in an embedded registry, then the catalog Backstage reads.

The models are small scikit-learn models trained on data sets that ship with scikit-learn
(nothing is downloaded), logged with signatures, input examples and their training data set
as a run input (lineage), registered with the tags Trellis reads, and promoted with a
``champion`` alias where they earned it. Every model but one links a model card, so the
scorecards show a failing check next to the passing ones. Beside them, a tiny open model
and two regional adapters of it show hub-to-region lineage (``demo_open_models.py``).
"""

from __future__ import annotations

import logging
import os
import secrets
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.syntax import Syntax

from trellis.config import Settings
from trellis.demo_open_models import register_open_models
from trellis.model import ModelTags
from trellis.yaml_text import dump

__all__ = ["DEMO_MODELS", "DemoModel", "prepare_demo", "print_next_steps"]

EXPERIMENT = "trellis-demo"
#: The scikit-learn data set each task trains on, as a run input: name and documentation URL.
_DATASETS = {
    "classification": (
        "breast-cancer-wisconsin",
        "https://scikit-learn.org/stable/datasets/toy_dataset.html#breast-cancer-dataset",
    ),
    "regression": (
        "diabetes",
        "https://scikit-learn.org/stable/datasets/toy_dataset.html#diabetes-dataset",
    ),
}


def _model_card(repo: str) -> str:
    return f"https://github.com/acme/{repo}/blob/main/docs/model-card.md"


@dataclass(frozen=True)
class DemoModel:
    """One model to train: what it is, who owns it, and how many versions to register."""

    name: str
    description: str
    task: str
    estimator: str
    tags: dict[str, str]
    versions: int = 2
    champion: int | None = 2
    params: list[dict[str, Any]] = field(default_factory=list)


DEMO_MODELS: tuple[DemoModel, ...] = (
    DemoModel(
        name="fraud-detector",
        description="Flags card transactions likely to be fraudulent.",
        task="classification",
        estimator="logistic",
        tags={
            ModelTags.OWNER: "group:default/risk-ml",
            ModelTags.SYSTEM: "payments",
            ModelTags.DATA_CLASSIFICATION: "confidential",
            ModelTags.TRAINING_REGION: "eu-west-1",
            ModelTags.SOURCE_REPO: "https://github.com/acme/fraud-detector",
            ModelTags.TAGS: "tabular,real-time",
            ModelTags.MODEL_CARD: _model_card("fraud-detector"),
        },
        params=[{"C": 0.1}, {"C": 1.0}],
    ),
    DemoModel(
        name="churn-predictor",
        description="Predicts which subscribers will cancel within 30 days.",
        task="classification",
        estimator="forest",
        tags={
            ModelTags.OWNER: "growth-analytics",
            ModelTags.SYSTEM: "customer-insights",
            ModelTags.DATA_CLASSIFICATION: "internal",
            ModelTags.TRAINING_REGION: "us-east-1",
            ModelTags.MODEL_CARD: _model_card("churn-predictor"),
        },
        champion=1,
        params=[{"n_estimators": 50, "max_depth": 4}, {"n_estimators": 100, "max_depth": 6}],
    ),
    DemoModel(
        name="demand-forecast",
        description="Forecasts weekly demand per warehouse.",
        task="regression",
        estimator="boosting",
        tags={
            ModelTags.OWNER: "group:default/supply-chain",
            ModelTags.SYSTEM: "logistics",
            ModelTags.DATA_CLASSIFICATION: "public",
            ModelTags.TRAINING_REGION: "us-east-1",
            ModelTags.MODEL_CARD: _model_card("demand-forecast"),
        },
        params=[{"n_estimators": 50}, {"n_estimators": 120}],
    ),
    DemoModel(
        name="Credit Risk (EU)",
        description="Probability of default for EU retail credit; still in evaluation.",
        task="classification",
        estimator="logistic",
        tags={
            ModelTags.OWNER: "Risk ML",
            ModelTags.SYSTEM: "payments",
            ModelTags.DATA_CLASSIFICATION: "restricted",
            ModelTags.TRAINING_REGION: "eu-central-1",
            ModelTags.MODEL_CARD: _model_card("credit-risk-eu"),
        },
        versions=1,
        champion=None,
        params=[{"C": 0.5}],
    ),
    DemoModel(
        name="house-price-estimator",
        description="Estimates property values from a handful of features.",
        task="regression",
        estimator="ridge",
        # Deliberately sparse (no owner, no model card): the scorecards' failing example.
        tags={ModelTags.DATA_CLASSIFICATION: "internal"},
        versions=1,
        champion=1,
        params=[{"alpha": 1.0}],
    ),
)


def prepare_demo(settings: Settings, *, console: Console, retrain: bool = False) -> Settings:
    """Train the demo models into the embedded registry and return settings to serve them."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    token = _demo_token(settings.state_dir)
    settings = settings.model_copy(update={"api_tokens": [SecretStr(token)]})
    train_models(settings.tracking_uri, settings.state_dir / "artifacts", console, retrain)
    return settings


def _demo_token(state_dir: Path) -> str:
    path = state_dir / "demo-token"
    if path.exists():
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    path.write_text(token)
    path.chmod(0o600)
    return token


def train_models(
    tracking_uri: str, artifacts: Path, console: Console, retrain: bool = False
) -> None:
    """Train, log, register, tag and promote every demo model, with a progress bar."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="mlflow")
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    existing = {m.name for m in client.search_registered_models(max_results=1000)}
    todo = [m for m in DEMO_MODELS if retrain or m.name not in existing]
    experiment = client.get_experiment_by_name(EXPERIMENT)
    experiment_id = (
        experiment.experiment_id
        if experiment
        else client.create_experiment(EXPERIMENT, artifact_location=artifacts.resolve().as_uri())
    )
    if todo:
        _train(mlflow, client, experiment_id, todo, console)
    else:
        console.print(
            f"[green]✓[/] {len(DEMO_MODELS)} demo models already registered "
            "(use --retrain to train them again)"
        )
    registered = register_open_models(client, experiment_id)
    if registered:
        console.print(f"[green]✓[/] registered the open model and its adapters: {registered}")


def _train(
    mlflow: Any, client: Any, experiment_id: str, todo: list[DemoModel], console: Console
) -> None:
    steps = sum(m.versions for m in todo)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        bar = progress.add_task("Training demo models", total=steps)
        for spec in todo:
            for index in range(spec.versions):
                progress.update(bar, description=f"Training {spec.name} v{index + 1}")
                _train_version(mlflow, experiment_id, spec, spec.params[index])
                progress.advance(bar)
            _describe(client, spec)
    console.print(f"[green]✓[/] trained {steps} model versions of {len(todo)} models")


def _train_version(
    mlflow: Any, experiment_id: str, spec: DemoModel, params: dict[str, Any]
) -> None:
    from mlflow.models import infer_signature
    from sklearn.model_selection import train_test_split

    features, target = _dataset(spec.task)
    x_train, x_test, y_train, y_test = train_test_split(
        features, target, test_size=0.25, random_state=7
    )
    estimator = _estimators()[spec.estimator](**params)
    name, url = _DATASETS[spec.task]
    with mlflow.start_run(experiment_id=experiment_id, run_name=spec.name):
        training = x_train.assign(target=y_train)
        mlflow.log_input(
            mlflow.data.from_pandas(training, source=url, name=name, targets="target"),
            context="training",
        )
        estimator.fit(x_train, y_train)
        mlflow.log_params(params)
        mlflow.log_metrics(_scores(spec.task, estimator, x_test, y_test))
        mlflow.set_tags({ModelTags.OWNER: spec.tags.get(ModelTags.OWNER, ""), "dataset": spec.task})
        mlflow.sklearn.log_model(
            estimator,
            name="model",
            signature=infer_signature(x_test, estimator.predict(x_test)),
            input_example=x_test.head(3),
            registered_model_name=spec.name,
            # Tree ensembles are stored with skops; we wrote these files ourselves just now.
            skops_trusted_types=["sklearn.tree._tree.Tree"],
            # Stated, not inferred: inference loads the model again in a subprocess per version.
            pip_requirements=mlflow.sklearn.get_default_pip_requirements(include_skops=True),
        )


def _describe(client: Any, spec: DemoModel) -> None:
    client.update_registered_model(spec.name, description=spec.description)
    tags = {**spec.tags, ModelTags.FRAMEWORK: "sklearn", ModelTags.TASK: spec.task}
    for key, value in tags.items():
        client.set_registered_model_tag(spec.name, key, value)
    if spec.champion is not None:
        client.set_registered_model_alias(spec.name, ModelTags.CHAMPION, str(spec.champion))
    latest = max(int(v.version) for v in client.search_model_versions(f"name='{spec.name}'"))
    if latest != spec.champion:
        client.set_registered_model_alias(spec.name, "candidate", str(latest))


def _dataset(task: str) -> tuple[Any, Any]:
    from sklearn.datasets import load_breast_cancer, load_diabetes

    loader = load_breast_cancer if task == "classification" else load_diabetes
    features, target = loader(return_X_y=True, as_frame=True)
    return features, target


def _estimators() -> dict[str, Callable[..., Any]]:
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return {
        "logistic": lambda **p: make_pipeline(StandardScaler(), LogisticRegression(**p)),
        "forest": lambda **p: RandomForestClassifier(random_state=7, **p),
        "boosting": lambda **p: GradientBoostingRegressor(random_state=7, **p),
        "ridge": lambda **p: Ridge(**p),
    }


def _scores(task: str, estimator: Any, x_test: Any, y_test: Any) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, r2_score

    predicted = estimator.predict(x_test)
    if task == "classification":
        return {
            "accuracy": float(accuracy_score(y_test, predicted)),
            "f1": float(f1_score(y_test, predicted)),
        }
    return {
        "r2": float(r2_score(y_test, predicted)),
        "mae": float(mean_absolute_error(y_test, predicted)),
    }


def print_next_steps(settings: Settings, *, console: Console) -> None:
    """What to open, and the Backstage configuration that reads this catalog."""
    base = f"http://{settings.host}:{settings.port}"
    token = settings.api_tokens[0].get_secret_value() if settings.api_tokens else "<token>"
    kinds = ["Component", "API", "Resource", "System", "Group", "User", "Location", "Template"]
    app_config = {
        "backend": {"reading": {"allow": [{"host": f"{settings.host}:{settings.port}"}]}},
        "catalog": {
            "rules": [{"allow": kinds}],
            "locations": [{"type": "url", "target": f"{base}/catalog/entities.yaml"}],
        },
    }
    snippet = "# app-config.yaml of your Backstage app\n" + dump(app_config)
    console.print(
        Panel.fit(
            f"Entities (YAML):  {base}/catalog/entities.yaml\n"
            f"Entities (JSON):  {base}/catalog/entities\n"
            f"API docs:         {base}/docs\n"
            f"Readiness:        {base}/readyz",
            title="Your registry, as Backstage reads it",
        )
    )
    console.print(f"API token (kept in {settings.state_dir / 'demo-token'}):")
    console.print(
        f"  curl -H 'Authorization: Bearer {token}' {base}/api/catalog/problems",
        soft_wrap=True,
        highlight=False,
    )
    console.print("\nPoint a Backstage app at it:")
    console.print(Syntax(snippet, "yaml", theme="ansi_dark", background_color="default"))
