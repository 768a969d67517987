"""Recorded Kubernetes objects to model servers: linking, runtimes, replicas, GPUs, policies."""

import copy

import pytest

from support.kube_replay import FIXTURES, load_cluster
from trellis.model import Runtime
from trellis.sources.kube_objects import ClusterObjects, model_reference, to_deployments

HUB = load_cluster(FIXTURES / "hub")
EDGE = load_cluster(FIXTURES / "edge")


def objects(cluster, *, isvcs=None, servers=None, predictors=None, policies=None):
    """What the source hands the mapper: the label-selected lists of one cluster."""
    deployments = cluster["deployments"]
    labelled = [d for d in deployments if "trellis.dev/registered-model" in d["metadata"]["labels"]]
    made = [
        d for d in deployments if "serving.kserve.io/inferenceservice" in d["metadata"]["labels"]
    ]
    return ClusterObjects(
        inference_services=cluster["inferenceservices"] if isvcs is None else isvcs,
        servers=labelled if servers is None else servers,
        predictors=made if predictors is None else predictors,
        network_policies=cluster["networkpolicies"] if policies is None else policies,
    )


def by_name(deployments):
    return {d.name: d for d in deployments}


def test_kserve_made_deployments_are_not_servers_of_their_own():
    found = to_deployments("hub", objects(HUB), default_region="eu-west-1")
    assert [(d.namespace, d.name, d.kind) for d in found] == [
        ("churn", "churn-predictor", "InferenceService"),
        ("demand-forecast", "demand-forecast", "InferenceService"),
        ("fraud-detector", "fraud-detector", "InferenceService"),
        ("llm", "code-assistant", "Deployment"),
    ]


def test_replicas_come_from_the_deployments_kserve_made_in_either_mode():
    found = by_name(to_deployments("hub", objects(HUB), default_region="eu-west-1"))
    assert (found["fraud-detector"].ready_replicas, found["fraud-detector"].desired_replicas) == (
        1,
        1,
    )
    assert (found["demand-forecast"].ready_replicas, found["demand-forecast"].desired_replicas) == (
        1,
        2,
    )
    # Serverless: the Knative revision's Deployment, found by the predictor label.
    assert (found["churn-predictor"].ready_replicas, found["churn-predictor"].desired_replicas) == (
        2,
        2,
    )


def test_without_those_deployments_replicas_come_from_spec_and_model_status():
    found = by_name(to_deployments("hub", objects(HUB, predictors=[]), default_region="x"))
    fraud = found["fraud-detector"]
    assert (fraud.ready_replicas, fraud.desired_replicas) == (1, 1)  # totalCopies, minReplicas


def test_transformer_deployments_do_not_count_as_predictor_replicas():
    transformer = copy.deepcopy(
        next(d for d in HUB["deployments"] if d["metadata"]["name"] == "fraud-detector-predictor")
    )
    transformer["metadata"]["name"] = "fraud-detector-transformer"
    transformer["metadata"]["labels"]["component"] = "transformer"
    transformer["spec"]["replicas"] = 5
    cluster = objects(HUB)
    cluster = ClusterObjects(
        cluster.inference_services,
        cluster.servers,
        [*cluster.predictors, transformer],
        cluster.network_policies,
    )
    fraud = by_name(to_deployments("hub", cluster, default_region="x"))["fraud-detector"]
    assert fraud.desired_replicas == 1


@pytest.mark.parametrize(
    ("annotations", "labels", "pod_labels", "uris", "expected"),
    [
        # The annotation holds the exact MLflow name, which a label cannot.
        (
            {"trellis.dev/registered-model": "Code Assistant"},
            {"trellis.dev/registered-model": "code-assistant"},
            {},
            ["models:/Code Assistant@champion"],
            ("Code Assistant", "champion"),
        ),
        ({}, {"trellis.dev/registered-model": "fraud"}, {}, [], ("fraud", None)),
        ({}, {}, {"trellis.dev/registered-model": "fraud"}, [], ("fraud", None)),
        ({}, {}, {}, ["models:/churn-predictor/4"], ("churn-predictor", "4")),
        ({}, {}, {}, ["models:/churn%20predictor@challenger"], ("churn predictor", "challenger")),
        ({}, {}, {}, ["s3://b-eu-west-1-1a2b/models/fraud/champion"], ("fraud", "champion")),
        ({}, {}, {}, ["gs://bucket/prefix/models/fraud/3/"], ("fraud", "3")),
        (
            {},
            {},
            {},
            ["https://stfraud1a2b3c4d.blob.core.windows.net/models/fraud/champion"],
            ("fraud", "champion"),
        ),
        # The version annotation wins over the URI's alias.
        (
            {"trellis.dev/model-version": "7"},
            {"trellis.dev/registered-model": "sa"},
            {},
            ["s3://b/models/sa/champion"],
            ("sa", "7"),
        ),
        # A URI of another model tells nothing about this model's version.
        ({}, {"trellis.dev/registered-model": "a"}, {}, ["models:/b/3"], ("a", None)),
        ({}, {}, {}, ["/models", "--port", "8000", "s3://bucket/weights.bin"], (None, None)),
        ({}, {}, {}, ["models:/", "models:/@x", "models:/name"], (None, None)),
    ],
)
def test_servers_are_linked_to_models_in_a_fixed_order(
    annotations, labels, pod_labels, uris, expected
):
    assert model_reference(annotations, labels, pod_labels, uris) == expected


