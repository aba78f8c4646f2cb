"""The one module that talks to the Kubernetes API (the watches read through informer.py).

Calls run the synchronous ``kubernetes`` client on a dedicated thread pool and return
raw JSON dicts (no model deserialization: it costs more CPU than the HTTP call).
Every failure is mapped to three exceptions the controller understands: an API error
keeps its HTTP status, and a request that got no answer at all (connection refused or
reset, a timeout, a broken TLS session) is a `KubeError` with status 0. Each request
is bounded by `REQUEST_TIMEOUT_S`, so an API server that hangs never holds a worker.
"""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import urllib3.exceptions
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from certmint.api import resources

T = TypeVar("T")
Json = dict[str, Any]

#: (connect, read) timeout of one request, seconds. The API server answers a request within
#: 60 s or fails it (its default --request-timeout); the client gives it a little longer.
REQUEST_TIMEOUT_S = (10.0, 70.0)
#: What a request that got no HTTP answer raises (urllib3 wraps most in MaxRetryError).
TRANSPORT_FAILURES: tuple[type[Exception], ...] = (urllib3.exceptions.HTTPError, OSError)
#: Distinct Events remembered for aggregation; the oldest are forgotten first.
EVENT_MEMORY = 4096


class KubeError(Exception):
    """An API call failed; ``status`` is the HTTP status (0 when none was received)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class ConflictError(KubeError):
    """409: the object exists already, or changed since it was read."""


class NotFoundError(KubeError):
    """404: the object (or its namespace) does not exist."""


def is_transient(err: KubeError) -> bool:
    """Whether a failure says nothing about the request itself: retry it soon, unchanged.

    No answer (status 0), 408, 429 (API priority and fairness) and every 5xx. Anything
    else (403, 404, 409, 422 ...) is an answer about the request.
    """
    return err.status in (0, 408, 429) or err.status >= 500


def load_configuration(
    kubeconfig: str | None = None, pool_size: int = 32, context: str | None = None
) -> client.Configuration:
    """Client settings from a kubeconfig (``$KUBECONFIG`` by default), else in-cluster."""
    configuration = client.Configuration()
    try:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, client_configuration=configuration, context=context
        )
    except config.ConfigException:
        config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration
        )
    configuration.connection_pool_maxsize = pool_size
    # No retries hidden in urllib3: a failed request fails at once and the caller's backoff
    # decides (urllib3 would otherwise repeat a timed-out GET up to three times, holding a
    # worker's thread for minutes while the API server hangs).
    configuration.retries = 0
    return configuration


def load_api_client(
    kubeconfig: str | None = None, pool_size: int = 32, context: str | None = None
) -> client.ApiClient:
    """An API client; see `load_configuration`."""
    return client.ApiClient(load_configuration(kubeconfig, pool_size, context))


def _message(err: ApiException) -> str:
    try:
        return str(json.loads(err.body or "").get("message", err.reason))
    except (TypeError, ValueError):
        return str(err.reason)


def _api_error(err: ApiException) -> KubeError:
    """The exception for an HTTP error answer (409 and 404 have their own types)."""
    if err.status == 409:
        return ConflictError(409, _message(err))
    if err.status == 404:
        return NotFoundError(404, _message(err))
    return KubeError(err.status or 0, _message(err))


class Kube:
    """Async facade over the API calls the operator makes."""

    def __init__(self, api_client: client.ApiClient, threads: int = 16) -> None:
        self._core = client.CoreV1Api(api_client)
        self._custom = client.CustomObjectsApi(api_client)
        self._coordination = client.CoordinationV1Api(api_client)
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kube")
        #: Events posted, by (namespace, object uid, type, reason, message) -> (name, count).
        self._events: collections.OrderedDict[tuple[str, ...], tuple[str, int]] = (
            collections.OrderedDict()
        )
        #: The newest post of each Event identity still in flight; a repeat waits for it.
        self._event_posts: dict[tuple[str, ...], asyncio.Future[None]] = {}

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()

        def call() -> Any:
            try:
                response = fn(
                    *args, _preload_content=False, _request_timeout=REQUEST_TIMEOUT_S, **kwargs
                )
                data = response.data
            except ApiException as err:
                raise _api_error(err) from None
            except TRANSPORT_FAILURES as err:
                raise KubeError(0, f"no answer from the API server: {err!r}") from None
            try:
                return json.loads(data) if data else {}
            except ValueError as err:  # a body cut short
                raise KubeError(0, f"unreadable answer from the API server: {err}") from None

        return await loop.run_in_executor(self._executor, call)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # Secrets -------------------------------------------------------------------------
    async def get_secret(self, namespace: str, name: str) -> Json | None:
        try:
            result: Json = await self._call(self._core.read_namespaced_secret, name, namespace)
        except NotFoundError:
            return None
        return result

    async def create_secret(self, namespace: str, body: Mapping[str, Any]) -> Json:
        result: Json = await self._call(self._core.create_namespaced_secret, namespace, body)
        return result

    async def replace_secret(self, namespace: str, name: str, body: Mapping[str, Any]) -> Json:
        """Replaces a Secret; ``body.metadata.resourceVersion`` makes it conditional."""
        result: Json = await self._call(self._core.replace_namespaced_secret, name, namespace, body)
        return result

    async def delete_secret(self, namespace: str, name: str, uid: str | None = None) -> None:
        """Deletes a Secret; with ``uid`` only that exact object (a precondition)."""
        options = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid))
        try:
            await self._call(self._core.delete_namespaced_secret, name, namespace, body=options)
        except NotFoundError:
            return

    # Namespaces ------------------------------------------------------------------------
    async def list_namespaces(self) -> dict[str, dict[str, str]]:
        """Active namespaces and their labels (Terminating ones refuse new objects)."""
        result: Json = await self._call(self._core.list_namespace)
        return {
            item["metadata"]["name"]: dict(item["metadata"].get("labels") or {})
            for item in result.get("items") or []
            if (item.get("status") or {}).get("phase") != "Terminating"
        }

    # ConfigMaps (trust distribution) -------------------------------------------------
    async def list_config_maps(self, label_selector: str, namespace: str = "") -> list[Json]:
        """ConfigMaps in one namespace, or in all ("", which needs cluster-wide rights)."""
        if namespace:
            result: Json = await self._call(
                self._core.list_namespaced_config_map, namespace, label_selector=label_selector
            )
        else:
            result = await self._call(
                self._core.list_config_map_for_all_namespaces, label_selector=label_selector
            )
        return list(result.get("items") or [])

    async def get_config_map(self, namespace: str, name: str) -> Json | None:
        try:
            result: Json = await self._call(self._core.read_namespaced_config_map, name, namespace)
        except NotFoundError:
            return None
        return result

    async def create_config_map(self, namespace: str, body: Mapping[str, Any]) -> Json:
        """Creates a ConfigMap; `ConflictError` when one of that name exists (never replaced)."""
        result: Json = await self._call(self._core.create_namespaced_config_map, namespace, body)
        return result

    async def replace_config_map(self, namespace: str, name: str, body: Mapping[str, Any]) -> Json:
        """Replaces a ConfigMap; ``body.metadata.resourceVersion`` makes it conditional."""
        result: Json = await self._call(
            self._core.replace_namespaced_config_map, name, namespace, body
        )
        return result

    async def delete_config_map(self, namespace: str, name: str, uid: str | None = None) -> None:
        """Deletes a ConfigMap; with ``uid`` only that exact object (a precondition)."""
        options = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid))
        try:
            await self._call(self._core.delete_namespaced_config_map, name, namespace, body=options)
        except NotFoundError:
            return

    # ClusterTrustBundles ---------------------------------------------------------------
    _BUNDLES = ("certificates.k8s.io", "v1beta1", "clustertrustbundles")

    async def get_cluster_trust_bundle(self, name: str) -> Json | None:
        """A certificates.k8s.io/v1beta1 ClusterTrustBundle, None when absent (or not served)."""
        try:
            result: Json = await self._call(
                self._custom.get_cluster_custom_object, *self._BUNDLES, name
            )
        except NotFoundError:
            return None
        return result

    async def create_cluster_trust_bundle(self, body: Mapping[str, Any]) -> Json:
        """Creates a ClusterTrustBundle; `ConflictError` when one of that name exists."""
        result: Json = await self._call(
            self._custom.create_cluster_custom_object, *self._BUNDLES, body
        )
        return result

    async def replace_cluster_trust_bundle(self, name: str, body: Mapping[str, Any]) -> Json:
        """Replaces a ClusterTrustBundle; ``body.metadata.resourceVersion`` is required."""
        result: Json = await self._call(
            self._custom.replace_cluster_custom_object, *self._BUNDLES, name, body
        )
        return result

    async def delete_cluster_trust_bundle(self, name: str, uid: str) -> None:
        """Deletes exactly the ClusterTrustBundle with that UID (a precondition)."""
        options = {"preconditions": {"uid": uid}}
        try:
            await self._call(
                self._custom.delete_cluster_custom_object, *self._BUNDLES, name, body=options
            )
        except NotFoundError:
            return

    # PodCertificateRequests ----------------------------------------------------------
    _POD_CERTIFICATES = ("certificates.k8s.io", "v1beta1")

    async def answer_pod_certificate_request(
        self, namespace: str, name: str, resource_version: str, status: Mapping[str, Any]
    ) -> Json:
        """Writes a PodCertificateRequest's status, only over ``resource_version``.

        The API server keeps the spec (the status strategy ignores it) and refuses a second
        answer: `ConflictError` when the request changed since it was read.
        """
        body = {
            "apiVersion": "certificates.k8s.io/v1beta1",
            "kind": "PodCertificateRequest",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "resourceVersion": resource_version,
            },
            "status": dict(status),
        }
        result: Json = await self._call(
            self._custom.replace_namespaced_custom_object_status,
            *self._POD_CERTIFICATES, namespace, "podcertificaterequests", name, body,
        )  # fmt: skip
        return result

    # certmint.io objects -------------------------------------------------------------
    async def patch_status(
        self, kind: str, namespace: str | None, name: str, status: Mapping[str, Any]
    ) -> Json:
        """Merge-patches the status subresource of a certmint object."""
        body = {"status": status}
        plural = resources.PLURALS[kind]
        if namespace is None:
            result: Json = await self._call(
                self._custom.patch_cluster_custom_object_status,
                resources.GROUP, resources.VERSION, plural, name, body,
            )  # fmt: skip
        else:
            result = await self._call(
                self._custom.patch_namespaced_custom_object_status,
                resources.GROUP, resources.VERSION, namespace, plural, name, body,
            )  # fmt: skip
        return result

    async def get_object(self, kind: str, namespace: str | None, name: str) -> Json | None:
        plural = resources.PLURALS[kind]
        try:
            if namespace is None:
                result: Json = await self._call(
                    self._custom.get_cluster_custom_object,
                    resources.GROUP, resources.VERSION, plural, name,
                )  # fmt: skip
            else:
                result = await self._call(
                    self._custom.get_namespaced_custom_object,
                    resources.GROUP, resources.VERSION, namespace, plural, name,
                )  # fmt: skip
        except NotFoundError:
            return None
        return result

    async def patch_annotations(
        self, kind: str, namespace: str | None, name: str, annotations: Mapping[str, str]
    ) -> Json:
        body = {"metadata": {"annotations": dict(annotations)}}
        plural = resources.PLURALS[kind]
        if namespace is None:
            result: Json = await self._call(
                self._custom.patch_cluster_custom_object,
                resources.GROUP, resources.VERSION, plural, name, body,
            )  # fmt: skip
        else:
            result = await self._call(
                self._custom.patch_namespaced_custom_object,
                resources.GROUP, resources.VERSION, namespace, plural, name, body,
            )  # fmt: skip
        return result

    # Events ----------------------------------------------------------------------------
    async def post_event(
        self, involved: Mapping[str, Any], type_: str, reason: str, message: str, now: str
    ) -> None:
        """Posts a core/v1 Event about ``involved`` (a minimal object reference body).

        The same Event again (same object, type, reason and message) raises the ``count``
        and ``lastTimestamp`` of the one already posted instead of creating another, as
        client-go's event recorder does: a retry loop shows as one Event "(x5 over 40s)".
        Events about cluster-scoped objects go to the ``default`` namespace, as kubectl
        and kopf do.
        """
        metadata = involved["metadata"]
        namespace = metadata.get("namespace") or "default"
        message = message[:1024]
        identity = (namespace, str(metadata.get("uid") or metadata["name"]), type_, reason, message)
        # Posts of one identity take turns: a repeat sent while the first create is in
        # flight would not know its name yet and create a second Event.
        previous = self._event_posts.get(identity)
        turn = self._event_posts[identity] = asyncio.get_running_loop().create_future()
        try:
            if previous is not None:
                await previous
            await self._post_or_count_event(identity, involved, now)
        finally:
            turn.set_result(None)
            if self._event_posts.get(identity) is turn:
                del self._event_posts[identity]

    async def _post_or_count_event(
        self, identity: tuple[str, ...], involved: Mapping[str, Any], now: str
    ) -> None:
        namespace, _, type_, reason, message = identity
        metadata = involved["metadata"]
        if (posted := self._events.get(identity)) is not None:
            name, count = posted
            patch = {"count": count + 1, "lastTimestamp": now}
            try:
                await self._call(self._core.patch_namespaced_event, name, namespace, patch)
            except NotFoundError:
                pass  # the API server dropped it (Events live about an hour): post it anew
            else:
                self._events[identity] = (name, count + 1)
                self._events.move_to_end(identity)
                return
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{metadata['name']}.", "namespace": namespace},
            "involvedObject": {
                "apiVersion": involved["apiVersion"],
                "kind": involved["kind"],
                "name": metadata["name"],
                "namespace": metadata.get("namespace"),
                "uid": metadata.get("uid"),
            },
            "type": type_,
            "reason": reason,
            "message": message,
            "source": {"component": "certmint"},
            "reportingComponent": resources.REPORTING_COMPONENT,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        created: Json = await self._call(self._core.create_namespaced_event, namespace, body)
        self._events[identity] = (str(created["metadata"]["name"]), 1)
        while len(self._events) > EVENT_MEMORY:
            self._events.popitem(last=False)

    # Leases (leader election) --------------------------------------------------------
    async def get_lease(self, namespace: str, name: str) -> Json | None:
        try:
            result: Json = await self._call(
                self._coordination.read_namespaced_lease, name, namespace
            )
        except NotFoundError:
            return None
        return result

    async def create_lease(self, namespace: str, body: Mapping[str, Any]) -> Json:
        result: Json = await self._call(self._coordination.create_namespaced_lease, namespace, body)
        return result

    async def replace_lease(self, namespace: str, name: str, body: Mapping[str, Any]) -> Json:
        result: Json = await self._call(
            self._coordination.replace_namespaced_lease, name, namespace, body
        )
        return result
