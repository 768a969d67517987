"""Blueprint rendering measured against Copier's own floor, in the same run; prints JSON.

* ``new_median_seconds``: ``trellis new ml-model`` (the same code path as the CLI, in-process),
  median of ``--repeat`` renders from this repository;
* ``floor_median_seconds``: Copier rendering a template with the same files and no Jinja at
  all (the rendered output of the first render, as a plain template in its own git repo);
* ``update_median_seconds``: ``trellis update`` (``trellis.services.updates.update``: checks, the
  changelog, ``copier update``, the conflict scan) of the repo ``trellis new`` renders, across
  one version (scratch source tagged 1.0.0 and 1.1.0, a template change and a local edit
  elsewhere), median of ``--repeat`` runs, each on a fresh copy of the generated repo;
  ``update_over_new`` compares it with ``new_median_seconds`` of the same run, and
  ``update_over_copier_update`` with bare ``copier update`` of the same copies (its floor).

Goal: ``new_over_floor`` at most 2.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.blueprints import VARIANTS  # noqa: E402
from support.gitrepos import blueprint_source, commit_all, release  # noqa: E402
from trellis.sources.blueprints import BlueprintSource  # noqa: E402

GOAL = 2.0


def timed(action: Any) -> float:
    """Seconds one call of ``action`` takes."""
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def measure_new(work: Path, repeat: int) -> tuple[list[float], Path]:
    """Render ml-model from this repository ``repeat`` times."""
    source = BlueprintSource(str(ROOT), local_root=ROOT)
    answers = VARIANTS["sklearn-github-aws"]
    times = []
    for run in range(repeat):
        dest = work / f"new-{run}"
        times.append(
            timed(
                lambda d=dest: source.render("ml-model", d, answers, defaults=True, vcs_ref="HEAD")
            )
        )
    return times, work / "new-0"


def plain_template(rendered: Path, work: Path) -> Path:
    """The rendered files as a template with no questions and no Jinja."""
    src = work / "plain"
    shutil.copytree(
        rendered, src / "template", ignore=shutil.ignore_patterns(".copier-answers.yml")
    )
    (src / "copier.yml").write_text("_subdirectory: template\n_templates_suffix: .jinja\n")
    commit_all(src, "plain")
    return src


def measure_floor(src: Path, work: Path, repeat: int) -> list[float]:
    """Copier rendering the plain template ``repeat`` times."""
    from copier import run_copy

    times = []
    for run in range(repeat):
        dest = work / f"floor-{run}"
        times.append(
            timed(
                lambda d=dest: run_copy(
                    str(src), d, defaults=True, vcs_ref="HEAD", quiet=True, unsafe=False
                )
            )
        )
    return times


def measure_update(work: Path, repeat: int) -> tuple[list[float], list[float]]:
    """``trellis update`` and bare ``copier update`` across one version, alternately.

    Each run starts from a fresh copy of the same generated repository.
    """
    from copier import run_copy, run_update

    from trellis.cli.wiring import update

    src = blueprint_source(work / "versioned", "1.0.0")
    generated = work / "generated"
    run_copy(
        str(src),
        generated,
        data={"blueprint": "ml-model", **VARIANTS["sklearn-github-aws"]},
        defaults=True,
        vcs_ref="1.0.0",
        quiet=True,
        unsafe=False,
    )
    readme = generated / "README.md"
    readme.write_text(readme.read_text() + "\nLocal notes.\n")
    commit_all(generated, "generated and edited")
    first = "# The project in the Backstage catalog."
    release(src, "1.1.0", "- x", {"catalog-info.yaml.jinja": (first, f"# 1.1.0\n{first}")})
    times, floor = [], []
    for run in range(repeat):
        repo = Path(shutil.copytree(generated, work / f"update-{run}", symlinks=True))
        started = time.perf_counter()
        result = update(repo)
        times.append(time.perf_counter() - started)
        assert result.to_version == "1.1.0" and not result.conflicts, result
        bare = Path(shutil.copytree(generated, work / f"copier-update-{run}", symlinks=True))
        floor.append(
            timed(
                lambda b=bare: run_update(
                    b, defaults=True, overwrite=True, quiet=True, unsafe=False, vcs_ref="1.1.0"
                )
            )
        )
    return times, floor


def main(argv: list[str] | None = None) -> int:
    """Measure and print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory(prefix="trellis-bench-bp-") as tmp:
        work = Path(tmp)
        new_times, first = measure_new(work, args.repeat)
        files = sum(1 for p in first.rglob("*") if p.is_file())
        floor_times = measure_floor(plain_template(first, work), work, args.repeat)
        update_times, copier_times = measure_update(work, args.repeat)
    new, floor = statistics.median(new_times), statistics.median(floor_times)
    update, copier_update = statistics.median(update_times), statistics.median(copier_times)
    print(
        json.dumps(
            {
                "files": files,
                "repeat": args.repeat,
                "new_median_seconds": round(new, 3),
                "new_runs": [round(t, 3) for t in new_times],
                "floor_median_seconds": round(floor, 3),
                "floor_runs": [round(t, 3) for t in floor_times],
                "new_over_floor": round(new / floor, 2),
                "update_median_seconds": round(update, 3),
                "update_runs": [round(t, 3) for t in update_times],
                "update_over_new": round(update / new, 2),
                "copier_update_median_seconds": round(copier_update, 3),
                "copier_update_runs": [round(t, 3) for t in copier_times],
                "update_over_copier_update": round(update / copier_update, 2),
                "goal": {"new_over_floor": GOAL},
                "met": {"new_over_floor": new / floor <= GOAL},
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