def test_runtimes_are_told_from_runtime_format_image_and_labels():
    hub = by_name(to_deployments("hub", objects(HUB), default_region="x"))
    edge = by_name(to_deployments("edge", objects(EDGE), default_region="x"))
    assert hub["fraud-detector"].runtime == Runtime.MLSERVER  # runtime: kserve-mlserver
    assert hub["demand-forecast"].runtime == Runtime.TRITON  # runtime: kserve-tritonserver
    assert hub["churn-predictor"].runtime == Runtime.MLSERVER  # sklearn format, protocol v2
    assert hub["code-assistant"].runtime == Runtime.VLLM  # label trellis.dev/runtime
    assert edge["support-assistant"].runtime == Runtime.VLLM  # the vllm/vllm-openai image
    assert edge["ghost-server"].runtime == Runtime.CUSTOM


TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:24.08-py3"
VLLM_COMMAND = ["python", "-m", "vllm.entrypoints.openai.api_server"]


@pytest.mark.parametrize(
    ("predictor", "runtime"),
    [
        ({"sklearn": {"storageUri": "gs://b/m", "protocolVersion": "v2"}}, Runtime.MLSERVER),
        ({"sklearn": {"storageUri": "gs://b/m"}}, Runtime.CUSTOM),  # KServe's v1 sklearn server
        ({"triton": {"storageUri": "gs://b/m"}}, Runtime.TRITON),
        ({"model": {"modelFormat": {"name": "onnx"}}}, Runtime.TRITON),
        (
            {"model": {"modelFormat": {"name": "huggingface"}, "runtime": "kserve-vllm"}},
            Runtime.VLLM,
        ),
        ({"model": {"modelFormat": {"name": "pytorch"}}}, Runtime.CUSTOM),
        ({"containers": [{"name": "kserve-container", "image": TRITON_IMAGE}]}, Runtime.TRITON),
        (
            {"containers": [{"name": "c", "image": "python:3.11", "command": VLLM_COMMAND}]},
            Runtime.VLLM,
        ),
    ],
)
def test_inference_service_runtimes_in_every_spec_style(predictor, runtime):
    isvc = {"metadata": {"name": "m", "namespace": "n"}, "spec": {"predictor": predictor}}
    cluster = ClusterObjects([isvc], [], [], [])
    assert to_deployments("c", cluster, default_region="r")[0].runtime == runtime


def test_gpu_requests_default_to_limits_and_the_product_comes_from_affinity_too():
    edge = by_name(to_deployments("edge", objects(EDGE), default_region="x"))
    assistant = edge["support-assistant"]  # limits only, as Kubernetes defaults requests
    assert (assistant.gpu_requests, assistant.gpu_limits) == (1, 1)
    assert assistant.gpu_product == "NVIDIA-A100-SXM4-80GB"  # from required node affinity
    hub = by_name(to_deployments("hub", objects(HUB), default_region="x"))
    assert (hub["demand-forecast"].gpu_requests, hub["demand-forecast"].gpu_product) == (
        2,
        "NVIDIA-A10G",
    )
    assert (hub["churn-predictor"].gpu_limits, hub["churn-predictor"].gpu_product) == (0, None)


