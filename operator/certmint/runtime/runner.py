"""``certmint run``: the informers, kopf, the workers, leader election and the metrics server.

Certificates, Secrets and ServiceAccounts come from certmint's informers; Issuers and
ClusterIssuers from kopf, started behind a discovery gate and restarted when a watcher of
it fails (`certmint.runtime.kopf_issuers`).

Every task runs until a signal; none ends on an API failure (those are retried where they
happen). Should one end anyway, that is a bug: it is logged, ``/livez`` fails, and the
process exits with a non-zero code so that it is restarted instead of running half-wedged.
"""

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
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import prometheus_client
from aiohttp import web
from kubernetes import client

from certmint.core import policy, state
from certmint.k8s import informer, kube, leader
from certmint.runtime import (
    certificates,
    events,
    handlers,
    health,
    issuers,
    kopf_issuers,
    metrics,
    pod_certificates,
    probes,
    scheduler,
    settings,
    workers,
)

log = logging.getLogger("certmint.run")


@dataclasses.dataclass(frozen=True)
class Options:
    """What ``certmint run`` was asked to do."""

    kubeconfig: str | None = None
    namespaces: Sequence[str] = ()
    metrics_address: str = "0.0.0.0"  # noqa: S104 -- in a pod the probes come from the node
    metrics_port: int = 9403
    per_certificate_metrics: metrics.PerCertificate = metrics.PerCertificate.ATTENTION
    settings: settings.Settings = dataclasses.field(default_factory=settings.Settings)
    lease_duration: float = 15.0
    identity: str = ""
    lease_name: str = leader.DEFAULT_LEASE_NAME
    #: Serve ClusterIssuers although ``namespaces`` are listed (a label-selector shard).
    cluster_issuers: bool = False


