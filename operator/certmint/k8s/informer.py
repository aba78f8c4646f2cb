"""List, then watch: how certmint follows the kinds that grow with the cluster.

Certificates, their Secrets and ServiceAccounts can number in the tens of thousands.
kopf would hold every listed object, and a task for it, until the listings of all
kinds are complete (docs/performance.md); this informer, like client-go's reflector,
keeps nothing but what its handler keeps:

1. a paged LIST (``limit``/``continue``), each object handed to the handler as ``ADDED``;
   then whatever the handler saw before and the list no longer has, as ``DELETED``;
2. a WATCH from the list's resourceVersion, with bookmarks, each event handed over as it
   arrives; the API server ends a watch after `WATCH_TIMEOUT_S` and it is resumed from
   the last resourceVersion seen;
3. on ``410 Gone`` (the resourceVersion was compacted away) back to 1; on any other
   failure a capped exponential backoff, then a resumed watch.

`Informer.listed` is set once the first listing has been handed over completely: the
exact moment the store holds everything that existed when the list was read. Nothing
ends the loop but cancellation: a kind whose CRD is not installed yet (404), a refused
request, an API server that is down or answers 429/5xx are all retried with the backoff,
so CRDs that appear after the start are picked up. `Informer.stalled_for` says how long
the loop has shown no sign of life (liveness): every attempt, page, line and failure counts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

import aiohttp
from kubernetes import client

log = logging.getLogger("certmint.watch")

Json = dict[str, Any]
ObjectKey = tuple[str, str]
#: Receives ``ADDED``, ``MODIFIED`` or ``DELETED`` and the object.
EventHandler = Callable[[str, Mapping[str, Any]], None]

PAGE_SIZE = 500
WATCH_TIMEOUT_S = 300
#: What a failed request or a broken stream raises, besides `ApiError`.
CONNECTION_FAILURES: tuple[type[Exception], ...] = (
    aiohttp.ClientError,
    TimeoutError,
    ValueError,  # a truncated or malformed JSON body
    OSError,
)
#: A watch line may hold a whole object (a Secret can be 1 MiB, base64 makes it more).
MAX_LINE_BYTES = 4 * 1024 * 1024
#: Who the API server sees in its audit log, and the field manager of certmint's writes.
USER_AGENT = "certmint"


@dataclasses.dataclass(frozen=True)
class Kind:
    """A listable kind: where its objects are, and which of them certmint follows."""

    api_prefix: str  # "/api/v1", "/apis/certmint.io/v1alpha1"
    plural: str
    label_selector: str = ""

    def path(self, namespace: str) -> str:
        """The collection in ``namespace``, or across all namespaces for ""."""
        if namespace:
            return f"{self.api_prefix}/namespaces/{namespace}/{self.plural}"
        return f"{self.api_prefix}/{self.plural}"


class ApiError(Exception):
    """The API server refused a list or a watch."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


#: Every way a list or a watch can fail.
REQUEST_FAILURES: tuple[type[Exception], ...] = (ApiError, *CONNECTION_FAILURES)


def authorization(configuration: client.Configuration) -> str:
    """The ``Authorization`` header the configuration asks for ("" for client certificates).

    Reading it runs the configuration's refresh hook, so a rotated token is picked up.
    """
    return str(
        configuration.get_api_key_with_prefix("BearerToken")
        or configuration.get_api_key_with_prefix("authorization")
        or ""
    )


