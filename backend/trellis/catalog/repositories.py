"""A generated repository as the catalog knows it, for scoring its blueprint currency.

Trellis does not emit these Components (each repository's own ``catalog-info.yaml`` does);
it only needs one to name the entity a ``blueprint`` fact belongs to and to match the
scorecards' filters.
"""

from __future__ import annotations

from pathlib import Path

from trellis import annotations as ann
from trellis.catalog.common import Entity
from trellis.entity_refs import parse_ref, stringify_ref
from trellis.model import BlueprintInstance

__all__ = ["repository_entity"]


def repository_entity(instance: BlueprintInstance) -> tuple[str, Entity]:
    """A generated repository's Component as far as Trellis knows it: ref and annotation.

    Its ref is the one the repository records, else a Component named after its folder.
    """
    kind, namespace, name = parse_ref(instance.entity_ref or Path(instance.location).name)
    entity: Entity = {
        "apiVersion": ann.API_VERSION,
        "kind": kind.capitalize(),
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {ann.BLUEPRINT: instance.blueprint},
        },
        "spec": {},
    }
    return stringify_ref(kind, namespace, name), entity