async def serve_metrics(
    address: str, port: int, check: Callable[[], probes.Facts]
) -> web.AppRunner:
    """Serves ``/metrics``, ``/livez``, ``/readyz`` and ``/healthz`` (the same as ``/readyz``).

    ``/metrics?name[]=a&name[]=b`` exposes only those metrics, as prometheus_client's own
    servers do: at 10,000 Certificates the whole page is 50,000 lines. A probe answers 200
    with ``ok``, or 503 with one reason per line (see `certmint.runtime.probes`).
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

    def probe(verdict_of: Callable[[probes.Facts], probes.Verdict]) -> Any:
        async def answer(_: web.Request) -> web.Response:
            verdict = verdict_of(check())
            return web.Response(status=200 if verdict.ok else 503, text=verdict.body())

        return answer

    app = web.Application()
    app.router.add_get("/metrics", metrics_page)
    app.router.add_get("/livez", probe(probes.liveness))
    app.router.add_get("/readyz", probe(probes.readiness))
    app.router.add_get("/healthz", probe(probes.readiness))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, address, port).start()
    return runner


def take_signals(received: asyncio.Event) -> None:
    """Makes SIGTERM and SIGINT set ``received``; called again after each start of kopf.

    Args:
        received: The event `stop_on_signal` waits for.
    """
    for number in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(number, received.set)


async def stop_on_signal(received: asyncio.Event) -> None:
    """Returns on SIGTERM or SIGINT; ending the run releases the Lease at once."""
    take_signals(received)
    await received.wait()
    log.info("stopping: releasing the leadership")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclasses.dataclass(frozen=True)
class Reconcilers:
    """The two reconcilers over one store, sharing one event sink."""

    certificates: certificates.CertificateReconciler
    issuers: issuers.IssuerReconciler

    @classmethod
    def compose(
        cls,
        api: kube.Kube,
        store: state.Store,
        config: settings.Settings,
        clock: Callable[[], datetime] = _now,
    ) -> Reconcilers:
        budget = None
        if config.event_qps > 0:
            budget = scheduler.TokenBucket(config.event_qps, config.event_burst)
        sink = events.EventSink(api, clock, budget)
        certs = certificates.CertificateReconciler(api, store, config, sink, clock=clock)
        return cls(
            certs,
            issuers.IssuerReconciler(api, store, config, sink, clock=clock, certificates=certs),
        )

    @property
    def store(self) -> state.Store:
        return self.certificates.store

    @property
    def queues(self) -> dict[str, scheduler.WorkQueue[Any]]:
        """The work queues, by their name in ``certmint_workqueue_depth``."""
        return {"certificates": self.certificates.queue, "issuers": self.issuers.queue}


async def run_workers(
    rec: Reconcilers, elector: leader.LeaderElector, watches: health.WatchHealth
) -> None:
    """Starts reconciling once the store holds the initial listings of every kind."""
    await watches.wait_synced()
    log.info("all watched kinds listed")
    config = rec.certificates.settings
    await workers.run(
        [
            workers.Pool(rec.issuers.queue, rec.issuers.reconcile, issuers.ISSUER_WORKERS),
            workers.Pool(rec.certificates.queue, rec.certificates.reconcile, config.workers),
        ],
        elector.wait_for_leadership,
        clock=rec.certificates.clock,
        retry_cap=config.retry_cap,
    )


async def sweep_on_leadership(
    rec: Reconcilers, elector: leader.LeaderElector, watches: health.WatchHealth
) -> None:
    """Each time this replica becomes the leader, deletes Secrets orphaned meanwhile."""
    while True:
        await elector.leading.wait()
        await watches.wait_synced()  # the store must hold every Certificate first
        try:
            await rec.certificates.sweep_orphaned_secrets()
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


def build_informers(
    rec: Reconcilers,
    elector: leader.LeaderElector,
    watches: health.WatchHealth,
    connection: informer.Connection,
    namespaces: Sequence[str],
) -> list[informer.Informer]:
    """One informer per kind and namespace (or one cluster-wide), each tracked by ``watches``.

    The issuer kinds are kopf's (`build_kopf`).
    """
    queue = rec.certificates.queue
    kinds: list[tuple[informer.Kind, informer.EventHandler]] = [
        (handlers.CERTIFICATES, handlers.certificate_events(rec.certificates, elector.is_leader)),
        (handlers.SECRETS, handlers.secret_events(rec.store, queue)),
        (handlers.SERVICE_ACCOUNTS, handlers.service_account_events(rec.store, queue)),
    ]
    informers = [
        informer.Informer(
            connection,
            kind,
            handle,
            namespace=namespace,
            seen=functools.partial(watches.seen, kind.plural),
        )
        for kind, handle in kinds
        for namespace in namespaces or ("",)
    ]
    for each in informers:
        watches.track(each.listed)
        watches.seen(each.kind.plural)  # a watch that never lists ages from the start
    return informers


def build_kopf(
    rec: Reconcilers,
    watches: health.WatchHealth,
    connection: informer.Connection,
    configuration: client.Configuration,
    options: tuple[Sequence[str], asyncio.Event],
    *,
    cluster_issuers: bool = False,
) -> kopf_issuers.KopfIssuers:
    """kopf for Issuers and ClusterIssuers, feeding the same handlers, tracked by ``watches``.

    Args:
        rec: The reconcilers whose store and queues the issuer events feed.
        watches: Tracks kopf's initial listing and the issuer event times.
        connection: certmint's connection, for kopf's start gate.
        configuration: The client settings kopf logs in with.
        options: The namespaces watched (() for all), and the event the signal handler sets.
        cluster_issuers: Watch ClusterIssuers even though namespaces are listed.

    Returns:
        The supervisor; its ``run`` is a task of the runtime. ClusterIssuers are watched
        only cluster-wide: the Roles of an operator limited to chosen namespaces cannot
        list a cluster-scoped kind.
    """
    namespaces, received = options
    queue = rec.certificates.queue
    issuer_handlers = {"issuers": handlers.issuer_events(rec.issuers, queue, "Issuer")}
    if cluster_issuers or not namespaces:
        issuer_handlers["clusterissuers"] = handlers.issuer_events(
            rec.issuers, queue, "ClusterIssuer"
        )
    supervisor = kopf_issuers.KopfIssuers(
        connection,
        configuration,
        rec.store,
        issuer_handlers,
        namespaces=namespaces,
        seen=watches.seen,
        on_started=functools.partial(take_signals, received),
    )
    watches.track(supervisor.listed)
    for plural in issuer_handlers:
        watches.seen(plural)
    return supervisor


def facts_of(
    tasks: Sequence[asyncio.Task[Any]],
    watches: Sequence[informer.Informer | kopf_issuers.KopfIssuers],
    rec: Reconcilers,
    listings: health.WatchHealth,
    elector: leader.LeaderElector,
) -> Callable[[], probes.Facts]:
    """What the probes judge, gathered at the moment of each request."""

    def gather() -> probes.Facts:
        return probes.Facts(
            ended_tasks=tuple(task.get_name() for task in tasks if task.done()),
            watch_stalls={each.name: each.stalled_for() for each in watches},
            longest_reconciliations={
                "certificates": rec.certificates.queue.longest_running(),
                "issuers": rec.issuers.queue.longest_running(),
            },
            synced=listings.synced,
            in_contact=elector.in_contact(),
            leader=elector.is_leader(),
        )

    return gather


async def supervise(tasks: Sequence[asyncio.Task[Any]]) -> int:
    """Waits for the first task to end: 0 when it was the signal handler, else 1.

    Any other task ending is a bug (they retry every API failure), logged with its cause.
    """
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    code = 0
    for task in done:
        if task.get_name() == "signals":
            continue
        code = 1
        cause = None if task.cancelled() else task.exception()
        log.error("%s stopped unexpectedly (%r): exiting to be restarted", task.get_name(), cause)
    return code


def build_elector(api: kube.Kube, options: Options, identity: str) -> leader.LeaderElector:
    """Leader election on the Lease (``--lease-name``) in the operator namespace.

    Args:
        api: The client the Lease is read and written with.
        options: The run's options (operator namespace, lease duration).
        identity: This replica's holder identity.

    Returns:
        The elector; its ``run`` is a task of the runtime.
    """
    return leader.LeaderElector(
        api,
        options.settings.operator_namespace,
        identity,
        name=options.lease_name,
        lease_duration=options.lease_duration,
        renew_deadline=options.lease_duration * 2 / 3,
        retry_period=max(options.lease_duration / 7.5, 0.5),
    )


def register_collector(
    rec: Reconcilers,
    watches: health.WatchHealth,
    elector: leader.LeaderElector,
    more_queues: Mapping[str, scheduler.WorkQueue[Any]],
    per_certificate: metrics.PerCertificate = metrics.PerCertificate.ATTENTION,
) -> metrics.StoreCollector:
    """Registers the scrape-time collector of this run's store (unregistered at its end)."""
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    collector = metrics.StoreCollector(
        rec.store,
        watches,
        elector.is_leader,
        queues={**rec.queues, **more_queues},
        per_certificate=per_certificate,
    )
    prometheus_client.REGISTRY.register(collector)
    metrics.initialize_series(policy.REASONS)
    return collector


