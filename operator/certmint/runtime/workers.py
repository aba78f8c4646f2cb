"""The worker pools: take a key from a queue, wait for leadership, reconcile, retry on failure."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from certmint.k8s import kube
from certmint.runtime import scheduler

log = logging.getLogger("certmint.controller")  # the reconcilers share it: see events.py


@dataclasses.dataclass(frozen=True)
class Pool:
    """``size`` workers reconciling the keys of ``queue``."""

    queue: scheduler.WorkQueue[Any]
    reconcile: Callable[[Any], Awaitable[None]]
    size: int


def after_failure(
    queue: scheduler.WorkQueue[Any],
    key: Any,
    err: Exception,
    *,
    now: datetime,
    retry_cap: timedelta,
) -> None:
    """Schedules a key again after a failure that escaped its reconciliation.

    An API failure is retried after a per-key backoff (`WorkQueue.failure_delay`): a
    transient one (no answer, 429, 5xx: `kube.is_transient`) within at most 30 s; any
    other (a 403 while a restarted API server's authorizer warms up, say) within at most
    ``retry_cap``. A warning is logged for the first failure of a run, the rest at debug
    level. Anything else is a bug: logged with its traceback, retried after ``retry_cap``.
    """
    if not isinstance(err, kube.KubeError):
        log.error("reconciling %s failed unexpectedly", key, exc_info=err)
        queue.schedule(key, now + retry_cap, limited=False)
        return
    first = not queue.failures(key)
    cap = None if kube.is_transient(err) else retry_cap.total_seconds()
    delay = queue.failure_delay(key, cap=cap)
    log.log(
        logging.WARNING if first else logging.DEBUG,
        "reconciling %s: %s; retrying in %.1fs", key, err, delay,
    )  # fmt: skip
    queue.schedule(key, now + timedelta(seconds=delay), limited=False)


async def run(
    pools: Sequence[Pool],
    wait_for_leadership: Callable[[], Awaitable[None]],
    *,
    clock: Callable[[], datetime],
    retry_cap: timedelta,
) -> None:
    """Runs each queue's timer and each pool's workers until cancelled; only the leader acts.

    A worker takes a key, then waits until this replica leads (a standby holds its
    keys); an unexpected error costs that key one retry after ``retry_cap``.
    """

    async def work(pool: Pool) -> None:
        queue = pool.queue
        while True:
            key = await queue.get()
            try:
                await wait_for_leadership()
                queue.started(key)
                await pool.reconcile(key)
                queue.succeeded(key)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                after_failure(queue, key, err, now=clock(), retry_cap=retry_cap)
            finally:
                queue.done(key)

    async with asyncio.TaskGroup() as group:
        for pool in pools:
            group.create_task(pool.queue.run_timer())
            for _ in range(pool.size):
                group.create_task(work(pool))