@pytest.mark.parametrize(
    ("resources", "counted"),
    [
        ({"limits": {"nvidia.com/mig-2g.20gb": "1"}}, (1, 1)),  # a MIG slice, limits only
        (
            {"requests": {"nvidia.com/mig-1g.10gb": 1}, "limits": {"nvidia.com/mig-1g.10gb": 2}},
            (1, 2),
        ),
        ({"limits": {"nvidia.com/gpu": 1, "nvidia.com/mig-1g.10gb": 1}}, (2, 2)),
        ({"limits": {"nvidia.com/gpu.shared": 1}}, (1, 1)),  # time-slicing, renamed
        ({"limits": {"nvidia.com/gpu.product": 1, "amd.com/gpu": 1, "cpu": "2"}}, (0, 0)),
    ],
)
def test_mig_slices_count_as_gpus_and_other_resources_do_not(resources, counted):
    container = {"name": "kserve-container", "image": TRITON_IMAGE, "resources": resources}
    isvc = {
        "metadata": {"name": "m", "namespace": "n"},
        "spec": {"predictor": {"containers": [container]}},
    }
    (server,) = to_deployments("c", ClusterObjects([isvc], [], [], []), default_region="r")
    assert (server.gpu_requests, server.gpu_limits) == counted


def test_network_policies_count_only_when_they_select_the_servers_pods():
    hub = by_name(to_deployments("hub", objects(HUB), default_region="x"))
    edge = by_name(to_deployments("edge", objects(EDGE), default_region="x"))
    assert hub["fraud-detector"].network_policy  # podSelector on the KServe pod label
    assert hub["code-assistant"].network_policy  # an empty podSelector: the whole namespace
    assert not hub["churn-predictor"].network_policy  # the namespace's policy selects redis
    assert edge["support-assistant"].network_policy  # matchExpressions In + Exists
    assert not edge["ghost-server"].network_policy  # NotIn excludes it
    unprotected = by_name(to_deployments("hub", objects(HUB, policies=[]), default_region="x"))
    assert not unprotected["fraud-detector"].network_policy


def test_a_policy_in_another_namespace_protects_nothing():
    policy = copy.deepcopy(HUB["networkpolicies"][0])
    policy["metadata"]["namespace"] = "elsewhere"
    hub = by_name(to_deployments("hub", objects(HUB, policies=[policy]), default_region="x"))
    assert not hub["fraud-detector"].network_policy


def test_region_comes_from_labels_then_the_default():
    hub = by_name(to_deployments("hub", objects(HUB), default_region="eu-central-1"))
    assert hub["fraud-detector"].region == "eu-west-1"  # trellis.dev/region
    assert hub["code-assistant"].region == "eu-central-1"  # no region label
    isvc = {
        "metadata": {"name": "m", "namespace": "n",
                     "labels": {"topology.kubernetes.io/region": "ap-south-1"}},
        "spec": {"predictor": {}},
    }  # fmt: skip
    found = to_deployments("c", ClusterObjects([isvc], [], [], []), default_region="r")
    assert found[0].region == "ap-south-1"


def test_selectors_narrow_to_the_region_when_pods_carry_it():
    hub = by_name(to_deployments("hub", objects(HUB), default_region="x"))
    edge = by_name(to_deployments("edge", objects(EDGE), default_region="x"))
    assert hub["fraud-detector"].selector == {
        "serving.kserve.io/inferenceservice": "fraud-detector",
        "trellis.dev/region": "eu-west-1",
    }
    assert hub["churn-predictor"].selector == {
        "serving.kserve.io/inferenceservice": "churn-predictor"
    }
    assert edge["support-assistant"].selector == {
        "app.kubernetes.io/name": "support-assistant",
        "trellis.dev/region": "us-east-1",
    }


def test_objects_missing_every_optional_field_still_map():
    isvc = {"metadata": {"name": "bare", "namespace": "n"}}
    deployment = {
        "metadata": {"name": "d", "namespace": "n", "labels": {"trellis.dev/registered-model": "m"}}
    }
    cluster = ClusterObjects([isvc], [deployment], [], [{}])
    found = to_deployments("c", cluster, default_region="r")
    assert [(d.name, d.desired_replicas, d.ready_replicas, d.url, d.conditions) for d in found] == [
        ("bare", 1, 0, None, ()),
        ("d", 1, 0, None, ()),
    ]


def deployment_with(pod_context=None, contexts=(), init_contexts=()):
    """A labelled server Deployment whose pod and containers carry these securityContexts."""

    def container(name, context):
        return {"name": name, "image": "x"} | (
            {} if context is None else {"securityContext": context}
        )

    pod = {"containers": [container(f"c{i}", c) for i, c in enumerate(contexts)]}
    pod["initContainers"] = [container(f"i{i}", c) for i, c in enumerate(init_contexts)]
    if pod_context is not None:
        pod["securityContext"] = pod_context
    labels = {"trellis.dev/registered-model": "m"}
    return {
        "metadata": {"name": "d", "namespace": "n", "labels": labels},
        "spec": {"template": {"metadata": {"labels": labels}, "spec": pod}},
    }


