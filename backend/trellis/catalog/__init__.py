"""Backstage catalog entities derived from the domain: pure functions, no I/O."""

from trellis.catalog.document import CatalogDocument, RenderCache, render_yaml
from trellis.catalog.entities import (
    Catalog,
    CatalogOptions,
    Naming,
    Problem,
    Target,
    build_catalog,
    model_resource,
)
from trellis.catalog.incremental import CatalogBuilder
from trellis.catalog.names import entity_names
from trellis.catalog.validation import entity_problems

__all__ = [
    "Catalog",
    "CatalogBuilder",
    "CatalogDocument",
    "CatalogOptions",
    "Naming",
    "Problem",
    "RenderCache",
    "Target",
    "build_catalog",
    "entity_names",
    "entity_problems",
    "model_resource",
    "render_yaml",
]
