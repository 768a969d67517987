"""Cookiecutter blueprints measured against the template's own command, in the same run; JSON.

The template is cookiecutter-data-science from ``../shared/fixtures`` (a git bundle), registered
as a trusted blueprint rendered through its own ``ccds`` command; each ``ccds`` version lives
in its own virtualenv under ``--cache-dir`` (made with uv the first time).

* ``new_median_seconds``: ``trellis new`` of v2.2.0 (``Scaffolder.new``, the CLI's code path,
  in-process: answers checked, template read from git, rendered by ``ccds``, ``.cruft.json``
  written), median of ``--repeat`` renders; ``ccds_median_seconds``: the ``ccds`` command for
  the same answers on a checkout of the same tag. Goal: ``new_over_ccds`` at most 1.5.
  ``cli_new_median_seconds`` adds the ``trellis`` command's own start-up, for reference.
* ``update_median_seconds``: ``trellis update`` of a committed v2.2.0 repository with local
  edits to v2.3.0 (``trellis.services.cookiecutter_updates.update``), each on a fresh copy;
  ``floor_median_seconds``: the bare re-render-and-merge floor for the same copies (``ccds``
  of both versions, ``git diff`` between them, ``git apply --3way``). ``cruft update`` is not
  the comparison: cruft renders a template from ``cookiecutter.json``, and v2 of this template
  keeps its questions in ``ccds.json`` for its own command, so cruft cannot render it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.cookiecutter import BUNDLE, CHURN_ANSWERS  # noqa: E402
from trellis.blueprints import check_answers  # noqa: E402
from trellis.services import cookiecutter_updates  # noqa: E402
from trellis.sources.cookiecutter import CookiecutterSource, CookiecutterSpec  # noqa: E402
from trellis.sources.cruft_checkouts import CruftCheckouts  # noqa: E402

GOAL = 1.5
GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]


def log(message: str) -> None:
    """A progress line on stderr (stdout is the JSON report)."""
    print(message, file=sys.stderr, flush=True)


def timed(action: Callable[[], Any]) -> float:
    """Seconds one call of ``action`` takes."""
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def run(*command: str | Path, cwd: Path | None = None) -> str:
    """Run a command; its stdout, or exit naming it with its stderr."""
    done = subprocess.run(
        [str(c) for c in command], cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, command))} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def ccds_venvs(cache: Path) -> str:
    """``entry_point`` for each ``ccds`` version, made with uv when missing."""
    uv = Path(sys.executable).parent / "uv"
    for version in ("2.2.0", "2.3.0"):
        venv = cache / f"ccds-{version}"
        if not (venv / "bin" / "ccds").exists():
            log(f"making the ccds {version} virtualenv in {venv}")
            run(uv, "venv", "--quiet", "--python", sys.executable, venv)
            run(uv, "pip", "install", "--quiet", "--python", venv / "bin" / "python",
                f"cookiecutter-data-science=={version}")  # fmt: skip
    return str(cache / "ccds-{version}" / "bin" / "ccds")


def ccds_render(ccds: str, template: Path, answers: dict[str, Any], out: Path) -> Path:
    """What ``ccds`` renders for ``answers`` (as a user config's default context)."""
    out.mkdir(parents=True)
    config = out / "config.json"
    config.write_text(json.dumps({"default_context": answers, "replay_dir": str(out / "r"),
                                  "cookiecutters_dir": str(out / "c")}))  # fmt: skip
    target = out / "o"
    run(ccds, template, "--no-input", "--output-dir", target, "--config-file", config)
    (made,) = target.iterdir()
    return made


def commit(repo: Path, message: str) -> None:
    """Commit everything in ``repo`` (made a repository first when it is not one)."""
    if not (repo / ".git").exists():
        run("git", "init", "--quiet", repo)
    run("git", "-C", repo, "add", "-A")
    run(*GIT, "-C", repo, "commit", "--quiet", "-m", message)


def edit(repo: Path) -> None:
    """Local edits away from what v2.3.0 changes."""
    readme = repo / "README.md"
    readme.write_text(readme.read_text() + "\nOwned by the retention team.\n")
    (repo / "churn_model" / "features_extra.py").write_text("WINDOW_DAYS = 28\n")


def floor_update(repo: Path, old: Path, new: Path, work: Path) -> None:
    """Re-render both versions (done by the caller), diff them, apply three ways."""
    diff_repo = work / "diff"
    shutil.copytree(old, diff_repo)
    commit(diff_repo, "old")
    for item in diff_repo.iterdir():
        if item.name != ".git":
            shutil.rmtree(item) if item.is_dir() else item.unlink()
    shutil.copytree(new, diff_repo, dirs_exist_ok=True)
    run("git", "-C", diff_repo, "add", "-A")
    patch = run("git", "-C", diff_repo, "diff", "--cached", "--binary")
    (work / "update.patch").write_text(patch)
    # A copied checkout's index holds other file times: refresh it, or git apply refuses.
    subprocess.run(["git", "-C", str(repo), "update-index", "-q", "--refresh"], check=False)
    run("git", "-C", repo, "apply", "--3way", work / "update.patch")


def measure_new(
    source: CookiecutterSource, ccds: str, template: Path, entry_point: str, work: Path, repeat: int
) -> dict[str, list[float]]:
    """``trellis new`` in-process, the ``ccds`` command, and the ``trellis`` command."""
    times: dict[str, list[float]] = {"new": [], "ccds": [], "cli": []}
    settings = json.dumps(
        {"data-science": {"source": str(BUNDLE), "ref": "v2.2.0", "trusted": True,
                          "entry_point": entry_point}}
    )  # fmt: skip
    data = [part for k, v in CHURN_ANSWERS.items() for part in ("--data", f"{k}={v}")]
    env = {"TRELLIS_BLUEPRINTS__COOKIECUTTER": settings, "PATH": "/usr/bin:/bin",
           "PYTHONPATH": str(ROOT / "backend")}  # fmt: skip
    for index in range(repeat):

        def new(dest: Path = work / f"new-{index}") -> None:
            checked = check_answers(source.blueprint(), CHURN_ANSWERS, require=False)
            source.render_repository(dest, checked, ref="v2.2.0")

        def plain(out: Path = work / f"ccds-{index}") -> None:
            ccds_render(ccds, template, CHURN_ANSWERS, out)

        command = [sys.executable, "-m", "trellis", "new", "data-science",
                   str(work / f"cli-{index}"), *data]  # fmt: skip

        def cli(command: list[str] = command) -> None:
            subprocess.run(command, env=env, check=True, capture_output=True)

        times["new"].append(timed(new))
        times["ccds"].append(timed(plain))
        times["cli"].append(timed(cli))
    return times


def measure_update(
    source: CookiecutterSource,
    ccds: dict[str, str],
    templates: dict[str, Path],
    generated: Path,
    work: Path,
    repeat: int,
) -> tuple[list[float], list[float], list[int]]:
    """``trellis update`` and the bare floor, each on fresh copies of ``generated``."""
    update_times, floor_times, conflicts = [], [], []
    checkouts = CruftCheckouts()
    for index in range(repeat):
        copy = work / f"update-{index}"
        shutil.copytree(generated, copy)
        started = time.perf_counter()
        result = cookiecutter_updates.update(
            copy, "v2.3.0", checkouts=checkouts, templates=lambda _: source
        )
        update_times.append(time.perf_counter() - started)
        conflicts.append(len(result.conflicts))
        floor = work / f"floor-{index}"
        shutil.copytree(generated, floor)
        scratch = work / f"floor-work-{index}"
        scratch.mkdir()

        def bare(floor: Path = floor, scratch: Path = scratch) -> None:
            old = ccds_render(ccds["2.2.0"], templates["v2.2.0"], CHURN_ANSWERS, scratch / "old")
            new = ccds_render(ccds["2.3.0"], templates["v2.3.0"], CHURN_ANSWERS, scratch / "new")
            floor_update(floor, old, new, scratch)

        floor_times.append(timed(bare))
    return update_times, floor_times, conflicts


def main() -> None:
    """Measure, then print the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache/bench"))
    args = parser.parse_args()
    entry_point = ccds_venvs(args.cache_dir.resolve())
    ccds = {v: entry_point.replace("{version}", v) for v in ("2.2.0", "2.3.0")}
    spec = CookiecutterSpec(
        name="data-science", source=str(BUNDLE), ref="v2.2.0", trusted=True,
        entry_point=entry_point,
    )  # fmt: skip
    source = CookiecutterSource(spec)
    with tempfile.TemporaryDirectory(prefix="trellis-bench-cc-") as scratch:
        work = Path(scratch)
        templates = {}
        for tag in ("v2.2.0", "v2.3.0"):
            templates[tag] = work / f"template-{tag}"
            run("git", "clone", "--quiet", BUNDLE, templates[tag])
            run("git", "-C", templates[tag], "checkout", "--quiet", tag)
        log(f"trellis new, ccds and the trellis command, {args.repeat} times each")
        news = measure_new(
            source, ccds["2.2.0"], templates["v2.2.0"], entry_point, work, args.repeat
        )
        generated = work / "generated"
        shutil.copytree(work / "new-0", generated)
        commit(generated, "Generated")
        edit(generated)
        commit(generated, "Edits")
        log(f"trellis update and the bare floor, {args.repeat} times each")
        update_times, floor_times, conflicts = measure_update(
            source, ccds, templates, generated, work, args.repeat
        )

    new_median = statistics.median(news["new"])
    ccds_median = statistics.median(news["ccds"])
    update_median = statistics.median(update_times)
    floor_median = statistics.median(floor_times)
    report = {
        "repeat": args.repeat,
        "new_median_seconds": round(new_median, 3),
        "ccds_median_seconds": round(ccds_median, 3),
        "cli_new_median_seconds": round(statistics.median(news["cli"]), 3),
        "new_over_ccds": round(new_median / ccds_median, 3),
        "update_median_seconds": round(update_median, 3),
        "floor_median_seconds": round(floor_median, 3),
        "update_over_floor": round(update_median / floor_median, 3),
        "update_conflicts": conflicts,
        "cruft_update": "not comparable: cruft renders cookiecutter.json; this template's "
        "questions are in ccds.json, for its own ccds command",
        "new_runs": [round(t, 3) for t in news["new"]],
        "ccds_runs": [round(t, 3) for t in news["ccds"]],
        "update_runs": [round(t, 3) for t in update_times],
        "floor_runs": [round(t, 3) for t in floor_times],
        "goal": {"new_over_ccds": GOAL},
        "met": {"new_over_ccds": new_median / ccds_median <= GOAL},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
