"""Kubernetes API objects (as JSON) to model servers: a pure mapping, no I/O.

Two kinds of object are model servers:

* a KServe ``InferenceService``; its replicas come from the Deployments KServe makes for its
  predictor (labelled ``serving.kserve.io/inferenceservice``), in both RawDeployment and
  Serverless mode, else from its spec and ``status.modelStatus``;
* a ``Deployment`` a blueprint labelled ``trellis.dev/registered-model`` (vLLM and custom
  servers), unless KServe or Knative made it for an InferenceService.

A server of an open model may serve LoRA adapters of it too (multi-LoRA): the annotation
``trellis.dev/lora-adapters`` lists their registered-model names, comma-separated.

A server is linked to its registered model by, in order: the ``trellis.dev/registered-model``
annotation (it can hold any MLflow name), the label of that name, then the model URI it
loads (``models:/name/3``, ``models:/name@alias`` or a blueprint bucket path
``.../models/<name>/<alias>``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from trellis import annotations as ann
from trellis.model import Condition, Deployment, Runtime
from trellis.sources.label_selector import selects

__all__ = [
    "PREDICTOR_LABEL",
    "ClusterObjects",
    "model_reference",
    "to_deployments",
]

Obj = Mapping[str, Any]

TOPOLOGY_REGION = "topology.kubernetes.io/region"
#: KServe labels every predictor pod (and the Deployments it makes) with its service's name.
PREDICTOR_LABEL = "serving.kserve.io/inferenceservice"
COMPONENT_LABEL = "component"
GPU = "nvidia.com/gpu"
MIG_PREFIX = "nvidia.com/mig-"
GPU_PRODUCT = "nvidia.com/gpu.product"

#: Old-style predictor keys (``predictor.sklearn``...) and the runtime KServe picks for each
#: under protocol v2; ``None`` when it depends on more than Trellis reads.
_FRAMEWORKS: Mapping[str, str | None] = {
    "sklearn": Runtime.MLSERVER,
    "xgboost": Runtime.MLSERVER,
    "lightgbm": Runtime.MLSERVER,
    "mlflow": Runtime.MLSERVER,
    "triton": Runtime.TRITON,
    "onnx": Runtime.TRITON,
    "tensorrt": Runtime.TRITON,
    "tensorflow": None,
    "pytorch": None,
    "huggingface": None,
    "pmml": None,
    "paddle": None,
}
_MLSERVER_V1_FORMATS = {"sklearn", "xgboost", "lightgbm"}  # served by KServe's own v1 servers
_MODELS_URI = re.compile(r"^models:/(?P<rest>.+)$")
_BUCKET_PATH = re.compile(
    r"^[a-z][a-z0-9+.-]*://[^/?#]+(?:/[^?#]*)?/models/(?P<name>[^/?#]+)/(?P<alias>[^/?#]+)/?$"
)
_KNOWN_RUNTIMES = {Runtime.MLSERVER, Runtime.TRITON, Runtime.VLLM, Runtime.CUSTOM}


@dataclass(frozen=True, slots=True)
class ClusterObjects:
    """What one cluster answered: the objects the mapping needs, as JSON."""

    inference_services: Sequence[Obj]
    #: Deployments labelled as model servers (``trellis.dev/registered-model``).
    servers: Sequence[Obj]
    #: Deployments KServe (or Knative, for KServe) made for predictors.
    predictors: Sequence[Obj]
    network_policies: Sequence[Obj]


def to_deployments(
    cluster: str, objects: ClusterObjects, *, default_region: str
) -> tuple[Deployment, ...]:
    """Every model server in one cluster's objects, sorted by namespace, name and kind."""
    policies: dict[str, list[Obj]] = defaultdict(list)
    for policy in objects.network_policies:
        policies[_str(_map(policy, "metadata").get("namespace"))].append(policy)
    predictors: dict[tuple[str, str], list[Obj]] = defaultdict(list)
    for deployment in objects.predictors:
        metadata = _map(deployment, "metadata")
        labels = _labels(metadata)
        owner = labels.get(PREDICTOR_LABEL)
        if owner and labels.get(COMPONENT_LABEL, "predictor") == "predictor":
            predictors[(_str(metadata.get("namespace")), owner)].append(deployment)

    found = [
        _inference_service(cluster, isvc, default_region, predictors, policies)
        for isvc in objects.inference_services
    ]
    found += [
        _server(cluster, deployment, default_region, policies)
        for deployment in objects.servers
        if not _made_for_inference_service(deployment)
    ]
    return tuple(sorted(found, key=lambda d: (d.namespace, d.name, d.kind)))


