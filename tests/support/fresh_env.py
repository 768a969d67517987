"""The environment of a user's fresh install, for generated projects run in their own venvs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: Trellis's own virtualenv, which a user's shell does not have on PATH.
BIN = Path(sys.executable).parent
#: Settings of this environment that a user's fresh install does not have. Without
#: PYTHONDONTWRITEBYTECODE the first process writes the bytecode of what it imports (pip writes
#: it at install; uv does not), so the later ones do not compile MLflow, pandas and scikit-learn
#: again (some 7 s of CPU per process), nor MLflow's migrations for each new SQLite registry.
NOT_A_USERS = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONDONTWRITEBYTECODE"}


def fresh_env(**extra: str) -> dict[str, str]:
    """This environment without our virtualenv's traces, plus MLflow's quiet settings."""
    env = {
        k: v for k, v in os.environ.items() if k not in NOT_A_USERS and not k.startswith("MLFLOW_")
    }
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if Path(p) != BIN
    )
    return {
        **env,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        **extra,
    }
