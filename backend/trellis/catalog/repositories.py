"""A generated repository as the catalog knows it, for scoring its blueprint currency.

Trellis does not emit these Components (each repository's own ``catalog-info.yaml`` does);
it only needs one to name the entity a ``blueprint`` fact belongs to and to match the
scorecards' filters.
"""

from __future__ import annotations

from pathlib import Path

from trellis.catalog.common import API_VERSION, Entity
from trellis.entity_refs import parse_ref, stringify_ref
from trellis.model import BlueprintInstance

__all__ = ["BLUEPRINT_ANNOTATION", "repository_entity"]

BLUEPRINT_ANNOTATION = "trellis.dev/blueprint"


def repository_entity(instance: BlueprintInstance) -> tuple[str, Entity]:
    """A generated repository's Component as far as Trellis knows it: ref and annotation.

    Its ref is the one the repository records, else a Component named after its folder.
    """
    kind, namespace, name = parse_ref(instance.entity_ref or Path(instance.location).name)
    entity: Entity = {
        "apiVersion": API_VERSION,
        "kind": kind.capitalize(),
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {BLUEPRINT_ANNOTATION: instance.blueprint},
        },
        "spec": {},
    }
    return stringify_ref(kind, namespace, name), entity
