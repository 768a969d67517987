"""Model servers in Kubernetes clusters, read with the official ``kubernetes`` client.

Each kubeconfig context is one cluster, read in a thread of its own, at the same time as the
others. Per cluster, four list calls across all namespaces (paged): KServe
``InferenceService``s, the Deployments labelled ``trellis.dev/registered-model`` (vLLM and
custom servers), the Deployments KServe made for predictors (for replica counts), and
``NetworkPolicy``s. Every call has a timeout (what is left of the cluster's budget) and the
whole cluster has a deadline, so one slow or broken cluster costs at most the timeout and
only its own answer: it comes back as ``ClusterRead(ok=False, error=...)``, never as an
exception, and the other clusters' servers are unaffected.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.kube_config import KUBE_CONFIG_DEFAULT_LOCATION
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trellis import __version__
from trellis import annotations as ann
from trellis.model import ClusterRead, Deployment
from trellis.sources.bad_files import schema_problems, yaml_problem
from trellis.sources.kube_objects import (
    PREDICTOR_LABEL,
    ClusterObjects,
    to_deployments,
)

__all__ = ["SOURCE", "ClusterResult", "KubernetesSource", "kubeconfig_secrets"]

log = logging.getLogger(__name__)

SOURCE = "kubernetes"
#: Objects per list request; the API server pages big lists, as ``kubectl`` does.
PAGE_SIZE = 500
_KSERVE = ("serving.kserve.io", "v1beta1", "inferenceservices")
_MAX_ERROR = 300

ClusterResult = tuple[ClusterRead, tuple[Deployment, ...]]
Obj = Mapping[str, Any]


class ClusterTimeout(Exception):
    """The cluster's budget ran out before its last list call."""


#: What a broken, slow or misconfigured cluster raises (anything else is a bug).
_EXPECTED = (
    ApiException,
    ConfigException,
    ClusterTimeout,
    OSError,
    urllib3.exceptions.HTTPError,
    ValueError,
)


