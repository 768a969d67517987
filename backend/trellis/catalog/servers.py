"""Model servers as Backstage entities: per server, a ``Component`` and the ``API`` it provides.

A server found in Kubernetes becomes a ``Component`` of ``spec.type: model-server`` that
``dependsOn`` its model's ``Resource`` (and the Resource of each LoRA adapter it loads) and
``providesApis`` its ``API`` (the Open Inference Protocol for KServe and Triton, the
OpenAI-compatible API for vLLM). Both take owner,
system and lifecycle from the model's Resource, so a team sees its servers next to its
models. They carry the annotations existing plugins read: Backstage's Kubernetes plugin
(``backstage.io/kubernetes-*``) and Roadie's Prometheus plugin (``prometheus.io/rule``).

Names come from the model and the region (``fraud-detector-eu-west-1``); when two servers
would share one, the cluster, then the namespace and name, are added to each of them, and
:func:`~trellis.catalog.names.entity_names` makes the result valid and unique.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from trellis import annotations as ann
from trellis.catalog.api_definitions import api_definition
from trellis.catalog.common import Entity, Problem, clean
from trellis.catalog.names import entity_names, fold_tag
from trellis.entity_refs import stringify_ref
from trellis.model import Deployment, RegisteredModel, Runtime
from trellis.observability.queries import roadie_rules
from trellis.redact import scrub_url

__all__ = [
    "MODEL_SERVER",
    "ModelEntity",
    "ServerEntities",
    "model_finder",
    "served_annotations",
    "server_entities",
]

MODEL_SERVER = "model-server"
_EXPERIMENTAL = "experimental"
_RUNTIME_TITLES = {
    Runtime.MLSERVER: "KServe MLServer",
    Runtime.TRITON: "Triton",
    Runtime.VLLM: "vLLM",
    Runtime.CUSTOM: "custom",
}
# Kubernetes label syntax: what Backstage's Kubernetes plugin can put into a selector.
_LABEL_NAME = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_LABEL_VALUE = re.compile(rf"^(?:{_LABEL_NAME})?$")
_LABEL_KEY = re.compile(
    rf"^(?:[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*/)?{_LABEL_NAME}$"
)
_DNS_LABEL = re.compile(r"^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$")

RuleMaker = Callable[[Deployment], list[tuple[str, str]]]


@dataclass(frozen=True, slots=True)
class ModelEntity:
    """The Resource a server's model became: what the server's entities inherit from it."""

    model: RegisteredModel
    ref: str
    name: str
    owner: str
    lifecycle: str
    system: str | None = None


@dataclass(frozen=True, slots=True)
class ServerEntities:
    """One server's entities, and the model they were linked to (None: no known model)."""

    deployment: Deployment
    model: ModelEntity | None
    component: Entity
    api: Entity


def model_finder(
    models: Sequence[RegisteredModel], entity_names_of: Mapping[str, str]
) -> Callable[[str | None], RegisteredModel | None]:
    """A lookup of the registered model a server, or an adapter, names.

    A name is the MLflow name (exactly, else ignoring case when that is unambiguous) or the
    model's entity name, which is what a Kubernetes label can hold.
    """
    exact = {m.name: m for m in models}
    by_case: dict[str, list[RegisteredModel]] = defaultdict(list)
    for model in models:
        by_case[model.name.casefold()].append(model)
    by_entity = {entity_names_of[m.name].lower(): m for m in models if m.name in entity_names_of}

    def find(name: str | None) -> RegisteredModel | None:
        if not name:
            return None
        found = exact.get(name)
        if found is None and len(by_case.get(name.casefold(), ())) == 1:
            found = by_case[name.casefold()][0]
        return found if found is not None else by_entity.get(name.lower())

    return find


