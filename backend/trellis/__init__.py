"""Trellis: an MLOps platform kit for Backstage.

The backend reads the MLflow model registry (and later Prometheus and Kubernetes) and serves
what Backstage already understands: catalog entities, Tech Insights scorecards, observability.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("trellis")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["__version__"]
