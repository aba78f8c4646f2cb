"""kopf watches the issuer kinds: the only module of certmint that imports kopf.

Issuers and ClusterIssuers are few and have a life cycle of their own; kopf, the project's
operator framework, delivers them to the same callbacks the informer feeds for every other
kind (`handlers.issuer_events`). kopf resolves its resources by API discovery once, when it
starts, and a watcher of kopf that fails (a 403 or a 5xx after kopf's own retries) is
logged and never started again (kopf 1.45 then ends altogether). So `KopfIssuers.run`
supervises it:

1. **Start gate**: kopf is started only once discovery serves ``issuers`` and
   ``clusterissuers`` in ``certmint.io/v1alpha1``. Any failure (no answer, 404 before the
   CRDs exist, 429, 5xx, a 403 while a restarted API server warms up) is retried after a
   capped exponential backoff, forever.
2. **Watchers checked**: every `CHECK_INTERVAL_S` the supervisor looks for kopf's watcher
   task of each issuer kind. When one is missing (it failed, or kopf's one discovery
   failed), or kopf ended, kopf is stopped and started again through the gate; the
   process goes on. Each check that finds every watcher running is watch progress for
   ``/livez`` (`stalled_for`).
3. **Listing**: kopf runs every ``@kopf.index`` handler over the initial listing of both
   kinds before any ``@kopf.on.event`` handler, so the first event handler of a run marks
   the listing complete; when both kinds are empty there is no event, and the API server
   is asked whether any issuer exists. At that point issuers the store holds but the new
   listing lacks (deleted while kopf was down) are handed over as deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import kopf
from kubernetes import client

from certmint.api import resources
from certmint.core import state
from certmint.k8s import informer, kube

#: How often the supervisor checks that kopf's issuer watchers run.
CHECK_INTERVAL_S = 5.0
#: How long a started kopf may take to start its watchers: its one discovery request is
#: retried by kopf for up to about a minute (``networking.error_backoffs``).
START_GRACE_S = 90.0
#: How long kopf is given to stop after its stop flag is raised before it is cancelled.
STOP_GRACE_S = 10.0

log = logging.getLogger("certmint.kopf")


def kopf_settings() -> kopf.OperatorSettings:
    """kopf's settings: no scanning, no Events, bounded watches, never a SIGKILL of its own.

    Returns:
        Settings for one run of kopf.
    """
    settings = kopf.OperatorSettings()
    settings.posting.enabled = False  # certmint posts its own, deduplicated Events
    settings.scanning.disabled = True  # no CRD/namespace list or watch: fewer rights needed
    # Only index and event handlers are registered: kopf writes no progress, diff-base or
    # finalizer to the objects, so persistence settings do not apply.
    settings.watching.server_timeout = informer.WATCH_TIMEOUT_S
    settings.watching.client_timeout = informer.WATCH_TIMEOUT_S + 30
    settings.watching.connect_timeout = 30
    # kopf would SIGKILL the whole process some time after being cancelled without its
    # stop flag; stopping kopf is the supervisor's business, never the process's.
    settings.process.ultimate_exiting_timeout = None
    return settings


def connection_info(configuration: client.Configuration) -> kopf.ConnectionInfo:
    """kopf's credentials from the same client settings the rest of certmint uses.

    Args:
        configuration: The ``kubernetes`` client configuration of the run.

    Returns:
        The connection kopf logs in with.
    """
    scheme, _, token = informer.authorization(configuration).rpartition(" ")
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        scheme=scheme or ("Bearer" if token else None),
        token=token or None,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
    )


def next_delay(delay: float, base: float, cap: float) -> float:
    """The next delay of a capped exponential backoff (the informer's: base doubling to cap)."""
    return min(max(delay * 2, base), cap)


class Listing:
    """One run's initial listing: which issuers it held, and whether it is complete."""

    def __init__(self) -> None:
        self.keys: set[state.IssuerKey] = set()
        self.complete = asyncio.Event()


def issuer_key(kind: str, body: Mapping[str, Any]) -> state.IssuerKey:
    """The store's key of an issuer body of ``kind``."""
    metadata = body.get("metadata") or {}
    return state.IssuerKey(
        kind, str(metadata.get("namespace") or ""), str(metadata.get("name", ""))
    )


def event_type(event: Mapping[str, Any]) -> str:
    """kopf's event type as the informer's: a listed object (type None) is ``ADDED``."""
    return str(event.get("type") or "ADDED")


def running_watchers(plural: str) -> int:
    """How many of kopf's watcher tasks for ``plural`` of certmint.io run now.

    kopf names the task of each watched resource and namespace ``watcher for
    <plural>.<version>.<group>@<namespace>``; a watcher that failed is done, and gone
    from `asyncio.all_tasks`.
    """
    prefix = f"watcher for {plural}.{resources.VERSION}.{resources.GROUP}@"
    return sum(1 for task in asyncio.all_tasks() if task.get_name().startswith(prefix))


class KopfIssuers:
    """Runs kopf for the issuer kinds behind the start gate, and restarts it when it fails.

    Args:
        connection: certmint's HTTP connection, for discovery and the empty-listing check.
        configuration: The client settings kopf logs in with.
        store: The store whose issuers a new listing may have to prune.
        handlers: The event handler of each plural (``issuers``, ``clusterissuers``).
        namespaces: The namespaces watched, or () for the whole cluster.
        seen: Called with the plural for each issuer event (watch age metrics).
        on_started: Called right after each start of kopf, which installs SIGINT and
            SIGTERM handlers of its own: the runner takes them back.
    """

    def __init__(
        self,
        connection: informer.Connection,
        configuration: client.Configuration,
        store: state.Store,
        handlers: Mapping[str, informer.EventHandler],
        *,
        namespaces: Sequence[str] = (),
        seen: Callable[[str], None] = lambda _: None,
        on_started: Callable[[], None] = lambda: None,
        retry_base: float = 1.0,
        retry_cap: float = 30.0,
    ) -> None:
        self._connection = connection
        self._configuration = configuration
        self._store = store
        self._handlers = dict(handlers)
        self._namespaces = tuple(namespaces)
        self._seen = seen
        self._on_started = on_started
        self._retry_base = retry_base
        self._retry_cap = retry_cap
        self.listed = asyncio.Event()
        self.starts = 0
        self._progress = time.monotonic()

    name = "kopf issuers"

    @property
    def plurals(self) -> tuple[str, ...]:
        return tuple(self._handlers)

    def stalled_for(self) -> float:
        """Seconds since the supervisor last saw progress (`informer.Informer.stalled_for`)."""
        return time.monotonic() - self._progress

    def _progressed(self) -> None:
        self._progress = time.monotonic()

    async def run(self) -> None:
        """Gate, run and supervise kopf until cancelled; kopf's failures never end it."""
        delay = 0.0
        while True:
            await self.wait_served()
            healthy = await self._run_kopf()
            delay = (
                self._retry_base
                if healthy
                else next_delay(delay, self._retry_base, self._retry_cap)
            )
            self._progressed()
            await asyncio.sleep(delay)

    async def wait_served(self) -> None:
        """Returns once discovery serves every issuer kind; retries failures forever."""
        delay, failures = 0.0, 0
        while True:
            self._progressed()
            try:
                missing = await self._unserved()
            except informer.REQUEST_FAILURES as err:
                missing = set(self.plurals)
                status = err.status if isinstance(err, informer.ApiError) else 0
                transient = kube.is_transient(kube.KubeError(status, str(err)))
                level = logging.DEBUG if failures and transient else logging.WARNING
                log.log(level, "discovery of %s failed: %r", resources.API_PREFIX, err)
                failures += 1
            if not missing:
                log.info(
                    "%s serves %s: starting kopf", resources.API_PREFIX, ", ".join(self.plurals)
                )
                return
            delay = next_delay(delay, self._retry_base, self._retry_cap)
            await asyncio.sleep(delay)

    async def _unserved(self) -> set[str]:
        """The plurals discovery does not serve (a 404 means: none of them)."""
        try:
            response = await self._connection.get(resources.API_PREFIX, {})
        except informer.ApiError as err:
            if err.status == 404:
                return set(self.plurals)
            raise
        async with response:
            document = json.loads(await response.read())
        served = {str(each.get("name", "")) for each in document.get("resources") or ()}
        return set(self.plurals) - served

    async def _run_kopf(self) -> bool:
        """One run of kopf, until it ends or a watcher of it is gone.

        Returns:
            Whether every watcher of this run was seen running (the next start need not
            back off further).
        """
        listing = Listing()
        stop = asyncio.Event()
        namespaces = self._namespaces
        self.starts += 1
        try:
            spawned = await kopf.spawn_tasks(
                registry=self.registry(listing),
                settings=kopf_settings(),
                standalone=True,
                clusterwide=not namespaces,
                namespaces=namespaces,
                stop_flag=stop,
            )
        finally:
            self._on_started()  # kopf took SIGINT and SIGTERM over while spawning
        tasks = list(spawned)
        empty = asyncio.create_task(self._confirm_empty(listing), name="kopf empty listing")
        try:
            return await self._watch_over(tasks)
        finally:
            empty.cancel()
            await _stop(tasks, stop)

    async def _watch_over(self, tasks: Sequence[asyncio.Task[Any]]) -> bool:
        """Returns once a task of kopf ended, or a watcher is missing (see the module)."""
        started, healthy = time.monotonic(), False
        expected = {
            plural: len(self._namespaces) if plural == "issuers" and self._namespaces else 1
            for plural in self.plurals
        }
        while True:
            done, _ = await asyncio.wait(tasks, timeout=CHECK_INTERVAL_S)
            if done:
                names = ", ".join(sorted(task.get_name() for task in done))
                log.warning("kopf stopped (%s ended): starting it again", names)
                return healthy
            missing = [p for p, n in expected.items() if running_watchers(p) < n]
            if not missing:
                healthy = True
                self._progressed()
            elif healthy or time.monotonic() - started > START_GRACE_S:
                log.warning("kopf does not watch %s: starting it again", ", ".join(missing))
                return healthy
            else:
                self._progressed()  # kopf is still resolving its resources, with retries

    def registry(self, listing: Listing) -> kopf.OperatorRegistry:
        """kopf's handlers for one run: login, and an index and an event handler per kind.

        Args:
            listing: Where this run records its initial listing.

        Returns:
            A registry of its own for the run (kopf keeps its indexes per run).
        """
        registry = kopf.OperatorRegistry()
        configuration = self._configuration

        @kopf.on.login(registry=registry)
        def login(**_: Any) -> kopf.ConnectionInfo:
            return connection_info(configuration)

        for plural in self.plurals:
            self._register(registry, listing, plural)
        return registry

    def _register(self, registry: kopf.OperatorRegistry, listing: Listing, plural: str) -> None:
        kind, handle = resources.ISSUER_KINDS_BY_PLURAL[plural], self._handlers[plural]

        # Async handlers: kopf would run sync ones in threads, and the store is not shared.
        @kopf.index(
            resources.GROUP, resources.VERSION, plural, id=f"index_{plural}", registry=registry
        )
        async def index_issuer(body: kopf.Body, **_: Any) -> None:
            listing.keys.add(issuer_key(kind, body))
            self._progressed()

        @kopf.on.event(
            resources.GROUP, resources.VERSION, plural, id=f"on_{plural}", registry=registry
        )
        async def on_issuer(event: Mapping[str, Any], body: kopf.Body, **_: Any) -> None:
            self.listing_complete(listing)
            self._progressed()
            self._seen(plural)
            handle(event_type(event), body)

    def listing_complete(self, listing: Listing) -> None:
        """Marks a run's initial listing complete; prunes the issuers it lacked.

        Args:
            listing: The run's listing, complete now (the first event handler runs only
                after every index handler of the initial listing, or none exist at all).
        """
        if listing.complete.is_set():
            return
        listing.complete.set()
        by_kind = {
            resources.ISSUER_KINDS_BY_PLURAL[plural]: self._handlers[plural]
            for plural in self.plurals
        }
        for key in [key for key in self._store.issuers if key not in listing.keys]:
            kind, namespace, name = key
            if kind in by_kind:
                log.info("%s %s/%s is gone since kopf last listed it", kind, namespace, name)
                by_kind[kind]("DELETED", {"metadata": {"namespace": namespace, "name": name}})
        for plural in self.plurals:
            self._seen(plural)
        self.listed.set()

    async def _confirm_empty(self, listing: Listing, interval: float = 2.0) -> None:
        """Completes the listing when no issuer exists at all: kopf reports nothing then."""
        namespaces = self._namespaces or ("",)
        paths = [
            informer.Kind(resources.API_PREFIX, plural).path(ns)
            for plural in self.plurals
            for ns in (namespaces if plural == "issuers" else ("",))
        ]
        while not listing.complete.is_set():
            try:
                exists = [await self._connection.exists_any(path) for path in paths]
            except informer.REQUEST_FAILURES as err:
                log.debug("could not list issuers: %r", err)
            else:
                if not any(exists):
                    self.listing_complete(listing)
                    return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(listing.complete.wait(), interval)


async def _stop(tasks: Sequence[asyncio.Task[Any]], stop: asyncio.Event) -> None:
    """Stops one run of kopf: its stop flag is raised, then its root tasks are cancelled.

    Not `kopf.run_tasks`: when kopf ends, that cancels every task of the event loop
    started after kopf, certmint's reconciliations included. kopf's orchestrator stops
    its watchers (and they their object workers) when it is cancelled.
    """
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks, timeout=STOP_GRACE_S)
    for task in tasks:
        if task.done():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                task.result()
        else:
            log.warning("kopf's %s did not stop within %.0fs", task.get_name(), STOP_GRACE_S)
