"""Scores of predictions against the truth, and which direction is better for each."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: The metric the promotion gate compares with the champion, per task.
PRIMARY = {"classification": "f1", "regression": "rmse"}
HIGHER_IS_BETTER = {
    "accuracy": True,
    "precision": True,
    "recall": True,
    "f1": True,
    "rmse": False,
    "mae": False,
    "r2": True,
}


def score(
    task: str, truth: Sequence | np.ndarray, predicted: Sequence | np.ndarray
) -> dict[str, float]:
    """Classification: accuracy, precision, recall, f1; regression: rmse, mae, r2."""
    y = np.asarray(truth)
    p = np.asarray(predicted).reshape(len(y))
    if task == "classification":
        return _classification(y, p)
    if task == "regression":
        return _regression(y.astype(float), p.astype(float))
    raise ValueError(f"unknown task {task!r}")


def _classification(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Binary labels: scores of the positive class (the larger label, 1 for 0/1 labels).

    More than two labels: precision, recall and f1 are macro averages over the labels.
    """
    labels = np.unique(np.concatenate([y, p]))
    if set(labels.tolist()) <= {0, 1}:
        positives = np.array([1])
    elif len(labels) == 2:
        positives = labels[-1:]
    else:
        positives = labels
    per_label = [_precision_recall_f1(y == label, p == label) for label in positives]
    precision, recall, f1 = (float(np.mean(values)) for values in zip(*per_label, strict=True))
    return {
        "accuracy": float(np.mean(y == p)),
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


def _precision_recall_f1(truth: np.ndarray, predicted: np.ndarray) -> tuple[float, float, float]:
    hits = float(np.sum(truth & predicted))
    precision = hits / float(np.sum(predicted)) if np.any(predicted) else 0.0
    recall = hits / float(np.sum(truth)) if np.any(truth) else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def _regression(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    error = p - y
    spread = float(np.sum((y - y.mean()) ** 2))
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "r2": 1.0 - float(np.sum(error**2)) / spread if spread else 0.0,
    }