# --------------------------------------------------------------------------- one server


def _inference_service(
    cluster: str,
    isvc: Obj,
    default_region: str,
    predictors: Mapping[tuple[str, str], list[Obj]],
    policies: Mapping[str, list[Obj]],
) -> Deployment:
    metadata = _map(isvc, "metadata")
    name, namespace = _str(metadata.get("name")), _str(metadata.get("namespace"))
    labels, annotations = _labels(metadata), _annotations(metadata)
    predictor = _map(isvc, "spec", "predictor")
    pod_labels = {
        **labels,
        **_string_map(predictor.get("labels")),
        PREDICTOR_LABEL: name,
        COMPONENT_LABEL: "predictor",
    }
    model, framework = _model_spec(predictor)
    containers = [c for c in (model, *_maps(predictor.get("containers"))) if c]
    uris = [_str(model.get("storageUri"))] if model.get("storageUri") else []
    uris += list(_container_values(containers))
    model_name, version = model_reference(annotations, labels, pod_labels, uris)
    status = _map(isvc, "status")
    made = predictors.get((namespace, name), [])
    if made:
        desired = sum(_int(_map(d, "spec").get("replicas"), 1) for d in made)
        ready = sum(_int(_map(d, "status").get("readyReplicas"), 0) for d in made)
    else:
        desired = _int(predictor.get("minReplicas"), 1)
        ready = _int(_map(status, "modelStatus", "copies").get("totalCopies"), 0)
    requests, limits = _gpus(containers)
    init_containers = _maps(predictor.get("initContainers"))  # the user's; not KServe's own
    return Deployment(
        cluster=cluster,
        region=_region(pod_labels, default_region),
        namespace=namespace,
        name=name,
        kind="InferenceService",
        runtime=_isvc_runtime(model, framework, containers),
        model_name=model_name,
        model_version=version,
        ready_replicas=ready,
        desired_replicas=desired,
        gpu_requests=requests,
        gpu_limits=limits,
        gpu_product=_gpu_product(predictor),
        url=_url(status),
        conditions=_conditions(status),
        network_policy=_protected(policies.get(namespace, ()), pod_labels),
        selector=_with_region({PREDICTOR_LABEL: name}, pod_labels),
        labels=labels,
        runs_as_non_root=_runs_as_non_root(predictor, [*containers, *init_containers]),
        adapters=_adapters(annotations),
    )


def _server(
    cluster: str, deployment: Obj, default_region: str, policies: Mapping[str, list[Obj]]
) -> Deployment:
    metadata = _map(deployment, "metadata")
    namespace = _str(metadata.get("namespace"))
    labels, annotations = _labels(metadata), _annotations(metadata)
    spec = _map(deployment, "spec")
    template = _map(spec, "template")
    pod_labels = _labels(_map(template, "metadata"))
    pod = _map(template, "spec")
    containers = _maps(pod.get("containers"))
    everything = containers + _maps(pod.get("initContainers"))
    model_name, version = model_reference(
        annotations, labels, pod_labels, list(_container_values(everything))
    )
    status = _map(deployment, "status")
    requests, limits = _gpus(containers)
    return Deployment(
        cluster=cluster,
        region=_region({**pod_labels, **labels}, default_region),
        namespace=namespace,
        name=_str(metadata.get("name")),
        kind="Deployment",
        runtime=_deployment_runtime(annotations, labels, containers),
        model_name=model_name,
        model_version=version,
        ready_replicas=_int(status.get("readyReplicas"), 0),
        desired_replicas=_int(spec.get("replicas"), 1),
        gpu_requests=requests,
        gpu_limits=limits,
        gpu_product=_gpu_product(pod),
        url=None,
        conditions=_conditions(status),
        network_policy=_protected(policies.get(namespace, ()), pod_labels),
        selector=_with_region(_string_map(_map(spec, "selector").get("matchLabels")), pod_labels),
        labels=labels,
        runs_as_non_root=_runs_as_non_root(pod, everything),
        adapters=_adapters(annotations),
    )


def _made_for_inference_service(deployment: Obj) -> bool:
    """KServe's RawDeployment Deployments and Knative's revision Deployments for KServe."""
    metadata = _map(deployment, "metadata")
    if _labels(metadata).get(PREDICTOR_LABEL):
        return True
    return any(
        ref.get("kind") == "InferenceService"
        and _str(ref.get("apiVersion")).startswith("serving.kserve.io/")
        for ref in _maps(metadata.get("ownerReferences"))
    )


