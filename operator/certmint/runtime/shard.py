"""``certmint run --namespace-selector k=v``: serve the namespaces whose labels match.

A watch on Namespaces, filtered by the API server with the selector, keeps the set of
matching namespaces. The runtime (`certmint.runtime.runner`) runs with exactly that set,
as ``-n`` would give it; when the set changes (a namespace is labelled into this shard,
relabelled out of it, created or deleted), the runtime is stopped, which releases the
Lease, and started again with the new set. A namespace that changes shard is therefore
released by the old shard as soon as its watch sees the label change, and picked up by
the new one as soon as its own watch does: both happen within the same watch round
trip, and a Secret write that loses a race between them is refused by the API server
(creates and updates are conditional). Restarting lists everything again, which
re-issues nothing (docs/performance.md, "Restart"): namespace moves are rare, and a
restart keeps the runtime's one fixed set of informers simple.

Without a matching namespace the shard serves nothing and waits (no metrics port).
It serves namespaced Issuers and ClusterIssuers; only a shard run with
``--manage-cluster-issuers`` manages the latter (docs/performance.md, "Scaling out").
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import signal
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from kubernetes import client

from certmint.k8s import informer, kube

log = logging.getLogger("certmint.shard")

_LABEL = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_./]*)=([-A-Za-z0-9_.]*)$")


@dataclasses.dataclass(frozen=True)
class Selector:
    """An equality label selector: ``key=value[,key=value...]``."""

    labels: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, text: str) -> Selector:
        """Parses ``key=value,...``.

        Raises:
            ValueError: A term is not ``key=value`` (set-based selectors are not supported).
        """
        labels = []
        for term in text.split(","):
            match = _LABEL.match(term.strip())
            if not match:
                raise ValueError(f"not a key=value label selector term: {term!r}")
            labels.append((match[1], match[2]))
        return cls(tuple(sorted(labels)))

    @property
    def query(self) -> str:
        """The ``labelSelector`` query parameter."""
        return ",".join(f"{key}={value}" for key, value in self.labels)

    @property
    def lease_name(self) -> str:
        """``certmint-leader-`` and the selector's values: one Lease per shard by default."""
        values = "-".join(value for _, value in self.labels if value)
        slug = re.sub(r"[^a-z0-9-]+", "-", values.lower()).strip("-")
        return f"certmint-leader-{slug}"[:63].rstrip("-") if slug else "certmint-leader"


class Membership:
    """The names of the matching namespaces, fed by the Namespace watch."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.changed = asyncio.Event()

    def handle(self, event: str, body: Mapping[str, Any]) -> None:
        """An informer handler: DELETED (or no longer matching) removes, anything else adds."""
        name = str((body.get("metadata") or {}).get("name", ""))
        before = frozenset(self.names)
        if event == "DELETED":
            self.names.discard(name)
        else:
            self.names.add(name)
        if frozenset(self.names) != before:
            self.changed.set()


Serve = Callable[[tuple[str, ...]], Coroutine[Any, Any, int]]


async def _idle(changed: asyncio.Task[Any]) -> bool:
    """Waits for a change, or a signal (the runtime's handlers are gone): True on a change."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stopping.set)
    stopped = asyncio.create_task(stopping.wait())
    await asyncio.wait({changed, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    return changed.done()


async def follow(membership: Membership, listed: asyncio.Event, serve: Serve) -> int:
    """Runs ``serve`` with the matching namespaces, again whenever they change.

    Args:
        membership: The set, kept by a running Namespace informer.
        listed: Set once that informer has listed the matching namespaces.
        serve: Runs the runtime for a tuple of namespaces; its return ends the shard.

    Returns:
        What ``serve`` returned (0 after a signal, 1 when the runtime failed).
    """
    await listed.wait()
    while True:
        membership.changed.clear()
        served = tuple(sorted(membership.names))
        changed = asyncio.create_task(membership.changed.wait())
        if not served:
            log.warning("no namespace matches the selector: serving nothing until one does")
            if await _idle(changed):
                continue
            changed.cancel()
            return 0
        log.info("serving namespaces %s", ", ".join(served))
        running = asyncio.create_task(serve(served))
        done, _ = await asyncio.wait({running, changed}, return_when=asyncio.FIRST_COMPLETED)
        if running in done:
            changed.cancel()
            return running.result()
        log.info("the namespaces matching the selector changed: restarting")
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


async def run(configuration: client.Configuration, selector: Selector, serve: Serve) -> int:
    """Watches the Namespaces ``selector`` matches and serves them with ``serve``."""
    connection = informer.Connection(configuration)
    membership = Membership()
    watch = informer.Informer(
        connection,
        informer.Kind("/api/v1", "namespaces", selector.query),
        membership.handle,
    )
    watching = asyncio.create_task(watch.run(), name="watch namespaces")
    try:
        return await follow(membership, watch.listed, serve)
    finally:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
        await connection.close()


def load_configuration(kubeconfig: str | None) -> client.Configuration:
    """The client settings of the Namespace watch (the runtime loads its own)."""
    return kube.load_configuration(kubeconfig, pool_size=1)
