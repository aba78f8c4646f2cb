"""``certmint run``: the informers, kopf, the workers, leader election and the metrics server."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import gc
import logging
import signal
import socket
import uuid
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import kopf
import prometheus_client
from aiohttp import web
from kubernetes import client

from certmint import (
    controller,
    handlers,
    informer,
    kube,
    leader,
    metrics,
    policy,
    state,
)

log = logging.getLogger("certmint.run")


@dataclasses.dataclass(frozen=True)
class Options:
    """What ``certmint run`` was asked to do."""

    kubeconfig: str | None = None
    namespaces: Sequence[str] = ()
    metrics_address: str = "0.0.0.0"  # noqa: S104 -- in a pod the probes come from the node
    metrics_port: int = 9403
    settings: controller.Settings = dataclasses.field(default_factory=controller.Settings)
    lease_duration: float = 15.0
    identity: str = ""


def kopf_settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.posting.enabled = False  # certmint posts its own, deduplicated Events
    settings.scanning.disabled = True  # no CRD/namespace scanning: fewer rights needed
    # Only index and event handlers are registered, so kopf stores no progress, no
    # diff-base and no finalizer on our objects: persistence settings do not apply.
    # A silent watch is re-established instead of stalling forever.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    return settings


async def serve_metrics(address: str, port: int, alive: Callable[[], bool]) -> web.AppRunner:
    """Serves ``/metrics`` and ``/healthz`` (200 while ``alive()``, else 503).

    ``/metrics?name[]=a&name[]=b`` exposes only those metrics, as prometheus_client's own
    servers do: at 10,000 Certificates the whole page is 50,000 lines.
    """

    async def metrics_page(request: web.Request) -> web.Response:
        names = request.query.getall("name[]", [])
        registry = prometheus_client.REGISTRY
        body = prometheus_client.generate_latest(
            registry.restricted_registry(names) if names else registry
        )
        return web.Response(
            body=body, headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST}
        )

    async def healthz(_: web.Request) -> web.Response:
        if alive():
            return web.Response(text="ok\n")
        return web.Response(status=503, text="not ready\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics_page)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, address, port).start()
    return runner


async def stop_on_signal(ready: asyncio.Event) -> None:
    """Returns on SIGTERM or SIGINT, taking the signals over from kopf once it has started.

    kopf's own shutdown waits up to 5 s for the tasks it did not start (the workers, metrics
    connections) while the Lease is still renewed; ending the run here releases it at once.
    """
    await ready.wait()  # kopf installs its handlers before it reports ready
    received = asyncio.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(number, received.set)
    await received.wait()
    log.info("stopping: releasing the leadership")


async def run_workers(
    ctl: controller.Controller,
    elector: leader.LeaderElector,
    health: handlers.WatchHealth,
    issuers_probe: Coroutine[Any, Any, None],
) -> None:
    """Starts reconciling once the store holds the initial listings of every kind."""
    await issuers_probe
    await health.wait_synced()
    log.info("all watched kinds listed")
    await ctl.run_workers(elector.is_leader, elector.leading)


async def sweep_on_leadership(
    ctl: controller.Controller, elector: leader.LeaderElector, health: handlers.WatchHealth
) -> None:
    """Each time this replica becomes the leader, deletes Secrets orphaned meanwhile."""
    while True:
        await elector.leading.wait()
        await health.wait_synced()  # the store must hold every Certificate first
        try:
            await ctl.sweep_orphaned_secrets()
        except kube.KubeError as err:
            log.warning("orphaned Secret sweep failed: %s", err)
        await elector.following.wait()


def tune_garbage_collector() -> None:
    """Collects cycles less often, and never scans what start-up created.

    At 10,000 Certificates the store holds millions of long-lived objects; with
    the default thresholds (700, 10, 10) the cycle collector took 40% of the CPU of a
    restart (docs/performance.md). Few of certmint's objects form cycles.
    """
    gc.freeze()
    gc.set_threshold(10_000, 50, 50)


async def run(options: Options) -> None:
    """Runs the operator until SIGINT/SIGTERM or a fatal error."""
    tune_garbage_collector()
    settings = options.settings
    threads = settings.workers * 2
    configuration = kube.load_configuration(options.kubeconfig, pool_size=threads)
    api = kube.Kube(client.ApiClient(configuration), threads=threads)
    store = state.Store()
    ctl = controller.Controller(api, store, settings)
    identity = options.identity or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
    elector = leader.LeaderElector(
        api,
        settings.operator_namespace,
        identity,
        lease_duration=options.lease_duration,
        renew_deadline=options.lease_duration * 2 / 3,
        retry_period=max(options.lease_duration / 7.5, 0.5),
    )
    health = handlers.WatchHealth()
    connection = informer.Connection(configuration)
    informers = [
        informer.Informer(
            connection,
            kind,
            handle,
            namespace=namespace,
            seen=functools.partial(health.seen, kind.plural),
        )
        for kind, handle in (
            (handlers.CERTIFICATES, handlers.certificate_events(ctl, elector.is_leader)),
            (handlers.SECRETS, handlers.secret_events(ctl)),
            (handlers.SERVICE_ACCOUNTS, handlers.service_account_events(ctl)),
        )
        for namespace in options.namespaces or ("",)
    ]
    for each in informers:
        health.track(each.listed)
        health.seen(each.kind.plural)  # a watch that never lists ages from the start
    issuers_listed = health.track(asyncio.Event())
    registry = handlers.build_registry(
        ctl, health, issuers_listed, configuration, cluster_issuers=not options.namespaces
    )
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    prometheus_client.REGISTRY.register(
        metrics.StoreCollector(
            store,
            health,
            elector.is_leader,
            queues={"certificates": ctl.certificates, "issuers": ctl.issuers},
        )
    )
    metrics.initialize_series(policy.REASONS)
    ready = asyncio.Event()
    stop = asyncio.Event()
    operator = kopf.operator(
        registry=registry,
        settings=kopf_settings(),
        standalone=True,
        clusterwide=not options.namespaces,
        namespaces=options.namespaces,
        ready_flag=ready,
        stop_flag=stop,
    )
    tasks = [
        *(asyncio.create_task(each.run(), name=f"watch {each.name}") for each in informers),
        asyncio.create_task(operator, name="kopf"),
        asyncio.create_task(
            run_workers(
                ctl,
                elector,
                health,
                handlers.confirm_no_issuers(connection, issuers_listed, options.namespaces),
            ),
            name="workers",
        ),
        asyncio.create_task(elector.run(), name="leader-election"),
        asyncio.create_task(sweep_on_leadership(ctl, elector, health), name="orphan-sweeper"),
        asyncio.create_task(stop_on_signal(ready), name="signals"),
    ]
    server = await serve_metrics(
        options.metrics_address,
        options.metrics_port,
        lambda: ready.is_set() and not any(task.done() for task in tasks),
    )
    log.info("certmint %s starting (metrics on :%d)", identity, options.metrics_port)
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.error("%s stopped: %r", task.get_name(), task.exception())
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await server.cleanup()
        await connection.close()
        api.close()