def server_entities(
    deployments: Sequence[Deployment],
    models: Sequence[ModelEntity | None],
    *,
    namespace: str,
    fallback_owner: str,
    problems: list[Problem],
    adapters: Sequence[Mapping[str, ModelEntity]] | None = None,
    rules: RuleMaker = roadie_rules,
) -> list[ServerEntities]:
    """A Component and an API per server (``models`` is aligned with ``deployments``).

    ``adapters`` (aligned too) maps each adapter name a server loads to the adapter's
    Resource; the Component depends on those as it does on its base model.
    """
    names = _names(deployments, models)
    loads = adapters if adapters is not None else [{} for _ in deployments]
    result = []
    for deployment, model, (name, with_cluster), found in zip(
        deployments, models, names, loads, strict=True
    ):
        base = model.model.name if model else (deployment.model_name or deployment.name)
        title = f"{clean(base)} in {clean(deployment.region)}"
        if with_cluster:
            title += f" ({clean(deployment.cluster)})"
        component_ref = stringify_ref("component", namespace, name)
        api_ref = stringify_ref("api", namespace, name)
        spec: Entity = {
            "lifecycle": model.lifecycle if model else _EXPERIMENTAL,
            "owner": model.owner if model else fallback_owner,
        }
        if model and model.system:
            spec["system"] = model.system
        if model is None:
            problems.append(_unlinked(deployment, component_ref))
        depends = [model.ref] if model else []
        for adapter in deployment.adapters:
            if adapter in found:
                depends.append(found[adapter].ref)
            else:
                problems.append(_unknown_adapter(deployment, adapter, component_ref))
        annotations = _annotations(deployment, model, component_ref, problems, rules)
        component = {
            "apiVersion": ann.API_VERSION,
            "kind": "Component",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "title": title,
                "description": _description(deployment, model),
                "tags": _tags(deployment),
                "annotations": annotations,
                **_links(deployment),
            },
            "spec": {
                "type": MODEL_SERVER,
                **spec,
                **({"dependsOn": list(dict.fromkeys(depends))} if depends else {}),
                "providesApis": [api_ref],
            },
        }
        api_type, definition = api_definition(
            deployment.runtime,
            title=f"{title} inference API",
            model=clean(deployment.model_name or base),
            url=_http_url(deployment.url),
            kserve=deployment.kind == "InferenceService",
        )
        api = {
            "apiVersion": ann.API_VERSION,
            "kind": "API",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "title": f"{title} inference API",
                "description": f"The inference API of the model server {title}.",
                "annotations": {
                    key: annotations[key]
                    for key in (ann.CLUSTER, ann.REGION, ann.RUNTIME, ann.REGISTERED_MODEL)
                    if key in annotations
                },
            },
            "spec": {"type": api_type, **spec, "definition": definition},
        }
        result.append(ServerEntities(deployment, model, component, api))
    return result


def served_annotations(
    model: RegisteredModel,
    deployments: Sequence[Deployment],
    as_adapter: Sequence[Deployment] = (),
) -> dict[str, str]:
    """On a model's Resource: the regions and versions its servers serve, comma-separated.

    ``as_adapter`` are servers that load the model as an adapter of their base model: they
    add regions, but the version they name is their base model's.
    """
    if not deployments and not as_adapter:
        return {}
    regions = sorted({clean(d.region) for d in (*deployments, *as_adapter)})
    versions: set[str] = set()
    for deployment in deployments:
        number, alias = _version(deployment.model_version, model)
        if number or alias:
            versions.add(number or clean(alias or ""))
    ordered = sorted(versions, key=lambda v: (not v.isdigit(), int(v) if v.isdigit() else 0, v))
    result = {ann.SERVED_REGIONS: ",".join(regions)}
    if ordered:
        result[ann.SERVED_VERSIONS] = ",".join(ordered)
    return result


# --------------------------------------------------------------------------- names


def _names(
    deployments: Sequence[Deployment], models: Sequence[ModelEntity | None]
) -> list[tuple[str, bool]]:
    """Each server's entity name and whether its cluster had to be part of it."""
    levels = [
        _candidates(d, m.name if m else (d.model_name or d.name))
        for d, m in zip(deployments, models, strict=True)
    ]
    chosen = [0] * len(levels)
    for level in range(1, 4):
        counts = Counter(candidates[chosen[i]] for i, candidates in enumerate(levels))
        clashing = [i for i, c in enumerate(levels) if counts[c[chosen[i]]] > 1]
        if not clashing:
            break
        for i in clashing:
            chosen[i] = level
    wanted = [candidates[chosen[i]] for i, candidates in enumerate(levels)]
    counts = Counter(wanted)
    for i, text in enumerate(wanted):  # identical servers in name only: the last resort
        if counts[text] > 1:
            wanted[i] = f"{text}-{i}"
    names = entity_names(wanted)
    return [(names[text], chosen[i] > 0) for i, text in enumerate(wanted)]


def _candidates(deployment: Deployment, base: str) -> tuple[str, str, str, str]:
    d = deployment
    region = f"{base}-{d.region}"
    cluster = f"{region}-{d.cluster}"
    workload = f"{cluster}-{d.namespace}-{d.name}"
    return region, cluster, workload, f"{workload}-{d.kind}"


# --------------------------------------------------------------------------- metadata


def _annotations(
    deployment: Deployment,
    model: ModelEntity | None,
    ref: str,
    problems: list[Problem],
    rules: RuleMaker,
) -> dict[str, str]:
    d = deployment
    result = {
        ann.CLUSTER: clean(d.cluster),
        ann.REGION: clean(d.region),
        ann.RUNTIME: clean(d.runtime),
        ann.WORKLOAD: clean(f"{d.kind}/{d.name}"),
        ann.READY_REPLICAS: str(d.ready_replicas),
        ann.DESIRED_REPLICAS: str(d.desired_replicas),
        ann.GPU_REQUESTS: str(d.gpu_requests),
        ann.GPU_LIMITS: str(d.gpu_limits),
        ann.NETWORK_POLICY: "true" if d.network_policy else "false",
    }
    registered = model.model.name if model else d.model_name
    if registered:
        result[ann.REGISTERED_MODEL] = clean(registered)
    number, alias = _version(d.model_version, model.model if model else None)
    if number:
        result[ann.MODEL_VERSION] = number
    if alias:
        result[ann.MODEL_ALIAS] = clean(alias)
    if d.gpu_product:
        result[ann.GPU_PRODUCT] = clean(d.gpu_product)
    if d.adapters:
        result[ann.LORA_ADAPTERS] = clean(",".join(d.adapters))
    result.update(_kubernetes(d, model, ref, registered or "", problems))
    rule = ",".join(f"{query}|{group}" for query, group in rules(d) if _rule_safe(query, group))
    if rule:
        result[ann.PROMETHEUS_RULE] = rule
    return dict(sorted(result.items()))


