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
    except PackageNotFoundError:  # a source tree on the path, not installed
        found = _tree_version()
    globals()["__version__"] = found
    return found


def _tree_version() -> str:
    """The version ``pyproject.toml`` beside the package gives (no git tag is needed)."""
    import tomllib
    from pathlib import Path

    try:
        project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
        return str(project["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "0.0.0"