class Connection:
    """HTTP to the API server with the credentials of a ``kubernetes`` client configuration.

    One aiohttp session carries the watches and every call of `certmint.k8s.kube` (through
    `certmint.k8s.rest`). The connection pool is not capped here: each watch holds one
    connection, and the API calls are bounded by their own concurrency (``--workers``).
    The bearer token is read from the configuration for every request, so its refresh
    hook (in a pod: the projected, rotating ServiceAccount token) is honoured.
    """

    def __init__(self, configuration: client.Configuration) -> None:
        self._configuration = configuration
        self._session: aiohttp.ClientSession | None = None

    def _ssl_context(self) -> ssl.SSLContext:
        configuration = self._configuration
        context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
        if configuration.cert_file:
            context.load_cert_chain(configuration.cert_file, configuration.key_file)
        if not configuration.verify_ssl:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def headers(self) -> dict[str, str]:
        """The headers of one request: JSON, certmint's User-Agent, the credentials."""
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if header := authorization(self._configuration):
            headers["Authorization"] = header
        return headers

    def url(self, path: str) -> str:
        """The URL of an API path ("/api/v1/namespaces") on this API server."""
        return str(self._configuration.host) + path

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl_context(), limit=0),
                read_bufsize=MAX_LINE_BYTES // 2,  # aiohttp refuses lines over twice this
            )
        return self._session

    async def get(self, path: str, params: Mapping[str, str]) -> aiohttp.ClientResponse:
        """Starts a GET; raises `ApiError` unless it succeeds."""
        response = await self.session.get(
            self.url(path),
            params=params,
            headers=self.headers(),
            timeout=aiohttp.ClientTimeout(sock_connect=30, sock_read=WATCH_TIMEOUT_S + 30),
        )
        if response.status != 200:
            body = await response.text()
            response.release()
            try:
                message = str(json.loads(body).get("message", body))
            except ValueError:
                message = body
            raise ApiError(response.status, message)
        return response

    async def exists_any(self, path: str) -> bool:
        """Whether the collection at ``path`` holds at least one object."""
        response = await self.get(path, {"limit": "1"})
        async with response:
            return bool(json.loads(await response.read()).get("items"))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class Informer:
    """Follows one kind in one namespace (or all) and hands its objects to ``handle``."""

    def __init__(
        self,
        connection: Connection,
        kind: Kind,
        handle: EventHandler,
        *,
        namespace: str = "",
        seen: Callable[[], None] = lambda: None,
        retry_base: float = 1.0,
        retry_cap: float = 30.0,
    ) -> None:
        self._connection = connection
        self.kind = kind
        self._handle = handle
        self._path = kind.path(namespace)
        self._seen = seen
        self._retry_base = retry_base
        self._retry_cap = retry_cap
        #: The objects the handler holds, to tell which ones a new listing lacks.
        self._keys: set[ObjectKey] = set()
        self.resource_version = ""
        self.listed = asyncio.Event()
        self._progress = time.monotonic()

    @property
    def name(self) -> str:
        return self._path

    def stalled_for(self) -> float:
        """Seconds since the loop last made progress: a request, a page, a line, a failure.

        A healthy watch shows progress at least every `WATCH_TIMEOUT_S` (the API server
        ends it); a failing one at least every ``retry_cap`` seconds.
        """
        return time.monotonic() - self._progress

    def _progressed(self) -> None:
        self._progress = time.monotonic()

    async def run(self) -> None:
        """Lists and watches until cancelled; failures are retried, never raised."""
        delay = 0.0
        while True:
            self._progressed()
            try:
                if not self.resource_version:
                    await self._list()
                await self._watch()
            except ApiError as err:
                if err.status == HTTPStatus.GONE:
                    log.info("%s: resourceVersion expired, listing again", self.name)
                    self.resource_version = ""
                    continue
                log.warning("%s: %s", self.name, err)
            except CONNECTION_FAILURES as err:
                log.warning("%s: connection failed: %r", self.name, err)
            else:
                delay = 0.0
                continue
            self._progressed()
            delay = min(max(delay * 2, self._retry_base), self._retry_cap)
            await asyncio.sleep(delay)

    def _params(self, **extra: str) -> dict[str, str]:
        if self.kind.label_selector:
            extra["labelSelector"] = self.kind.label_selector
        return extra

    async def _list(self) -> None:
        listed: set[ObjectKey] = set()
        params = self._params(limit=str(PAGE_SIZE))
        while True:
            response = await self._connection.get(self._path, params)
            async with response:
                page: Json = json.loads(await response.read())
            self._progressed()
            for item in page.get("items") or ():
                listed.add(object_key(item))
                self._deliver("ADDED", item)
            metadata = page.get("metadata") or {}
            if not metadata.get("continue"):
                break
            params["continue"] = metadata["continue"]
            del page
        for namespace, name in self._keys - listed:
            self._deliver("DELETED", {"metadata": {"namespace": namespace, "name": name}})
        self._keys = listed
        self.resource_version = str(metadata.get("resourceVersion", ""))
        self._seen()
        self.listed.set()

    async def _watch(self) -> None:
        params = self._params(
            watch="true",
            resourceVersion=self.resource_version,
            allowWatchBookmarks="true",
            timeoutSeconds=str(WATCH_TIMEOUT_S),
        )
        response = await self._connection.get(self._path, params)
        self._seen()
        async with response:
            while line := await response.content.readline():
                self._progressed()
                if line.strip():
                    self._dispatch(json.loads(line))

    def _dispatch(self, event: Mapping[str, Any]) -> None:
        type_, obj = str(event.get("type", "")), event.get("object") or {}
        if type_ == "ERROR":
            raise ApiError(int(obj.get("code") or 0), str(obj.get("message", "")))
        self._seen()
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if version:
            self.resource_version = str(version)
        if type_ == "BOOKMARK":
            return
        key = object_key(obj)
        if type_ == "DELETED":
            self._keys.discard(key)
        else:
            self._keys.add(key)
        self._deliver(type_, obj)

    def _deliver(self, type_: str, obj: Mapping[str, Any]) -> None:
        """Hands one object over; a handler's failure costs that object, not the watch."""
        try:
            self._handle(type_, obj)
        except Exception:
            log.exception("%s: handling %s %s failed", self.name, type_, object_key(obj))


def object_key(obj: Mapping[str, Any]) -> ObjectKey:
    """(namespace, name) of an object; namespace is "" for a cluster-scoped one."""
    metadata = obj.get("metadata") or {}
    return (str(metadata.get("namespace", "")), str(metadata.get("name", "")))
