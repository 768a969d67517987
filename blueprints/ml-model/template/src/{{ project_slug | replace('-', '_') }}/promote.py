"""Move the `champion` alias by hand: roll back, or promote a version you chose.

Run it as `promote [VERSION]` (a console script) or with `python -m` on this module. Without
a version it rolls back to the champion that the current one replaced (the version tag
`previous_champion` that `evaluate` writes). The serving pipeline deploys whatever the
alias points at. Exit status: 0 moved, 2 no such version (or `MLFLOW_TRACKING_URI` to set),
3 the tracking server does not answer.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import project, registry


def promote(version: str | None = None) -> int:
    """Point `champion` at `version` (default: the previous champion); return the exit status."""
    from mlflow.exceptions import MlflowException

    client = registry.connect()
    name = project.MODEL_NAME
    current = registry.version_for_alias(client, registry.CHAMPION)
    if version is None:
        previous = current.tags.get(registry.PREVIOUS_CHAMPION_TAG) if current else None
        if not previous:
            print(
                f"{name} has no previous champion recorded: name the version to promote",
                file=sys.stderr,
            )
            return 2
        version = previous
    try:
        client.get_model_version(name, version)
    except MlflowException:
        print(f"{name} has no version {version}", file=sys.stderr)
        return 2
    client.set_registered_model_alias(name, registry.CHAMPION, version)
    was = f"was version {current.version}" if current else "there was none"
    print(f"{name} `{registry.CHAMPION}` is now version {version} ({was})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("version", nargs="?", help="the version to make champion")
    args = parser.parse_args(argv)
    return promote(args.version)


if __name__ == "__main__":
    sys.exit(main())