def _kubernetes(
    deployment: Deployment,
    model: ModelEntity | None,
    ref: str,
    registered: str,
    problems: list[Problem],
) -> dict[str, str]:
    """The annotations Backstage's Kubernetes plugin finds a server's objects by."""
    d = deployment
    result = {}
    # The id the blueprint labels the server's objects with, else the model's entity name.
    for kubernetes_id in (d.labels.get(ann.KUBERNETES_ID), model.name if model else None):
        if kubernetes_id and _LABEL_VALUE.match(kubernetes_id):
            result[ann.KUBERNETES_ID] = kubernetes_id
            break
    if _DNS_LABEL.match(d.namespace):
        result[ann.KUBERNETES_NAMESPACE] = d.namespace
    selector = _selector(d.selector)
    if selector:
        result[ann.KUBERNETES_LABEL_SELECTOR] = selector
    elif d.selector:
        problems.append(
            Problem(
                registered,
                ref,
                "warning",
                f"the pod labels {dict(d.selector)!r} of {d.kind} {d.namespace}/{d.name} "
                "are not valid Kubernetes labels; no label selector annotation",
            )
        )
    return result


def _selector(selector: Mapping[str, str]) -> str | None:
    """``key=value,...`` for Backstage's Kubernetes plugin, or None if any label is invalid."""
    if not selector:
        return None
    valid = all(
        _LABEL_KEY.match(key) and len(key) <= 316 and _LABEL_VALUE.match(value)
        for key, value in selector.items()
    )
    if not valid:
        return None
    return ",".join(f"{key}={value}" for key, value in sorted(selector.items()))


def _rule_safe(query: str, group: str) -> bool:
    """Roadie splits the annotation on ``,`` and ``|``: neither may appear inside a pair."""
    return bool(query) and bool(group) and not any(c in query + group for c in ",|")


def _version(version: str | None, model: RegisteredModel | None) -> tuple[str | None, str | None]:
    """(version number, alias): an alias is resolved through the model's registry aliases."""
    if not version:
        return None, None
    if version.isdigit():
        return version, None
    number = model.version_for_alias(version) if model else None
    return (str(number) if number is not None else None), version


def _description(deployment: Deployment, model: ModelEntity | None) -> str:
    d = deployment
    runtime = _RUNTIME_TITLES.get(d.runtime, d.runtime)
    serves = f"model {model.model.name}" if model else f"unregistered model {d.model_name}"
    if model is None and not d.model_name:
        serves = "a model Trellis could not identify"
    return clean(
        f"{runtime} server of the {serves} in {d.region}: {d.kind} {d.namespace}/{d.name} "
        f"in cluster {d.cluster}."
    )


def _tags(deployment: Deployment) -> list[str]:
    tags = {MODEL_SERVER}
    runtime = fold_tag(deployment.runtime)
    if runtime:
        tags.add(runtime)
    if deployment.gpu_limits or deployment.gpu_requests:
        tags.add("gpu")
    return sorted(tags)


def _links(deployment: Deployment) -> Entity:
    url = _http_url(deployment.url)
    return {"links": [{"url": url, "title": "Inference endpoint"}]} if url else {}


def _http_url(url: str | None) -> str | None:
    """An http(s) URL fit to publish (credentials scrubbed), or None."""
    if not url or not url.startswith(("http://", "https://")) or any(c.isspace() for c in url):
        return None
    return scrub_url(url)


def _unknown_adapter(deployment: Deployment, adapter: str, ref: str) -> Problem:
    d = deployment
    message = (
        f"model server {d.kind} {d.namespace}/{d.name} in cluster {d.cluster} serves the "
        f"adapter {adapter!r}, which is not a registered model"
    )
    return Problem(clean(adapter), ref, "warning", clean(message))


def _unlinked(deployment: Deployment, ref: str) -> Problem:
    d = deployment
    where = f"{d.kind} {d.namespace}/{d.name} in cluster {d.cluster}"
    if d.model_name:
        message = f"model server {where} serves {d.model_name!r}, which is not a registered model"
    else:
        message = (
            f"model server {where} names no registered model "
            "(no trellis.dev/registered-model label or annotation, no model URI)"
        )
    return Problem(clean(d.model_name or ""), ref, "warning", clean(message))
