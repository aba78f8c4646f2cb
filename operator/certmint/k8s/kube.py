"""The one module that talks to the Kubernetes API (the watches read through informer.py).

Each method is one request over certmint's aiohttp session (`certmint.k8s.rest`: on the
event loop, no thread, no model deserialization) and returns the raw JSON dict. Every
failure is one of three exceptions the reconcilers understand: an API error keeps its
HTTP status, and a request that got no answer at all (connection refused or reset, a
timeout, a broken TLS session) is a `KubeError` with status 0. Each request is bounded by
`rest.REQUEST_TIMEOUT`, so an API server that hangs never holds a worker.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from kubernetes import client, config

from certmint.api import resources
from certmint.k8s import informer, rest

Json = dict[str, Any]

#: Distinct Events remembered for aggregation; the oldest are forgotten first.
EVENT_MEMORY = 4096
#: The errors, defined with the transport (`certmint.k8s.rest`), named where callers look.
KubeError = rest.KubeError
ConflictError = rest.ConflictError
NotFoundError = rest.NotFoundError
is_transient = rest.is_transient


def load_configuration(
    kubeconfig: str | None = None, pool_size: int = 32, context: str | None = None
) -> client.Configuration:
    """Client settings from a kubeconfig (``$KUBECONFIG`` by default), else in-cluster.

    ``pool_size`` sizes the synchronous client's pool, which only the kubectl plugin uses.
    """
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
    # No retries hidden in urllib3: a failed request fails at once and the caller decides.
    configuration.retries = 0
    return configuration


def load_api_client(
    kubeconfig: str | None = None, pool_size: int = 32, context: str | None = None
) -> client.ApiClient:
    """A synchronous API client (the kubectl plugin's listing); see `load_configuration`."""
    return client.ApiClient(load_configuration(kubeconfig, pool_size, context))


@contextlib.asynccontextmanager
async def connect(
    kubeconfig: str | None = None, context: str | None = None, concurrency: int = 2
) -> AsyncIterator[Kube]:
    """A `Kube` on a connection of its own, closed on exit (the command line's calls)."""
    connection = informer.Connection(load_configuration(kubeconfig, context=context))
    try:
        yield Kube(connection, concurrency)
    finally:
        await connection.close()


def _core(namespace: str, plural: str, name: str = "") -> str:
    """The path of a core/v1 collection in a namespace, or of one object in it."""
    path = f"/api/v1/namespaces/{namespace}/{plural}"
    return f"{path}/{name}" if name else path


def _custom(kind: str, namespace: str | None, name: str) -> str:
    """The path of a certmint object, namespaced or cluster-scoped."""
    where = f"namespaces/{namespace}/" if namespace is not None else ""
    return f"/apis/{resources.GROUP}/{resources.VERSION}/{where}{resources.PLURALS[kind]}/{name}"


def _delete_options(uid: str | None) -> Json:
    """DeleteOptions; with ``uid``, the precondition that only that exact object goes."""
    return {"preconditions": {"uid": uid}} if uid else {"preconditions": {}}


class Kube:
    """The API calls the operator makes, each one request on the event loop."""

    def __init__(self, connection: informer.Connection, concurrency: int = 16) -> None:
        """Calls over ``connection`` (whose owner closes it), at most ``concurrency`` at once.

        Args:
            connection: The session to the API server, shared with the informers.
            concurrency: Requests in flight at most; the runner gives twice ``--workers``.
        """
        self._rest = rest.Rest(connection, concurrency)
        self._request = self._rest.request
        #: Events posted, by (namespace, object uid, type, reason, message) -> (name, count).
        self._events: collections.OrderedDict[tuple[str, ...], tuple[str, int]] = (
            collections.OrderedDict()
        )
        #: The newest post of each Event identity still in flight; a repeat waits for it.
        self._event_posts: dict[tuple[str, ...], asyncio.Future[None]] = {}

    async def _get(self, path: str) -> Json | None:
        """The object at ``path``, None when it does not exist."""
        try:
            return await self._request("GET", path)
        except NotFoundError:
            return None

    async def _delete(self, path: str, uid: str | None) -> None:
        """Deletes the object at ``path`` (only if its UID is ``uid``); gone already is fine."""
        with contextlib.suppress(NotFoundError):
            await self._request("DELETE", path, _delete_options(uid))

    # Secrets -------------------------------------------------------------------------
    async def get_secret(self, namespace: str, name: str) -> Json | None:
        return await self._get(_core(namespace, "secrets", name))

    async def create_secret(self, namespace: str, body: Mapping[str, Any]) -> Json:
        return await self._request("POST", _core(namespace, "secrets"), body)

    async def replace_secret(self, namespace: str, name: str, body: Mapping[str, Any]) -> Json:
        """Replaces a Secret; ``body.metadata.resourceVersion`` makes it conditional."""
        return await self._request("PUT", _core(namespace, "secrets", name), body)

    async def delete_secret(self, namespace: str, name: str, uid: str | None = None) -> None:
        """Deletes a Secret; with ``uid`` only that exact object (a precondition)."""
        await self._delete(_core(namespace, "secrets", name), uid)

    # Namespaces ------------------------------------------------------------------------
    async def list_namespaces(self) -> dict[str, dict[str, str]]:
        """Active namespaces and their labels (Terminating ones refuse new objects)."""
        result = await self._request("GET", "/api/v1/namespaces")
        return {
            item["metadata"]["name"]: dict(item["metadata"].get("labels") or {})
            for item in result.get("items") or []
            if (item.get("status") or {}).get("phase") != "Terminating"
        }

    # ConfigMaps (trust distribution) -------------------------------------------------
    async def list_config_maps(self, label_selector: str, namespace: str = "") -> list[Json]:
        """ConfigMaps in one namespace, or in all ("", which needs cluster-wide rights)."""
        path = _core(namespace, "configmaps") if namespace else "/api/v1/configmaps"
        result = await self._request("GET", path, params={"labelSelector": label_selector})
        return list(result.get("items") or [])

    async def get_config_map(self, namespace: str, name: str) -> Json | None:
        return await self._get(_core(namespace, "configmaps", name))

    async def create_config_map(self, namespace: str, body: Mapping[str, Any]) -> Json:
        """Creates a ConfigMap; `ConflictError` when one of that name exists (never replaced)."""
        return await self._request("POST", _core(namespace, "configmaps"), body)

    async def replace_config_map(self, namespace: str, name: str, body: Mapping[str, Any]) -> Json:
        """Replaces a ConfigMap; ``body.metadata.resourceVersion`` makes it conditional."""
        return await self._request("PUT", _core(namespace, "configmaps", name), body)

    async def delete_config_map(self, namespace: str, name: str, uid: str | None = None) -> None:
        """Deletes a ConfigMap; with ``uid`` only that exact object (a precondition)."""
        await self._delete(_core(namespace, "configmaps", name), uid)

    # ClusterTrustBundles ---------------------------------------------------------------
    _BUNDLES = "/apis/certificates.k8s.io/v1beta1/clustertrustbundles"

    async def get_cluster_trust_bundle(self, name: str) -> Json | None:
        """A certificates.k8s.io/v1beta1 ClusterTrustBundle, None when absent (or not served)."""
        return await self._get(f"{self._BUNDLES}/{name}")

    async def create_cluster_trust_bundle(self, body: Mapping[str, Any]) -> Json:
        """Creates a ClusterTrustBundle; `ConflictError` when one of that name exists."""
        return await self._request("POST", self._BUNDLES, body)

    async def replace_cluster_trust_bundle(self, name: str, body: Mapping[str, Any]) -> Json:
        """Replaces a ClusterTrustBundle; ``body.metadata.resourceVersion`` is required."""
        return await self._request("PUT", f"{self._BUNDLES}/{name}", body)

    async def delete_cluster_trust_bundle(self, name: str, uid: str) -> None:
        """Deletes exactly the ClusterTrustBundle with that UID (a precondition)."""
        await self._delete(f"{self._BUNDLES}/{name}", uid)

    # PodCertificateRequests ----------------------------------------------------------
    _POD_CERTIFICATES = "/apis/certificates.k8s.io/v1beta1"

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
        path = f"{self._POD_CERTIFICATES}/namespaces/{namespace}/podcertificaterequests/{name}"
        return await self._request("PUT", f"{path}/status", body)

    # certmint.io objects -------------------------------------------------------------
    async def patch_status(
        self, kind: str, namespace: str | None, name: str, status: Mapping[str, Any]
    ) -> Json:
        """Merge-patches the status subresource of a certmint object."""
        path = _custom(kind, namespace, name) + "/status"
        return await self._request("PATCH", path, {"status": status}, content_type=rest.MERGE_PATCH)

    async def get_object(self, kind: str, namespace: str | None, name: str) -> Json | None:
        return await self._get(_custom(kind, namespace, name))

    async def patch_annotations(
        self, kind: str, namespace: str | None, name: str, annotations: Mapping[str, str]
    ) -> Json:
        """Merge-patches annotations of a certmint object (others are kept)."""
        body = {"metadata": {"annotations": dict(annotations)}}
        path = _custom(kind, namespace, name)
        return await self._request("PATCH", path, body, content_type=rest.MERGE_PATCH)

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
                await self._request(
                    "PATCH",
                    _core(namespace, "events", name),
                    patch,
                    content_type=rest.STRATEGIC_MERGE_PATCH,
                )
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
        created = await self._request("POST", _core(namespace, "events"), body)
        self._events[identity] = (str(created["metadata"]["name"]), 1)
        while len(self._events) > EVENT_MEMORY:
            self._events.popitem(last=False)

    # Leases (leader election) --------------------------------------------------------
    async def get_lease(self, namespace: str, name: str) -> Json | None:
        return await self._get(_leases(namespace, name))

    async def create_lease(self, namespace: str, body: Mapping[str, Any]) -> Json:
        return await self._request("POST", _leases(namespace), body)

    async def replace_lease(self, namespace: str, name: str, body: Mapping[str, Any]) -> Json:
        return await self._request("PUT", _leases(namespace, name), body)


def _leases(namespace: str, name: str = "") -> str:
    """The path of the Leases in a namespace, or of one of them."""
    path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
    return f"{path}/{name}" if name else path