# --------------------------------------------------------------------------- facts


def model_reference(
    annotations: Mapping[str, str],
    labels: Mapping[str, str],
    pod_labels: Mapping[str, str],
    uris: Iterable[str],
) -> tuple[str | None, str | None]:
    """(registered model, version or alias) a server loads, from its metadata and URIs."""
    name = next(
        (v for v in (annotations.get(ann.REGISTERED_MODEL), labels.get(ann.REGISTERED_MODEL),
                     pod_labels.get(ann.REGISTERED_MODEL)) if v),
        None,
    )  # fmt: skip
    version = annotations.get(ann.MODEL_VERSION) or labels.get(ann.MODEL_VERSION) or None
    for uri in uris:
        parsed = _parse_model_uri(uri)
        if parsed is None:
            continue
        uri_name, uri_version = parsed
        if name is None:
            name = uri_name
        if version is None and uri_name.casefold() == name.casefold():
            version = uri_version
        break
    return name, version


def _parse_model_uri(uri: str) -> tuple[str, str] | None:
    uri = uri.strip()
    if match := _MODELS_URI.match(uri):
        rest = unquote(match["rest"]).rstrip("/")
        name, at, alias = rest.rpartition("@")
        if at and name and alias and "/" not in alias:
            return name, alias
        name, slash, version = rest.rpartition("/")
        if slash and name and version:
            return name, version
        return None
    if match := _BUCKET_PATH.match(uri):
        return unquote(match["name"]), unquote(match["alias"])
    return None


def _adapters(annotations: Mapping[str, str]) -> tuple[str, ...]:
    """The adapter names of ``trellis.dev/lora-adapters``: distinct, sorted, blanks dropped."""
    names = {name.strip() for name in annotations.get(ann.LORA_ADAPTERS, "").split(",")}
    return tuple(sorted(names - {""}))


def _region(labels: Mapping[str, str], default: str) -> str:
    return labels.get(ann.REGION) or labels.get(TOPOLOGY_REGION) or default


def _model_spec(predictor: Obj) -> tuple[Obj, str | None]:
    """The predictor's model container spec and, for old-style specs, its framework key."""
    model = _map(predictor, "model")
    if model:
        return model, None
    for framework in _FRAMEWORKS:
        spec = _map(predictor, framework)
        if spec:
            return spec, framework
    return {}, None


def _isvc_runtime(model: Obj, framework: str | None, containers: Sequence[Obj]) -> str:
    protocol = _str(model.get("protocolVersion")) or "v1"
    runtime = _str(model.get("runtime")).lower()
    format_name = _str(_map(model, "modelFormat").get("name")).lower() or (framework or "")
    for marker, known in (("vllm", Runtime.VLLM), ("triton", Runtime.TRITON),
                          ("mlserver", Runtime.MLSERVER)):  # fmt: skip
        if marker in runtime:
            return known
    if not runtime and format_name in _FRAMEWORKS:
        guess = _FRAMEWORKS[format_name]
        if guess == Runtime.MLSERVER and format_name in _MLSERVER_V1_FORMATS and protocol != "v2":
            return Runtime.CUSTOM  # KServe's own v1 model servers, not MLServer
        if guess is not None:
            return guess
    return _image_runtime(containers)


def _deployment_runtime(
    annotations: Mapping[str, str], labels: Mapping[str, str], containers: Sequence[Obj]
) -> str:
    declared = (labels.get(ann.RUNTIME) or annotations.get(ann.RUNTIME) or "").lower()
    if declared in _KNOWN_RUNTIMES:
        return declared
    return _image_runtime(containers)


def _image_runtime(containers: Sequence[Obj]) -> str:
    """The runtime a container's image, command or arguments name (vLLM's OpenAI server...)."""
    for container in containers:
        words = [_str(container.get("image")).lower()]
        words += [_str(w).lower() for w in (*_strs(container.get("command")),
                                            *_strs(container.get("args")))]  # fmt: skip
        text = " ".join(words)
        if "vllm" in text:
            return Runtime.VLLM
        if "tritonserver" in text:
            return Runtime.TRITON
        if "mlserver" in text:
            return Runtime.MLSERVER
    return Runtime.CUSTOM


def _is_gpu(resource: str) -> bool:
    """A whole GPU, a time-sliced share of one (renamed ``.shared`` or not), or a MIG slice."""
    return resource in (GPU, f"{GPU}.shared") or resource.startswith(MIG_PREFIX)