class KubernetesSource:
    """Reads every configured cluster at once; each cluster succeeds or fails on its own.

    ``contexts`` are kubeconfig context names, one per cluster (the result is keyed by
    them); ``kubeconfig`` is the file (default: ``$KUBECONFIG`` or ``~/.kube/config``);
    ``timeout_seconds`` bounds each cluster's whole read; ``region_of`` gives the region of
    a context whose objects carry no region label (else the context name is used).
    """

    name = SOURCE

    def __init__(
        self,
        contexts: Sequence[str],
        *,
        kubeconfig: Path | None = None,
        timeout_seconds: float = 5.0,
        region_of: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive")
        self.contexts = tuple(dict.fromkeys(contexts))
        self._kubeconfig = kubeconfig
        self._timeout = timeout_seconds
        self._region_of = dict(region_of or {})
        self._clock = clock
        self._clients: dict[str, k8s.ApiClient] = {}
        self._lock = threading.Lock()

    def read(self) -> dict[str, ClusterResult]:
        """Every cluster's outcome and model servers, within about ``timeout_seconds``."""
        if not self.contexts:
            return {}
        deadline = time.monotonic() + self._timeout
        executor = ThreadPoolExecutor(
            max_workers=len(self.contexts), thread_name_prefix="trellis-kubernetes"
        )
        try:
            futures: dict[str, Future[tuple[Deployment, ...]]] = {
                context: executor.submit(self._read_cluster, context, deadline)
                for context in self.contexts
            }
            wait(futures.values(), timeout=max(0.0, deadline - time.monotonic()))
        finally:
            # A call still running ends by its own timeout; nobody waits for it.
            executor.shutdown(wait=False, cancel_futures=True)
        return {context: self._outcome(context, future) for context, future in futures.items()}

    def close(self) -> None:
        """Close every cluster's connection pool."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for api in clients:
            api.close()  # type: ignore[no-untyped-call]  # the client's own method is untyped

    # -- one cluster

    def _outcome(self, context: str, future: Future[tuple[Deployment, ...]]) -> ClusterResult:
        now = self._clock()
        if not future.done():
            error = f"no answer within {self._timeout:g} s"
        elif (exc := future.exception()) is not None:
            error = _describe(exc, self._timeout)
            if not isinstance(exc, _EXPECTED):  # a bug, not a broken cluster: keep the trace
                log.error("reading cluster %s failed", context, exc_info=exc)
        else:
            deployments = future.result()
            return ClusterRead(context, ok=True, read_at=now), deployments
        log.warning("cluster %s unavailable: %s", context, error)
        return ClusterRead(context, ok=False, read_at=now, error=error), ()

    def _read_cluster(self, context: str, deadline: float) -> tuple[Deployment, ...]:
        api = self._client(context)
        custom, apps = k8s.CustomObjectsApi(api), k8s.AppsV1Api(api)
        networking = k8s.NetworkingV1Api(api)

        def isvcs(**kw: Any) -> Any:
            return custom.list_cluster_custom_object(*_KSERVE, **kw)

        objects = ClusterObjects(
            inference_services=_list_all(isvcs, deadline),
            servers=_list_all(
                apps.list_deployment_for_all_namespaces,
                deadline,
                label_selector=ann.REGISTERED_MODEL,
            ),
            predictors=_list_all(
                apps.list_deployment_for_all_namespaces, deadline, label_selector=PREDICTOR_LABEL
            ),
            network_policies=_list_all(networking.list_network_policy_for_all_namespaces, deadline),
        )
        region = self._region_of.get(context, context)
        return to_deployments(context, objects, default_region=region)

    def _client(self, context: str) -> k8s.ApiClient:
        """The context's client, made once: loading a kubeconfig is not free."""
        with self._lock:
            api = self._clients.get(context)
        if api is not None:
            return api
        configuration = k8s.Configuration()
        # One retry for a connection the server dropped; the deadline bounds the rest.
        configuration.retries = urllib3.Retry(
            total=1, connect=1, read=1, redirect=0, status=0, other=0, raise_on_status=False
        )
        files = _kubeconfig_files(self._kubeconfig)
        for path in files:
            _check_kubeconfig(path)
        try:
            api = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=str(self._kubeconfig) if self._kubeconfig else None,
                context=context,
                persist_config=False,  # never write refreshed credentials back to the file
                client_configuration=configuration,
            )
        except ConfigException as exc:  # its messages may quote the file: only the gist
            where = ", ".join(map(str, files)) or "(none found)"
            raise ConfigException(f"kubeconfig {where}: {_DUMPED.sub('…', str(exc))}") from None
        except (ValueError, TypeError, AttributeError, KeyError, yaml.YAMLError) as exc:
            where = ", ".join(map(str, files))
            raise ConfigException(
                f"kubeconfig {where}: cannot be used ({type(exc).__name__})"
            ) from None
        api.user_agent = f"trellis/{__version__}"
        with self._lock:
            kept = self._clients.setdefault(context, api)
        if kept is not api:  # a read still running from before made one meanwhile
            api.close()
        return kept


class _Loose(BaseModel):
    """Exact types for what the client reads; other keys are the client's business."""

    model_config = ConfigDict(strict=True, extra="allow", populate_by_name=True)


class _Context(_Loose):
    cluster: str
    user: str
    namespace: str | None = None


class _Cluster(_Loose):
    server: str
    certificate_authority: str | None = Field(None, alias="certificate-authority")
    certificate_authority_data: str | None = Field(None, alias="certificate-authority-data")
    insecure_skip_tls_verify: bool | None = Field(None, alias="insecure-skip-tls-verify")
    tls_server_name: str | None = Field(None, alias="tls-server-name")
    proxy_url: str | None = Field(None, alias="proxy-url")


class _User(_Loose):
    token: str | None = None
    token_file: str | None = Field(None, alias="tokenFile")
    username: str | None = None
    password: str | None = None
    client_certificate: str | None = Field(None, alias="client-certificate")
    client_certificate_data: str | None = Field(None, alias="client-certificate-data")
    client_key: str | None = Field(None, alias="client-key")
    client_key_data: str | None = Field(None, alias="client-key-data")
    exec_: dict[str, Any] | None = Field(None, alias="exec")
    auth_provider: dict[str, Any] | None = Field(None, alias="auth-provider")


class _NamedContext(_Loose):
    name: str
    context: _Context


class _NamedCluster(_Loose):
    name: str
    cluster: _Cluster


class _NamedUser(_Loose):
    name: str
    user: _User | None = None


class _Kubeconfig(_Loose):
    clusters: list[_NamedCluster] | None = None
    contexts: list[_NamedContext] | None = None
    users: list[_NamedUser] | None = None
    current_context: str | None = Field(None, alias="current-context")


