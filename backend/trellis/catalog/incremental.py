"""The catalog rebuilt paying only for what changed: the same result as ``build_catalog``.

A change to one model of 10,000 used to rebuild every entity. ``CatalogBuilder`` keeps, per
registered model, what the default transformer made of it, keyed on everything that entity
depends on: the model itself (compared by value, so a fresh read of an unchanged model hits),
its entity name and its system's entity name. Names are decided over the whole set, as
``build_catalog`` decides them (a new model can give another model a hash suffix), so the
names are recomputed whenever the set of names changes, and every model whose name moved is
made again. What depends on several models at once (lineage between adapters and their base
models, served regions and versions, System owners, the servers' entities) is recomputed
from the kept parts, on copies: a kept entity is never changed after it is made, so the
renderer may key its texts on the entity object itself.

The result is equal to ``build_catalog``'s for the same snapshot and options, entities,
problems and targets alike; ``tests/unit/catalog/test_incremental.py`` compares the two over
many random changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from trellis.catalog.common import Entity, Problem
from trellis.catalog.document import RenderCache
from trellis.catalog.entities import (
    Catalog,
    CatalogOptions,
    Naming,
    Target,
    _adapter_entities,
    _annotate,
    _completed,
    _model_entity,
    _servers_by_model,
    _systems,
    _valid,
    model_resource,
    system_tag,
)
from trellis.catalog.lineage import link_lineage
from trellis.catalog.names import entity_names
from trellis.catalog.servers import (
    ModelEntity,
    ServerEntities,
    model_finder,
    served_annotations,
    server_entities,
)
from trellis.entity_refs import ref_of
from trellis.model import Deployment, ModelKind, ModelTags, RegisteredModel, Snapshot

__all__ = ["CatalogBuilder"]


@dataclass(frozen=True, slots=True)
class _Unit:
    """What one model's Resource was made from and what came of it; never changed."""

    model: RegisteredModel
    name: str
    system: str | None
    #: The system tag as the Naming keys it ("" without one).
    system_tag: str
    resource: Entity
    problems: tuple[Problem, ...]
    #: The problem validation reports for ``resource`` as it is (None: valid).
    invalid: Problem | None
    owner: ModelEntity
    ref: str | None
    adapter: bool
    target: Target


@dataclass(slots=True)
class _Servers:
    """The servers' entities for one set of deployments and the Resources they inherit from."""

    key: tuple[object, ...]
    servers: list[ServerEntities]
    problems: list[Problem]


@dataclass
class CatalogBuilder:
    """Builds catalogs for successive snapshots, remaking only the entities that changed."""

    options: CatalogOptions
    #: The rendered texts of the latest entities, for ``CatalogDocument.build``.
    render_cache: RenderCache = field(default_factory=RenderCache)
    _units: dict[str, _Unit] = field(default_factory=dict, init=False)
    _model_names: tuple[tuple[str, ...], dict[str, str]] | None = field(default=None, init=False)
    _system_names: tuple[frozenset[str], dict[str, str]] | None = field(default=None, init=False)
    _servers: _Servers | None = field(default=None, init=False)

    def build(self, snapshot: Snapshot) -> Catalog:
        """The catalog of ``snapshot``: equal to ``build_catalog(snapshot, self.options)``."""
        models = snapshot.models
        naming, units = self._units_of(models)
        work = _Round(
            models, units, [unit.resource for unit in units], _Finder(models, naming.models)
        )
        adapters = [i for i, unit in enumerate(units) if unit.adapter]
        if adapters:
            self._link(work, adapters)
        if snapshot.deployments:
            self._serve(work, snapshot.deployments)
        systems = (
            _systems(work.resources, naming, self.options) if self.options.emit_systems else []
        )
        return _assemble(work, systems)

    def _units_of(self, models: Sequence[RegisteredModel]) -> tuple[Naming, list[_Unit]]:
        """The names of the whole set, and each model's unit: kept when its inputs are equal."""
        kept = [self._kept(model) for model in models]
        tags = [
            unit.system_tag if unit is not None else system_tag(model)
            for model, unit in zip(models, kept, strict=True)
        ]
        naming = Naming(
            models=self._names_of_models(tuple(m.name for m in models)),
            systems=self._names_of_systems(frozenset(filter(None, tags))),
        )
        units = [
            unit if unit is not None and self._fits(unit, naming) else self._unit(model, naming)
            for model, unit in zip(models, kept, strict=True)
        ]
        self._units = {unit.model.name: unit for unit in units}
        return naming, units

    # ------------------------------------------------------------------ per model

    def _kept(self, model: RegisteredModel) -> _Unit | None:
        """The kept unit of a model equal to ``model`` (names not checked yet), or None."""
        unit = self._units.get(model.name)
        if unit is None or not (unit.model is model or unit.model == model):
            return None
        return unit

    @staticmethod
    def _fits(unit: _Unit, naming: Naming) -> bool:
        system = naming.systems[unit.system_tag] if unit.system_tag else None
        return unit.name == naming.models[unit.model.name] and unit.system == system

    def _unit(self, model: RegisteredModel, naming: Naming) -> _Unit:
        problems: list[Problem] = []
        resource = model_resource(model, naming, self.options, problems)
        invalid: list[Problem] = []
        _valid(resource, invalid)
        tag = system_tag(model)
        return _Unit(
            model=model,
            name=naming.models[model.name],
            system=naming.systems[tag] if tag else None,
            system_tag=tag,
            resource=resource,
            problems=tuple(problems),
            invalid=invalid[0] if invalid else None,
            owner=_model_entity(model, resource, self.options),
            ref=ref_of(resource),
            adapter=model.kind == ModelKind.ADAPTER,
            target=Target(model, ()),
        )

    # ------------------------------------------------------------------ whole-set parts

    def _names_of_models(self, names: tuple[str, ...]) -> dict[str, str]:
        if self._model_names is None or self._model_names[0] != names:
            self._model_names = (names, entity_names(names))
        return self._model_names[1]

    def _names_of_systems(self, tags: frozenset[str]) -> dict[str, str]:
        if self._system_names is None or self._system_names[0] != tags:
            self._system_names = (tags, entity_names(tags))
        return self._system_names[1]

    @staticmethod
    def _link(work: _Round, adapters: list[int]) -> None:
        """``link_lineage`` over the adapters and their parents only, on copies, in order."""
        models, find = work.models, work.find
        involved = set(adapters)
        for i in adapters:
            parent_name = models[i].lineage_tag(ModelTags.PARENT_MODEL)
            parent = find(parent_name) if parent_name else None
            if parent is not None:
                involved.add(find.position[parent.name])
        order = sorted(involved)
        for i in order:
            work.change(i)
        resources = [work.resources[i] for i in order]
        link_lineage([models[i] for i in order], resources, find, work.lineage_problems)

    def _serve(self, work: _Round, deployments: Sequence[Deployment]) -> None:
        """Served regions and versions on the Resources, and the servers' own entities."""
        linked = [work.find(d.model_name) for d in deployments]
        work.served, work.as_adapter = _servers_by_model(deployments, linked, work.find)
        for name in sorted({*work.served, *work.as_adapter}):
            i = work.find.position[name]
            served, as_adapter = work.served.get(name, ()), work.as_adapter.get(name, ())
            extra = served_annotations(work.models[i], served, as_adapter)
            if extra:
                _annotate(work.change(i), extra)
        owners = {unit.model.name: unit.owner for unit in work.units}
        models = [owners.get(m.name) if m is not None else None for m in linked]
        loads = [_adapter_entities(d, work.find, owners) for d in deployments]
        key = (tuple(deployments), tuple(models), tuple(tuple(sorted(x.items())) for x in loads))
        if self._servers is None or self._servers.key != key:
            problems: list[Problem] = []
            servers = server_entities(
                deployments,
                models,
                namespace=self.options.namespace,
                fallback_owner=self.options.fallback_owner,
                problems=problems,
                adapters=loads,
            )
            self._servers = _Servers(key, servers, problems)
        work.servers, work.server_problems = self._servers.servers, self._servers.problems