def _gpus(containers: Iterable[Obj]) -> tuple[int, int]:
    """GPU requests and limits of one pod, MIG slices included (requests default to limits)."""
    requests = limits = 0
    for container in containers:
        resources = _map(container, "resources")
        declared_limits, declared_requests = _map(resources, "limits"), _map(resources, "requests")
        for resource in {*declared_limits, *declared_requests}:
            if not _is_gpu(str(resource)):
                continue
            limit = _quantity(declared_limits.get(resource))
            request = declared_requests.get(resource)
            limits += limit
            requests += limit if request is None else _quantity(request)
    return requests, limits


def _gpu_product(pod: Obj) -> str | None:
    """From the node selector, else from required node affinity (``In`` values, joined)."""
    product = _string_map(pod.get("nodeSelector")).get(GPU_PRODUCT)
    if product:
        return product
    required = _map(
        pod, "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution"
    )
    for term in _maps(required.get("nodeSelectorTerms")):
        for expression in _maps(term.get("matchExpressions")):
            if expression.get("key") == GPU_PRODUCT and expression.get("operator") == "In":
                values = _strs(expression.get("values"))
                if values:
                    return ",".join(values)
    return None


def _runs_as_non_root(pod: Obj, containers: Sequence[Obj]) -> bool | None:
    """Whether Kubernetes makes every container run as non-root; None when nothing says.

    A container's own ``runAsNonRoot`` and ``runAsUser`` win over the pod's; it must run as
    non-root when ``runAsNonRoot`` ends up true and ``runAsUser`` is not ``0``. A non-zero
    ``runAsUser`` alone does not count (Pod Security's "restricted" level wants both).
    """
    pod_context = _map(pod, "securityContext")
    contexts = [_map(c, "securityContext") for c in containers] or [{}]
    if not any(_says_who_runs(c) for c in (pod_context, *contexts)):
        return None
    return all(_non_root(context, pod_context) for context in contexts)


def _says_who_runs(context: Obj) -> bool:
    return (
        isinstance(context.get("runAsNonRoot"), bool) or _uid(context.get("runAsUser")) is not None
    )


def _non_root(context: Obj, pod_context: Obj) -> bool:
    required = context.get("runAsNonRoot")
    if not isinstance(required, bool):
        required = pod_context.get("runAsNonRoot") is True
    user = _uid(context.get("runAsUser"))
    if user is None:
        user = _uid(pod_context.get("runAsUser"))
    return required and user != 0


def _url(status: Obj) -> str | None:
    for candidate in (
        status.get("url"),
        _map(status, "components", "predictor").get("url"),
        _map(status, "address").get("url"),
    ):
        if isinstance(candidate, str) and candidate:
            return candidate
    return None


def _conditions(status: Obj) -> tuple[Condition, ...]:
    return tuple(
        Condition(
            type=_str(c.get("type")),
            status=_str(c.get("status")),
            reason=_str(c.get("reason")),
            message=_str(c.get("message")),
        )
        for c in _maps(status.get("conditions"))
        if c.get("type")
    )


def _protected(policies: Iterable[Obj], pod_labels: Mapping[str, str]) -> bool:
    return any(selects(_map(p, "spec").get("podSelector"), pod_labels) for p in policies)


def _with_region(selector: Mapping[str, str], pod_labels: Mapping[str, str]) -> dict[str, str]:
    """The selector, narrowed to the server's region when its pods carry the region label."""
    result = dict(selector)
    if pod_labels.get(ann.REGION):
        result.setdefault(ann.REGION, pod_labels[ann.REGION])
    return dict(sorted(result.items()))


def _container_values(containers: Iterable[Obj]) -> Iterator[str]:
    """Arguments and environment values, where a server's model URI is usually found."""
    for container in containers:
        yield from _strs(container.get("args"))
        for env in _maps(container.get("env")):
            value = env.get("value")
            if isinstance(value, str):
                yield value


# --------------------------------------------------------------------------- JSON access


def _map(obj: Obj, *path: str) -> Obj:
    current: Any = obj
    for key in path:
        current = current.get(key) if isinstance(current, Mapping) else None
    return current if isinstance(current, Mapping) else {}


def _maps(value: object) -> list[Obj]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def _strs(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, str)]


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _string_map(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


def _labels(metadata: Obj) -> dict[str, str]:
    return _string_map(metadata.get("labels"))


def _annotations(metadata: Obj) -> dict[str, str]:
    return _string_map(metadata.get("annotations"))


def _int(value: object, default: int) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return max(0, value)
    return default


def _uid(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _quantity(value: object) -> int:
    """A GPU count: an extended resource is a whole number (``1``, ``"2"``)."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(0, value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return 0