#: A mapping the client put in a message: it may hold a token, so it never leaves.
_DUMPED = re.compile(r"\{.*\}", re.DOTALL)


def _check_kubeconfig(path: Path) -> None:
    """Refuse a kubeconfig file the client would choke on, naming the field, never a value.

    Raises:
        ConfigException: ``kubeconfig <path>: <what is wrong>``.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigException(f"kubeconfig {path}: cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigException(f"kubeconfig {path}: not UTF-8 text (byte {exc.start})") from None
    except yaml.YAMLError as exc:
        raise ConfigException(f"kubeconfig {path}: {yaml_problem(exc)}") from None
    if data is None:
        return  # empty: the client says so
    try:
        _Kubeconfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(schema_problems(exc))
        raise ConfigException(f"kubeconfig {path}: {problems}") from None


def _kubeconfig_files(configured: Path | None) -> list[Path]:
    """The files the client will read: the configured one, or ``$KUBECONFIG``'s that exist."""
    if configured is not None:
        return [configured]
    listed = os.environ.get("KUBECONFIG", KUBE_CONFIG_DEFAULT_LOCATION)
    found = [Path(p).expanduser() for p in listed.split(os.pathsep) if p]
    return [path for path in found if path.is_file()]


#: Fields of a kubeconfig user (and of its auth provider's config) that hold credentials.
_USER_SECRETS = ("token", "password", "client-key-data")
_PROVIDER_SECRETS = ("access-token", "id-token", "refresh-token", "client-secret")


def kubeconfig_secrets(kubeconfig: Path | None) -> list[str]:
    """The credentials the kubeconfig's users hold, for the redactor of logs.

    ``kubeconfig`` as the client reads it: the file given, else each file of ``$KUBECONFIG``,
    else ``~/.kube/config``. A file that cannot be read holds none (the cluster read will say
    why it failed).
    """
    found: list[str] = []
    for file in _kubeconfig_files(kubeconfig):
        try:
            document = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeError, yaml.YAMLError):
            continue
        users = document.get("users") if isinstance(document, Mapping) else None
        for entry in users if isinstance(users, list) else ():
            user = entry.get("user") if isinstance(entry, Mapping) else None
            if not isinstance(user, Mapping):
                continue
            provider = user.get("auth-provider")
            config = provider.get("config") if isinstance(provider, Mapping) else None
            values = [user.get(key) for key in _USER_SECRETS]
            if isinstance(config, Mapping):
                values += [config.get(key) for key in _PROVIDER_SECRETS]
            found += [value for value in values if isinstance(value, str) and value]
    return found


def _list_all(call: Callable[..., Any], deadline: float, **kwargs: Any) -> list[Obj]:
    """Every item of a list call, page by page, as JSON (the typed models are not needed)."""
    items: list[Obj] = []
    token: str | None = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ClusterTimeout
        page_args: dict[str, Any] = {"limit": PAGE_SIZE, **kwargs}
        if token:
            page_args["_continue"] = token
        response = call(**page_args, _preload_content=False, _request_timeout=remaining)
        try:
            body = json.loads(response.data)
        finally:
            response.release_conn()
        if not isinstance(body, Mapping) or not isinstance(body.get("items"), list):
            raise ValueError("the answer is not a Kubernetes list")
        items.extend(item for item in body["items"] if isinstance(item, Mapping))
        token = (body.get("metadata") or {}).get("continue") or None
        if not token:
            return items


def _describe(exc: BaseException, timeout: float) -> str:
    """A short, credential-free sentence for a failed cluster read."""
    if isinstance(exc, ClusterTimeout):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, ApiException):
        message = ""
        try:
            message = str(json.loads(exc.body or "{}").get("message") or "")
        except (ValueError, AttributeError):
            message = ""
        text = f"HTTP {exc.status} {exc.reason or ''}".strip()
        return _short(f"{text}: {message}" if message else text)
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    # Before the timeouts: urllib3's NewConnectionError is a ConnectTimeoutError subclass.
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return _short(f"cannot connect: {exc}")
    if isinstance(exc, urllib3.exceptions.TimeoutError | TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, ConfigException):
        text = str(exc)
        return _short(text if text.startswith("kubeconfig ") else f"kubeconfig: {text}")
    if isinstance(exc, ValueError):
        return _short(f"unreadable answer: {exc}")
    return _short(f"{type(exc).__name__}: {exc}")


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 1] + "…"
