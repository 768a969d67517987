"""A built catalog as the bytes Backstage reads, with strong ETags.

The bytes are rendered once per snapshot, so a request only picks up prebuilt bytes; the
same catalog always renders to byte-identical YAML, so the ETag only changes when an entity
does and Backstage's ``If-None-Match`` re-reads get a cheap ``304``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from trellis.catalog.common import Entity
from trellis.catalog.entities import Catalog, Problem, Target
from trellis.yaml_text import dump_all

__all__ = ["CatalogDocument", "render_yaml"]


def render_yaml(entities: tuple[dict[str, object], ...] | list[dict[str, object]]) -> bytes:
    """Multi-document YAML, one entity per document, separated by ``---``."""
    return dump_all(entities).encode("utf-8")


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@dataclass(frozen=True, slots=True)
class CatalogDocument:
    """Prebuilt responses for one snapshot."""

    yaml: bytes
    yaml_etag: str
    json: bytes
    json_etag: str
    entity_count: int
    problems: tuple[Problem, ...]
    snapshot_taken_at: datetime
    model_count: int
    #: What each entity stands for (its model, its servers), for the observability routes.
    targets: Mapping[str, Target] = field(default_factory=dict)
    #: The entities themselves, for scorecards' filters and roll-ups.
    entities: tuple[Entity, ...] = ()

    @classmethod
    def build(cls, catalog: Catalog, *, taken_at: datetime, model_count: int) -> CatalogDocument:
        """Render both formats and their ETags."""
        yaml_body = render_yaml(catalog.entities)
        json_body = json.dumps(
            {"items": catalog.entities}, ensure_ascii=False, separators=(",", ":")
        ).encode("utf-8")
        return cls(
            yaml=yaml_body,
            yaml_etag=_etag(yaml_body),
            json=json_body,
            json_etag=_etag(json_body),
            entity_count=len(catalog.entities),
            problems=catalog.problems,
            snapshot_taken_at=taken_at,
            model_count=model_count,
            targets=catalog.targets,
            entities=catalog.entities,
        )
