"""The event sink the reconcilers share: Events and other fire-and-forget API calls.

Normal Events (``Issued``, ``Renewed``, ``CAReady``, ...) spend a token bucket
(``--event-qps``, ``--event-burst``): a steady fleet gets one for every issuance, while a
storm (100,000 Certificates applied at once, a CA rotation's wave) posts the burst and then
at most ``qps`` per second, and counts the rest in ``certmint_events_dropped_total``.
Warning Events are never dropped. Status conditions and metrics are complete either way;
an Event is a note for people, and every one of them is a write to the API server and etcd
(docs/observability.md, "Logs and Events").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from typing import Any

from certmint.core import status
from certmint.k8s import kube
from certmint.runtime import metrics, scheduler

# The reconcilers' logger: docs/observability.md shows its name, log pipelines filter on it.
log = logging.getLogger("certmint.controller")


class EventSink:
    """Posts Events in the background, so a reconciliation never waits for one.

    ``normal_budget`` is the bucket Normal Events spend; None posts them all.
    """

    def __init__(
        self,
        api: kube.Kube,
        clock: Callable[[], datetime],
        normal_budget: scheduler.TokenBucket | None = None,
    ) -> None:
        self.api = api
        self.clock = clock
        self._normal_budget = normal_budget
        self._background: set[asyncio.Task[None]] = set()

    def post(self, involved: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """Posts an Event; a failure to post is logged, not raised."""
        if type_ == "Normal" and self._normal_budget and not self._normal_budget.take():
            metrics.EVENTS_DROPPED.labels(reason=reason).inc()
            return
        self.in_background(
            self.api.post_event(involved, type_, reason, message, status.timestamp(self.clock())),
            f"posting the {reason} Event",
        )

    def in_background(self, work: Coroutine[Any, Any, Any], what: str) -> None:
        """Runs ``work`` as a task of its own; an API failure is logged as ``what`` failing."""

        async def run() -> None:
            try:
                await work
            except kube.KubeError as err:
                log.warning("%s failed: %s", what, err)

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def settled(self) -> None:
        """Returns once the posts and calls in flight have ended."""
        while self._background:
            await asyncio.gather(*self._background)