async def run(options: Options) -> int:
    """Runs the operator until SIGINT/SIGTERM.

    Returns:
        The exit code: 0 after a signal, 1 when a part of the runtime ended by itself.

    Raises:
        kubernetes.config.ConfigException: No kubeconfig and no in-cluster configuration.
        OSError: The metrics port cannot be bound.
    """
    tune_garbage_collector()
    config = options.settings
    configuration = kube.load_configuration(options.kubeconfig)
    connection = informer.Connection(configuration)
    api = kube.Kube(connection, concurrency=config.workers * 2)
    store = state.Store()
    rec = Reconcilers.compose(api, store, config)
    identity = options.identity or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
    elector = build_elector(api, options, identity)
    watches = health.WatchHealth()
    informers = build_informers(rec, elector, watches, connection, options.namespaces)
    received = asyncio.Event()
    signer = pod_certificates.PodCertificateSigner(api, store, config, rec.certificates.sink.post)
    scope = (options.namespaces, received)
    kopf = build_kopf(
        rec, watches, connection, configuration, scope, cluster_issuers=options.cluster_issuers
    )
    collector = register_collector(
        rec, watches, elector, signer.queues, options.per_certificate_metrics
    )
    tasks = [
        *(asyncio.create_task(each.run(), name=f"watch {each.name}") for each in informers),
        asyncio.create_task(kopf.run(), name="kopf-issuers"),
        asyncio.create_task(run_workers(rec, elector, watches), name="workers"),
        asyncio.create_task(elector.run(), name="leader-election"),
        asyncio.create_task(sweep_on_leadership(rec, elector, watches), name="orphan-sweeper"),
        asyncio.create_task(stop_on_signal(received), name="signals"),
        *signer.tasks(connection, elector, watches.wait_synced, options.namespaces),
    ]
    try:
        server = await serve_metrics(
            options.metrics_address,
            options.metrics_port,
            facts_of(tasks, [*informers, kopf], rec, watches, elector),
        )
    except BaseException:  # OSError, or a shard's restart cancelling the start
        await _stop(tasks, connection)
        prometheus_client.REGISTRY.unregister(collector)
        raise
    log.info("certmint %s starting (metrics on :%d)", identity, options.metrics_port)
    try:
        return await supervise(tasks)
    finally:
        await _stop(tasks, connection)
        await server.cleanup()
        # A shard (`certmint.runtime.shard`) runs the runtime again in this process.
        prometheus_client.REGISTRY.unregister(collector)


async def _stop(tasks: Sequence[asyncio.Task[Any]], connection: informer.Connection) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    await connection.close()
