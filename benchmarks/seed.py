"""Benchmark registries: an ordinary fleet written in bulk through MLflow's own SQL store.

``MlflowClient`` writes one model, version, tag or alias per transaction (about 21 s per
1,000 models x 3 versions on SQLite). Here the same rows are written with MLflow's own ORM
models (``mlflow.store.model_registry.dbmodels``), in one session of MLflow's
``SqlAlchemyStore`` that also created the schema, after the same validation the store
applies. The result is an ordinary MLflow database that ``mlflow server`` reads.

``python benchmarks/seed.py --check 40`` seeds the same fleet both ways and compares what
``MlflowClient`` reads back from the two databases (timestamps aside).

Registries are cached by model count: ``<cache>/registry-<N>.db`` and, next to it,
``registry-<N>.json`` saying how and how fast it was seeded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.registry import ModelSpec, fleet

__all__ = ["CHAMPION", "cached_registry", "fleet_specs", "seed_bulk", "version_source"]

#: Bump when the fleet's shape changes, so cached registries are seeded again.
LAYOUT = 1
CHAMPION = "champion"
_CHUNK = 1000


def fleet_specs(count: int) -> list[ModelSpec]:
    """The benchmark fleet (the tests' ``fleet``): ``model-00000``, ``model-00001``, ...

    Tags owner/system/data_classification/framework, three versions each and a ``champion``
    alias (version 2) on every other model.
    """
    return fleet(count)


def version_source(spec: ModelSpec, number: int) -> str:
    """A dummy artifact location the server accepts (no run needed for ``s3://``)."""
    return f"s3://models/{spec.name}/{number}"


def _version_tags(number: int) -> dict[str, str]:
    return {"git_commit": f"{number:040x}"}


def seed_bulk(
    uri: str, specs: Sequence[ModelSpec], *, progress: Callable[[int], None] | None = None
) -> None:
    """Write ``specs`` into the registry at ``uri`` (an ``sqlite:`` URI) in a few transactions.

    The rows are the ones ``create_registered_model``, ``create_model_version`` and
    ``set_registered_model_alias`` write, checked by the same validators.
    """
    from mlflow.store.model_registry.dbmodels.models import (
        SqlModelVersion,
        SqlModelVersionTag,
        SqlRegisteredModel,
        SqlRegisteredModelAlias,
        SqlRegisteredModelTag,
    )
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore
    from mlflow.utils.time import get_current_time_millis
    from mlflow.utils.validation import (
        _validate_model_alias_name,
        _validate_model_alias_name_reserved,
        _validate_model_name,
        _validate_model_version_tag,
        _validate_registered_model_tag,
    )

    store = SqlAlchemyStore(uri)  # creates and migrates the full MLflow schema
    own = store._with_workspace_field  # the default workspace, as the store's writes set it
    _validate_model_alias_name(CHAMPION)
    _validate_model_alias_name_reserved(CHAMPION)
    started = get_current_time_millis()
    done = 0
    for offset in range(0, len(specs), _CHUNK):
        chunk = specs[offset : offset + _CHUNK]
        rows: list[Any] = []
        for index, spec in enumerate(chunk, start=offset):
            _validate_model_name(spec.name)
            created = started + index * 10
            updated = created + spec.versions
            rows.append(
                own(
                    SqlRegisteredModel(
                        name=spec.name,
                        creation_time=created,
                        last_updated_time=updated,
                        description=spec.description,
                    )
                )
            )
            for key, value in spec.tags.items():
                _validate_registered_model_tag(key, value)
                rows.append(own(SqlRegisteredModelTag(name=spec.name, key=key, value=value)))
            for number in range(1, spec.versions + 1):
                source = version_source(spec, number)
                rows.append(
                    own(
                        SqlModelVersion(
                            name=spec.name,
                            version=number,
                            creation_time=created + number,
                            last_updated_time=created + number,
                            source=source,
                            storage_location=source,
                        )
                    )
                )
                for key, value in _version_tags(number).items():
                    _validate_model_version_tag(key, value)
                    rows.append(
                        own(
                            SqlModelVersionTag(name=spec.name, version=number, key=key, value=value)
                        )
                    )
            if spec.champion:
                if not 1 <= spec.champion <= spec.versions:
                    raise ValueError(f"{spec.name}: champion {spec.champion} is not a version")
                rows.append(
                    own(
                        SqlRegisteredModelAlias(
                            name=spec.name, alias=CHAMPION, version=spec.champion
                        )
                    )
                )
        with store.ManagedSessionMaker(read_only=False) as session:
            session.add_all(rows)
        done += len(chunk)
        if progress:
            progress(done)
    store.engine.dispose()


def cached_registry(
    cache_dir: Path, count: int, *, log: Callable[[str], None] = print
) -> tuple[Path, dict[str, Any]]:
    """The cached registry of ``count`` models, seeded now when missing; and how it was made."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    db = cache_dir / f"registry-{count}.db"
    info_path = cache_dir / f"registry-{count}.json"
    info: dict[str, Any] | None = None
    if db.exists() and info_path.exists():
        info = json.loads(info_path.read_text())
        if info.get("layout") == LAYOUT:
            log(f"reusing {db} (seeded in {info['seed_seconds']:.1f} s)")
            return db, {**info, "cached": True}
        log(f"{db} has an old layout; seeding again")
    specs = fleet_specs(count)
    # Seed into a temporary file and rename it, so an interrupted run leaves no half registry.
    fd, tmp_name = tempfile.mkstemp(dir=cache_dir, prefix=f".registry-{count}-", suffix=".db")
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    log(f"seeding {count} models x 3 versions into {db} (MLflow SQL store, bulk)")
    started = time.perf_counter()
    try:
        seed_bulk(
            f"sqlite:///{tmp}",
            specs,
            progress=lambda n: log(f"  seeded {n}/{count} models"),
        )
        seconds = time.perf_counter() - started
        tmp.replace(db)
    finally:
        tmp.unlink(missing_ok=True)
    import mlflow

    info = {
        "layout": LAYOUT,
        "models": count,
        "versions": sum(s.versions for s in specs),
        "aliases": sum(1 for s in specs if s.champion),
        "seed_seconds": round(seconds, 2),
        "method": "bulk rows through mlflow SqlAlchemyStore session",
        "mlflow": mlflow.__version__,
    }
    info_path.write_text(json.dumps(info, indent=2) + "\n")
    log(f"seeded in {seconds:.1f} s")
    return db, {**info, "cached": False}


def _read_back(uri: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What a client reads from the registry, with timestamps removed."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    models = [
        {
            "name": m.name,
            "description": m.description,
            "tags": m.tags,
            "aliases": m.aliases,
            "latest": sorted((v.version, v.current_stage, v.status) for v in m.latest_versions),
        }
        for m in client.search_registered_models(max_results=1000)
    ]
    versions = sorted(
        (
            {
                "name": v.name,
                "version": int(v.version),
                "source": v.source,
                "run_id": v.run_id,
                "status": v.status,
                "stage": v.current_stage,
                "tags": v.tags,
                "aliases": sorted(v.aliases),
                "download_uri": client.get_model_version_download_uri(v.name, v.version),
            }
            for v in client.search_model_versions(max_results=10_000)
        ),
        key=lambda v: (v["name"], v["version"]),
    )
    for spec_model in models:
        for alias, version in spec_model["aliases"].items():
            got = client.get_model_version_by_alias(spec_model["name"], alias)
            assert int(got.version) == int(version), (spec_model["name"], alias)
    return models, versions


def check(count: int) -> bool:
    """Seed ``count`` models with ``MlflowClient`` and in bulk; compare what reads back."""
    from support.registry import seed

    specs = fleet_specs(count)
    with tempfile.TemporaryDirectory() as tmp:
        slow_uri = f"sqlite:///{Path(tmp) / 'client.db'}"
        fast_uri = f"sqlite:///{Path(tmp) / 'bulk.db'}"
        started = time.perf_counter()
        seed(slow_uri, specs)
        slow = time.perf_counter() - started
        started = time.perf_counter()
        seed_bulk(fast_uri, specs)
        fast = time.perf_counter() - started
        a_models, a_versions = _read_back(slow_uri)
        b_models, b_versions = _read_back(fast_uri)
    # The client path's sources carry a per-process hash; compare their shape only.
    for version in a_versions + b_versions:
        version["source"] = version["source"].rsplit("/", 1)[-1]
        version["download_uri"] = version["download_uri"].rsplit("/", 1)[-1]
    same = a_models == b_models and a_versions == b_versions
    print(
        f"{count} models: MlflowClient {slow:.1f} s, bulk {fast:.2f} s; read back "
        f"{len(b_models)} models, {len(b_versions)} versions: "
        f"{'identical' if same else 'DIFFERENT'}",
        file=sys.stderr,
    )
    return same


def main(argv: list[str] | None = None) -> int:
    """``--check N``: compare bulk seeding with the client; else seed into the cache."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache/bench"))
    parser.add_argument("--check", type=int, metavar="N", help="compare with MlflowClient")
    args = parser.parse_args(argv)
    if args.check:
        return 0 if check(args.check) else 1
    db, info = cached_registry(
        args.cache_dir, args.models, log=lambda line: print(line, file=sys.stderr)
    )
    print(json.dumps({"db": str(db), **info}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