@dataclass(slots=True)
class _Round:
    """One build's working state: the resources as changed so far, and what changed them."""

    models: Sequence[RegisteredModel]
    units: list[_Unit]
    resources: list[Entity]
    find: _Finder
    #: Positions whose resource is a copy changed by lineage or servers.
    changed: set[int] = field(default_factory=set)
    lineage_problems: list[Problem] = field(default_factory=list)
    served: dict[str, list[Deployment]] = field(default_factory=dict)
    as_adapter: dict[str, list[Deployment]] = field(default_factory=dict)
    servers: list[ServerEntities] = field(default_factory=list)
    server_problems: list[Problem] = field(default_factory=list)

    def change(self, i: int) -> Entity:
        """The resource at ``i``, copied first unless this round copied it already."""
        if i not in self.changed:
            self.resources[i] = _copy(self.resources[i])
            self.changed.add(i)
        return self.resources[i]


def _assemble(work: _Round, systems: list[Entity]) -> Catalog:
    """Valid entities in ``build_catalog``'s order, and problems in the order it finds them."""
    problems: list[Problem] = [p for unit in work.units for p in unit.problems]
    problems += work.lineage_problems
    problems += work.server_problems
    entities: list[Entity] = []
    targets: dict[str, Target] = {}
    for i, (model, unit) in enumerate(zip(work.models, work.units, strict=True)):
        resource = work.resources[i]
        if i in work.changed:
            valid = _valid(resource, problems)
        else:
            valid = unit.invalid is None
            if unit.invalid is not None:
                problems.append(unit.invalid)
        if valid:
            entities.append(resource)
            if unit.ref:
                serving = (*work.served.get(model.name, ()), *work.as_adapter.get(model.name, ()))
                targets[unit.ref] = Target(model, serving) if serving else unit.target
    return _completed(entities, systems, work.servers, problems, targets)


class _Finder:
    """``model_finder`` over the current models, whose lookup tables are built on first use."""

    def __init__(self, models: Sequence[RegisteredModel], names: Mapping[str, str]) -> None:
        self._models = models
        self._names = names
        self._find: Callable[[str | None], RegisteredModel | None] | None = None
        self._position: dict[str, int] | None = None

    @property
    def position(self) -> dict[str, int]:
        """Each model's position in the snapshot, by MLflow name."""
        if self._position is None:
            self._position = {model.name: i for i, model in enumerate(self._models)}
        return self._position

    def __call__(self, name: str | None) -> RegisteredModel | None:
        if self._find is None:
            self._find = model_finder(self._models, self._names)
        return self._find(name)


def _copy(resource: Entity) -> Entity:
    """A copy whose mappings lineage and served annotations may change (they change no more)."""
    copy = dict(resource)
    if "metadata" in resource:
        copy["metadata"] = dict(resource["metadata"])
    if "spec" in resource:
        copy["spec"] = dict(resource["spec"])
    return copy
