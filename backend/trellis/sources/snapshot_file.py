"""The last good registry snapshot, kept on disk so that it survives a restart.

Backstage orphans and then deletes entities that vanish from a location, so when the
registry cannot be read Trellis serves this file's snapshot rather than an empty list.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from trellis.model import (
    ClusterRead,
    Condition,
    Deployment,
    ModelVersion,
    RegisteredModel,
    Snapshot,
)

__all__ = ["SnapshotFile"]

log = logging.getLogger(__name__)

FORMAT = 2
"""Format written; format 1 (models only, before deployments) is still read."""
_READABLE = {1, 2}


class SnapshotFile:
    """Reads and atomically replaces one JSON snapshot file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def save(self, snapshot: Snapshot) -> None:
        """Write to a temporary file and rename it, so a crash never leaves half a file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"format": FORMAT, "snapshot": _plain(snapshot)}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".snapshot-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(payload, out, ensure_ascii=False, separators=(",", ":"))
            Path(tmp).replace(self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load(self) -> Snapshot | None:
        """The kept snapshot, or None when there is none or it cannot be understood."""
        try:
            payload = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable snapshot %s: %s", self.path, exc)
            return None
        if not isinstance(payload, dict) or payload.get("format") not in _READABLE:
            log.warning("ignoring snapshot %s written in another format", self.path)
            return None
        try:
            return _snapshot(payload["snapshot"])
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("ignoring malformed snapshot %s: %s", self.path, exc)
            return None


def _plain(snapshot: Snapshot) -> dict[str, Any]:
    """JSON-ready data, built directly (``dataclasses.asdict`` deep-copies: 10x slower)."""
    return {
        "models": [
            {
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
            for m in snapshot.models
        ],
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


def _snapshot(raw: dict[str, Any]) -> Snapshot:
    return Snapshot(
        models=tuple(_model(m) for m in raw["models"]),
        taken_at=datetime.fromisoformat(raw["taken_at"]),
        registry=str(raw["registry"]),
        deployments=tuple(_deployment(d) for d in raw.get("deployments", ())),
        clusters={
            str(name): ClusterRead(
                cluster=str(name),
                ok=bool(c["ok"]),
                read_at=datetime.fromisoformat(c["read_at"]),
                error=c.get("error"),
            )
            for name, c in raw.get("clusters", {}).items()
        },
    )


def _deployment(raw: dict[str, Any]) -> Deployment:
    return Deployment(
        **{name: raw[name] for name in _DEPLOYMENT_SCALARS},
        conditions=tuple(Condition(**c) for c in raw["conditions"]),
        selector=dict(raw["selector"]),
        labels=dict(raw.get("labels", {})),
        # Optional within format 2: files written before it existed read as "not said".
        runs_as_non_root=raw.get("runs_as_non_root"),
    )


def _model(raw: dict[str, Any]) -> RegisteredModel:
    return RegisteredModel(
        name=raw["name"],
        description=raw["description"],
        tags=dict(raw["tags"]),
        aliases={k: int(v) for k, v in raw["aliases"].items()},
        created_at=datetime.fromisoformat(raw["created_at"]),
        updated_at=datetime.fromisoformat(raw["updated_at"]),
        versions=tuple(_version(v) for v in raw["versions"]),
    )


def _version(raw: dict[str, Any]) -> ModelVersion:
    return ModelVersion(
        model_name=raw["model_name"],
        version=int(raw["version"]),
        status=raw["status"],
        source=raw["source"],
        run_id=raw["run_id"],
        description=raw["description"],
        tags=dict(raw["tags"]),
        created_at=datetime.fromisoformat(raw["created_at"]),
        updated_at=datetime.fromisoformat(raw["updated_at"]),
    )
