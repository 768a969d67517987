"""The last good registry snapshot, kept on disk so that it survives a restart.

Backstage orphans and then deletes entities that vanish from a location, so when the
registry cannot be read Trellis serves this file's snapshot rather than an empty list.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from trellis.model import (
    ClusterRead,
    Deployment,
    RegisteredModel,
    Snapshot,
)
from trellis.ports import SetAside
from trellis.sources.bad_files import schema_problems, set_aside

__all__ = ["SnapshotFile"]

log = logging.getLogger(__name__)

FORMAT = 2
"""Format written; format 1 (models only, before deployments) is still read."""


class SnapshotFile:
    """Reads and atomically replaces one JSON snapshot file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        #: Files found unfit and renamed, for ``/readyz``.
        self.set_aside: list[SetAside] = []
        self._model_texts: dict[str, tuple[RegisteredModel, str]] = {}

    def save(self, snapshot: Snapshot) -> None:
        """Write to a temporary file and rename it, so a crash never leaves half a file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = self._text(snapshot)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".snapshot-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            Path(tmp).replace(self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _text(self, snapshot: Snapshot) -> str:
        """The file's JSON: each model's text is kept and written again while it is equal.

        A refresh that changed one model of 10,000 then serialises one model, not all.
        """
        texts: dict[str, tuple[RegisteredModel, str]] = {}
        models: list[str] = []
        for model in snapshot.models:
            kept = self._model_texts.get(model.name)
            if kept is None or not (kept[0] is model or kept[0] == model):
                kept = (model, _dumps(_plain_model(model)))
            texts[model.name] = kept
            models.append(kept[1])
        self._model_texts = texts
        rest = _dumps(_plain(snapshot))  # the same object as written whole, but its models
        return (
            f'{{"format":{FORMAT},"snapshot":{{"models":['
            + ",".join(models)
            + "],"
            + rest[1:]
            + "}"
        )

    def load(self) -> Snapshot | None:
        """The kept snapshot, or None when there is none or it does not fit the schema.

        A file that does not fit (not JSON, a wrong type, a time without a time zone, an
        unknown format) is set aside with its reasons logged: the service then starts from
        the registry, and the file stays for a person to look at.
        """
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("ignoring unreadable snapshot %s: %s", self.path, exc.strerror or exc)
            return None
        try:
            kept = _File.model_validate_json(raw)
        except ValidationError as exc:
            self._set_aside("does not fit the snapshot schema: " + "; ".join(schema_problems(exc)))
            return None
        return kept.snapshot.to_domain()

    def _set_aside(self, reason: str) -> None:
        try:
            self.set_aside.append(set_aside(self.path, reason))
        except OSError as exc:  # the next good read replaces it; say so, and start anyway
            log.error("cannot set aside snapshot %s (%s): %s", self.path, exc.strerror, reason)


def _plain_model(m: RegisteredModel) -> dict[str, Any]:
    """One model, JSON-ready."""
    return {
        "name": m.name,
        "description": m.description,
        "tags": dict(m.tags),
        "aliases": dict(m.aliases),
        "created_at": m.created_at.isoformat(),
        "updated_at": m.updated_at.isoformat(),
        "versions": [
            {
                "model_name": v.model_name,
                "version": v.version,
                "status": v.status,
                "source": v.source,
                "run_id": v.run_id,
                "description": v.description,
                "tags": dict(v.tags),
                "created_at": v.created_at.isoformat(),
                "updated_at": v.updated_at.isoformat(),
            }
            for v in m.versions
        ],
    }


def _plain(snapshot: Snapshot) -> dict[str, Any]:
    """JSON-ready data but the models, built directly (``dataclasses.asdict`` deep-copies)."""
    return {
        "taken_at": snapshot.taken_at.isoformat(),
        "registry": snapshot.registry,
        "deployments": [
            {
                **{name: getattr(d, name) for name in _DEPLOYMENT_SCALARS},
                "conditions": [
                    {"type": c.type, "status": c.status, "reason": c.reason, "message": c.message}
                    for c in d.conditions
                ],
                "selector": dict(d.selector),
                "labels": dict(d.labels),
                "runs_as_non_root": d.runs_as_non_root,
                "adapters": list(d.adapters),
            }
            for d in snapshot.deployments
        ],
        "clusters": {
            name: {
                "ok": read.ok,
                "read_at": read.read_at.isoformat(),
                "error": read.error,
            }
            for name, read in snapshot.clusters.items()
        },
    }


def _dumps(data: object) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


_DEPLOYMENT_SCALARS = (
    "cluster",
    "region",
    "namespace",
    "name",
    "kind",
    "runtime",
    "model_name",
    "model_version",
    "ready_replicas",
    "desired_replicas",
    "gpu_requests",
    "gpu_limits",
    "gpu_product",
    "url",
    "network_policy",
)


class _Strict(BaseModel):
    """Exact JSON types, as ``save`` writes them: nothing is coerced or guessed.

    Unknown keys are ignored, so a file written by a newer Trellis of the same format is
    still read after a rollback.
    """

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


class _ClusterRead(_Strict):
    ok: bool
    read_at: AwareDatetime
    error: str | None = None


class _Snapshot(_Strict):
    # Read straight into the domain's dataclasses, as strictly: their fields are the file's.
    models: list[RegisteredModel]
    taken_at: AwareDatetime
    registry: str
    # Optional within format 2: ``labels``, ``runs_as_non_root`` (read as "not said"),
    # ``adapters`` (read as none).
    deployments: list[Deployment] = []  # format 1 had none
    clusters: dict[str, _ClusterRead] = {}

    def to_domain(self) -> Snapshot:
        return Snapshot(
            models=tuple(self.models),
            taken_at=_utc(self.taken_at),
            registry=self.registry,
            deployments=tuple(self.deployments),
            clusters={
                name: ClusterRead(name, ok=c.ok, read_at=_utc(c.read_at), error=c.error)
                for name, c in self.clusters.items()
            },
        )


class _File(_Strict):
    format: Literal[1, 2]  # 1: models only, before deployments
    snapshot: _Snapshot
