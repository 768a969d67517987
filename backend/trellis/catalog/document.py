"""A built catalog as the bytes Backstage reads, with strong ETags.

The bytes are rendered once per snapshot, so a request only picks up prebuilt bytes; the
same catalog always renders to byte-identical YAML, so the ETag only changes when an entity
does and Backstage's ``If-None-Match`` re-reads get a cheap ``304``.

Each entity is one YAML document and one JSON array item, so the bodies are the entities'
texts joined: with a ``RenderCache`` only the entities that changed are rendered again, and
the bytes are those of rendering the whole list at once (PyYAML's ``dump_all`` writes each
document as ``dump`` writes it alone, opened with ``---``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from trellis.catalog.common import Entity
from trellis.catalog.entities import Catalog, Problem, Target
from trellis.yaml_text import dump_all

__all__ = ["CatalogDocument", "RenderCache", "render_yaml"]

_JSON_OPEN = b'{"items":['
_JSON_CLOSE = b"]}"


def render_yaml(entities: tuple[dict[str, object], ...] | list[dict[str, object]]) -> bytes:
    """Multi-document YAML, one entity per document, separated by ``---``."""
    return dump_all(entities).encode("utf-8")


def _json(entity: Entity) -> bytes:
    return json.dumps(entity, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class RenderCache:
    """Each entity's JSON and YAML texts from the latest render, to reuse in the next one.

    A text is found by the entity object itself (an entity handed to a render is never
    changed afterwards: ``CatalogBuilder`` keeps that promise), else by the entity's JSON
    text, which says everything its YAML depends on. Only the latest render's texts are kept.
    """

    def __init__(self) -> None:
        self._by_object: dict[int, tuple[Entity, bytes, bytes]] = {}
        self._by_json: dict[bytes, bytes] = {}
        #: Entities rendered (not found) by the latest ``texts``.
        self.rendered = 0

    def texts(self, entities: Sequence[Entity]) -> tuple[list[bytes], list[bytes]]:
        """The JSON and the YAML text of each entity, rendering only those not kept."""
        by_object: dict[int, tuple[Entity, bytes, bytes]] = {}
        by_json: dict[bytes, bytes] = {}
        json_texts: list[bytes] = []
        yaml_texts: list[bytes] = []
        rendered = 0
        for entity in entities:
            kept = self._by_object.get(id(entity))
            if kept is not None and kept[0] is entity:
                json_text, yaml_text = kept[1], kept[2]
            else:
                json_text = _json(entity)
                found = self._by_json.get(json_text) or by_json.get(json_text)
                if found is None:
                    found = render_yaml((entity,))
                    rendered += 1
                yaml_text = found
            by_object[id(entity)] = (entity, json_text, yaml_text)
            by_json[json_text] = yaml_text
            json_texts.append(json_text)
            yaml_texts.append(yaml_text)
        self._by_object, self._by_json, self.rendered = by_object, by_json, rendered
        return json_texts, yaml_texts


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
    def build(
        cls,
        catalog: Catalog,
        *,
        taken_at: datetime,
        model_count: int,
        cache: RenderCache | None = None,
    ) -> CatalogDocument:
        """Render both formats and their ETags; with ``cache``, only the entities not kept."""
        if cache is None:
            yaml_body = render_yaml(catalog.entities)
            json_body = json.dumps(
                {"items": catalog.entities}, ensure_ascii=False, separators=(",", ":")
            ).encode("utf-8")
        else:
            json_texts, yaml_texts = cache.texts(catalog.entities)
            yaml_body = b"".join(yaml_texts)
            json_body = _JSON_OPEN + b",".join(json_texts) + _JSON_CLOSE
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
