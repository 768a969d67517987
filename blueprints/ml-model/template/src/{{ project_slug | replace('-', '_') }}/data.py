"""Training data: the bundled sample, or a real data set named in params or the environment.

The sample (`sample_data/sample.csv`) is synthetic, made deterministically for this blueprint:
it lets the pipeline and its tests run anywhere, offline. Point `data.path` in `params.yaml`,
or the `TRAINING_DATA` environment variable (which wins), at a CSV or Parquet file with the
same shape - numeric feature columns and a target column - to train on real data. Any
location pandas can read works: a path, `https://`, or the cloud's object store (`s3://`,
`gs://` or `abfs://`, whose fsspec package is a dependency of this project; others need
theirs installed). Credentials come from the environment, as the cloud's SDK finds them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pandas as pd

#: Environment variable that overrides `data.path`.
DATA_ENV = "TRAINING_DATA"
SAMPLE = "sample_data/sample.csv"


@dataclass(frozen=True)
class Dataset:
    """Features and target of one data set, and where it came from."""

    features: pd.DataFrame
    target: pd.Series
    source: str

    @property
    def frame(self) -> pd.DataFrame:
        """Features and target in one frame (for dataset lineage in MLflow)."""
        return self.features.assign(**{str(self.target.name): self.target})

    def take(self, rows: np.ndarray) -> Dataset:
        """The rows at these positions."""
        return Dataset(
            self.features.iloc[rows].reset_index(drop=True),
            self.target.iloc[rows].reset_index(drop=True),
            self.source,
        )


def data_location(path: str | None = None) -> str | None:
    """Where the data comes from: `$TRAINING_DATA`, else `path`; None means the sample."""
    location = os.environ.get(DATA_ENV) or path
    return str(location) if location else None


def load_dataset(path: str | None = None, *, target: str = "target") -> Dataset:
    """Load the data set and check its shape: a target column and numeric features."""
    location = data_location(path)
    if location is None:
        sample = resources.files(__package__).joinpath(SAMPLE)
        with sample.open("rb") as handle:
            frame = pd.read_csv(handle)
        source = f"{__package__}/{SAMPLE}"
    else:
        frame = _read(location)
        source = redact(location)
    if target not in frame.columns:
        raise ValueError(
            f"the data at {source} has no target column {target!r}; "
            f"its columns are {', '.join(map(str, frame.columns))}"
        )
    if frame[target].isna().any():
        raise ValueError(f"the target column {target!r} of {source} has missing values")
    features = frame.drop(columns=[target])
    if len(features.columns) == 0 or len(features) == 0:
        raise ValueError(f"the data at {source} has no rows or no feature columns")
    numeric = pd.api.types.is_numeric_dtype
    not_numeric = [str(c) for c in features.columns if not numeric(features[c])]
    if not_numeric:
        raise ValueError(
            f"feature columns must be numeric; encode these first: {', '.join(not_numeric)}"
        )
    return Dataset(features.astype("float64"), frame[target], source)


def redact(location: str) -> str:
    """The location without credentials (user:password@, or a query such as a SAS token).

    This is the form recorded in MLflow and printed, never the secret-bearing one.
    """
    parts = urlsplit(location)
    if not parts.scheme or len(parts.scheme) == 1:  # a local path (or a Windows drive)
        return location
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _read(location: str) -> pd.DataFrame:
    """The table at `location`; a missing file or storage library is a one-line error."""
    read = pd.read_parquet if location.lower().endswith((".parquet", ".pq")) else pd.read_csv
    try:
        return read(location)
    except FileNotFoundError:
        raise ValueError(f"no data at {redact(location)}") from None
    except ImportError as exc:  # an object store whose fsspec package is not installed
        raise ValueError(f"cannot read {redact(location)}: {exc}") from None


def split(dataset: Dataset, *, test_size: float, seed: int) -> tuple[Dataset, Dataset]:
    """A deterministic (train, hold-out) split: the same data and seed give the same rows."""
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be between 0 and 1, not {test_size}")
    rows = len(dataset.target)
    held_out = max(1, round(rows * test_size))
    if rows - held_out < 2:
        raise ValueError(f"{rows} rows are too few to train and hold out {test_size:.0%}")
    order = np.random.default_rng(seed).permutation(rows)
    return dataset.take(np.sort(order[held_out:])), dataset.take(np.sort(order[:held_out]))
