"""Leader election on a coordination.k8s.io Lease: exactly one replica acts at a time.

The holder renews the Lease every ``renew_period``. A standby takes over when it has
seen the same Lease record, unrenewed, for ``lease_duration`` (measured on its own
clock, so clock skew between nodes does not matter). The leader stops starting work
once it has failed to renew for ``renew_deadline``, which is shorter than
``lease_duration``: the old leader has stopped before a new one may begin. Secret
writes are also conditional on resourceVersion, so a stale writer gets a 409 instead of
overwriting.

No failure ends the election: a request that fails or gets no answer (the API server
restarting, etcd stalled, a 429 or 5xx) is logged and tried again every ``retry_period``;
each attempt is cut off at the renew deadline, so a leader whose requests hang steps down
on time, stops acting (`wait_for_leadership` holds the workers) and keeps campaigning.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from certmint.k8s import kube

log = logging.getLogger("certmint.leader")


#: The Lease's name unless ``certmint run --lease-name`` says otherwise (one per shard).
DEFAULT_LEASE_NAME = "certmint-leader"


def _micro_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Acquires and renews one Lease; `is_leader` says whether this replica may act."""

    def __init__(
        self,
        api: kube.Kube,
        namespace: str,
        identity: str,
        *,
        name: str = DEFAULT_LEASE_NAME,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self._clock = clock
        self._last_renewal: float | None = None
        #: When an attempt last got an answer about the Lease (held by us or by another).
        self._last_contact: float | None = None
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self.leading = asyncio.Event()
        self.following = asyncio.Event()
        self.following.set()
        #: Set, then replaced, after every attempt: wakes those waiting for leadership.
        self._attempted = asyncio.Event()
        self.transitions = 0

    def is_leader(self) -> bool:
        if self._last_renewal is None:
            return False
        return self._clock() - self._last_renewal < self.renew_deadline

    def in_contact(self) -> bool:
        """Whether an attempt got an answer within the last ``lease_duration``.

        True for a healthy leader and for a healthy standby alike (readiness).
        """
        if self._last_contact is None:
            return False
        return self._clock() - self._last_contact < self.lease_duration

    async def wait_for_leadership(self) -> None:
        """Returns once this replica leads (at once when it does).

        It checks again after every attempt to renew: a renewal that comes late (the event
        loop or the API server busy past the renew deadline) but succeeds neither sets
        `leading` (still set) nor `following` (no step-down happened), and a waiter that
        waited on those would wait forever.
        """
        while not self.is_leader():
            await self._attempted.wait()

    def _attempt_timeout(self) -> float:
        """How long one attempt may take: a leader must know the outcome by its deadline."""
        if self._last_renewal is None:
            return self.renew_deadline
        left = self.renew_deadline - (self._clock() - self._last_renewal)
        return max(left, self.retry_period)

    def _lease_body(self, previous: dict[str, Any] | None) -> dict[str, Any]:
        now = _micro_time(datetime.now(UTC))
        spec = dict((previous or {}).get("spec") or {})
        if spec.get("holderIdentity") != self.identity:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (
                1 if previous else 0
            )
        spec |= {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.lease_duration),
            "renewTime": now,
        }
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if previous:
            metadata["resourceVersion"] = previous["metadata"]["resourceVersion"]
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": spec,
        }

    async def _try_acquire_or_renew(self) -> bool:
        lease = await self.api.get_lease(self.namespace, self.name)
        if lease is None:
            await self.api.create_lease(self.namespace, self._lease_body(None))
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        record = (holder, spec.get("renewTime"), spec.get("leaseTransitions"))
        if record != self._observed:
            self._observed, self._observed_at = record, self._clock()
        expired = self._clock() - self._observed_at >= float(
            spec.get("leaseDurationSeconds") or self.lease_duration
        )
        if holder and holder != self.identity and not expired:
            return False
        await self.api.replace_lease(self.namespace, self.name, self._lease_body(lease))
        return True

    async def run(self) -> None:
        """Campaigns and renews until cancelled; releases the Lease on the way out."""
        try:
            while True:
                self._record(await self._attempt())
                await asyncio.sleep(self.retry_period)
        finally:
            await self._release()

    async def _attempt(self) -> bool:
        """One try to acquire or renew; every failure is logged and counts as not renewed."""
        try:
            async with asyncio.timeout(self._attempt_timeout()):
                renewed = await self._try_acquire_or_renew()
        except kube.NotFoundError:
            log.warning(
                "leader election: namespace %s does not exist; create it "
                "(kubectl apply -f deploy/namespace.yaml) or set CERTMINT_NAMESPACE",
                self.namespace,
            )
            return False
        except kube.KubeError as err:
            log.warning("leader election: %s", err)
            return False
        except TimeoutError:
            log.warning("leader election: no answer within %.1f s", self._attempt_timeout())
            return False
        self._last_contact = self._clock()
        return renewed

    def _record(self, renewed: bool) -> None:
        """Takes up the leadership on a renewal; steps down once the renew deadline passed."""
        self._attempted.set()
        self._attempted = asyncio.Event()
        if renewed:
            self._last_renewal = self._clock()
            if not self.leading.is_set():
                self.transitions += 1
                log.info("became the leader (%s)", self.identity)
                self.leading.set()
                self.following.clear()
        elif self.leading.is_set() and not self.is_leader():
            log.warning("lost the leadership (%s); standing by", self.identity)
            self.leading.clear()
            self.following.set()

    async def _release(self) -> None:
        """Hands the Lease back on the way out, giving up after ``retry_period`` seconds."""
        if not self.is_leader():
            return
        self._last_renewal = None
        self.leading.clear()
        self.following.set()
        try:
            async with asyncio.timeout(max(self.retry_period, 1.0)):
                lease = await self.api.get_lease(self.namespace, self.name)
                if lease and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                    body = self._lease_body(lease)
                    body["spec"]["holderIdentity"] = None
                    body["spec"]["leaseDurationSeconds"] = 1
                    await self.api.replace_lease(self.namespace, self.name, body)
        except (kube.KubeError, TimeoutError, asyncio.CancelledError):
            log.info("could not release the Lease; the standby takes over when it expires")