def isvc_with(pod_context=None, contexts=(), *, key="model"):
    """An InferenceService whose predictor and model (or framework, or containers) carry these."""
    predictor = {} if pod_context is None else {"securityContext": pod_context}
    specs = [{"name": "c"} | ({} if c is None else {"securityContext": c}) for c in contexts]
    if key == "containers":
        predictor["containers"] = specs
    elif specs:
        predictor[key] = specs[0]
    return {"metadata": {"name": "m", "namespace": "n"}, "spec": {"predictor": predictor}}


NON_ROOT = {"runAsNonRoot": True}


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        # Deployments: every container and init container counts.
        (deployment_with(NON_ROOT, [None, {}], [None]), True),
        (deployment_with(None, [NON_ROOT, NON_ROOT | {"runAsUser": 1000}], [NON_ROOT]), True),
        (deployment_with(NON_ROOT, [None, {"runAsNonRoot": False}]), False),  # container wins
        (deployment_with({"runAsNonRoot": False}, [NON_ROOT]), True),  # ... either way
        (deployment_with(NON_ROOT, [None], [{"runAsUser": 0}]), False),  # root init container
        (deployment_with(NON_ROOT | {"runAsUser": 0}, [None]), False),  # root pod user
        (deployment_with(NON_ROOT | {"runAsUser": 0}, [{"runAsUser": 1000}]), True),
        (deployment_with(None, [NON_ROOT], [None]), False),  # the init container may be root
        (deployment_with({"runAsUser": 1000}, [None]), False),  # a user, but not required
        (deployment_with({"fsGroup": 1000}, [{"privileged": False}], [None]), None),
        (deployment_with(None, [None]), None),
        (deployment_with({"runAsNonRoot": "true"}, [None]), None),  # not a boolean: not said
        # InferenceServices: the predictor's pod fields and its model container, in each style.
        (isvc_with(NON_ROOT, [None]), True),
        (isvc_with(NON_ROOT), True),  # no container spec at all: the pod decides
        (isvc_with(None, [NON_ROOT], key="sklearn"), True),
        (isvc_with(NON_ROOT, [{"runAsNonRoot": False}], key="triton"), False),
        (isvc_with(None, [NON_ROOT, None], key="containers"), False),
        (isvc_with(NON_ROOT, [{"runAsUser": 0}], key="containers"), False),
        (isvc_with(None, [{"readOnlyRootFilesystem": True}]), None),
        (isvc_with(), None),
    ],
)
def test_whether_a_server_must_run_as_non_root(server, expected):
    isvcs, servers = ([server], []) if "predictor" in server["spec"] else ([], [server])
    found = to_deployments("c", ClusterObjects(isvcs, servers, [], []), default_region="r")
    assert [d.runs_as_non_root for d in found] == [expected]


def test_an_inference_services_own_init_containers_count_too():
    isvc = isvc_with(NON_ROOT, [None])
    isvc["spec"]["predictor"]["initContainers"] = [
        {"name": "i", "securityContext": {"runAsUser": 0}}
    ]
    found = to_deployments("c", ClusterObjects([isvc], [], [], []), default_region="r")
    assert found[0].runs_as_non_root is False


def _with_annotation(obj, value):
    obj = copy.deepcopy(obj)
    obj["metadata"].setdefault("annotations", {})["trellis.dev/lora-adapters"] = value
    return obj


def test_lora_adapters_are_read_from_deployments_and_inference_services():
    vllm = next(d for d in HUB["deployments"] if d["metadata"]["name"] == "code-assistant")
    isvc = {
        "metadata": {"name": "qwen", "namespace": "llm",
                     "labels": {"trellis.dev/registered-model": "qwen2-0.5b"}},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "huggingface"}}}},
    }  # fmt: skip
    cluster = ClusterObjects(
        [_with_annotation(isvc, "qwen2-0.5b-eu-west-1")],
        [_with_annotation(vllm, " support-eu , ,support-ap,support-eu ")],
        [],
        [],
    )
    found = by_name(to_deployments("hub", cluster, default_region="eu-west-1"))
    assert found["code-assistant"].adapters == ("support-ap", "support-eu")
    assert found["qwen"].adapters == ("qwen2-0.5b-eu-west-1",)
    assert found["qwen"].model_name == "qwen2-0.5b"  # the base model stays the served model


def test_a_server_without_the_annotation_serves_no_adapters():
    found = to_deployments("hub", objects(HUB), default_region="x")
    assert found and all(d.adapters == () for d in found)
