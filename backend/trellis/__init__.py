"""Trellis: an MLOps platform kit for Backstage.

The backend reads the MLflow model registry (and later Prometheus and Kubernetes) and serves
what Backstage already understands: catalog entities, Tech Insights scorecards, observability.
"""

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    """``__version__``, read from the installed distribution when first asked for.

    Reading package metadata loads ``importlib.metadata`` and its email parser, about a
    third of what ``trellis --help`` would otherwise import.
    """
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("trellis")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        found = "0.0.0"
    globals()["__version__"] = found
    return found
