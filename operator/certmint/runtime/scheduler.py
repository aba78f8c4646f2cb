"""One work queue and one timer for every object, instead of a task per object.

Keys are reconciled by a fixed pool of workers. A key is never processed by two
workers at once; a key re-added while it is being processed runs once more afterwards.
Future work (renewals, retries) sits in one heap. Scheduled work is released through a
token bucket, so 10,000 certificates that fall due together are re-issued at the
configured rate instead of in one burst; work caused by a change (a new or edited
Certificate) skips the bucket.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import random
import time
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

#: Retry delays of a key whose reconciliation failed transiently: from this, doubling ...
FAILURE_DELAY_BASE_S = 0.5
#: ... up to this; each delay is jittered down by up to half, so keys that failed together
#: (an API outage) come back spread out.
FAILURE_DELAY_CAP_S = 30.0


class TokenBucket:
    """A classic token bucket; ``rate`` tokens per second, at most ``burst`` saved."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def delay_for_one(self) -> float:
        """Takes one token; returns how long to wait before using it (0 when available)."""
        self._refill()
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def take(self) -> bool:
        """Takes one token if one is saved now; False, taking nothing, when none is."""
        self._refill()
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class WorkQueue(Generic[K]):
    """Deduplicating queue of keys plus a heap of keys due later."""

    def __init__(self, rate: float, burst: int) -> None:
        self._ready: asyncio.Queue[K] = asyncio.Queue()
        self._queued: set[K] = set()
        self._processing: set[K] = set()
        #: When each key's reconciliation began (`started`), to spot a stuck worker.
        self._started: dict[K, float] = {}
        #: Consecutive failures per key (`failure_delay`).
        self._failures: dict[K, int] = {}
        self._dirty: set[K] = set()
        self._heap: list[tuple[float, int, K, bool]] = []
        self._due: dict[K, float] = {}
        self._sequence = 0
        self._wakeup = asyncio.Event()
        self.bucket = TokenBucket(rate, burst)
        #: Keys that passed the token bucket and have not been reconciled since.
        self._admitted: set[K] = set()

    def __len__(self) -> int:
        return self._ready.qsize()

    @property
    def scheduled(self) -> int:
        return len(self._due)

    def add(self, key: K) -> None:
        """Queues a key now (a change happened); clears any scheduled time for it."""
        self._due.pop(key, None)
        if key in self._processing:
            self._dirty.add(key)
            return
        if key in self._queued:
            return
        self._queued.add(key)
        self._ready.put_nowait(key)

    def schedule(self, key: K, when: datetime, *, limited: bool = True) -> None:
        """Queues a key at ``when``; an earlier or later schedule for it is replaced."""
        at = when.timestamp()
        if self._due.get(key) == at:
            return
        self._due[key] = at
        self._sequence += 1
        heapq.heappush(self._heap, (at, self._sequence, key, limited))
        self._wakeup.set()

    def take_admission(self, key: K) -> bool:
        """Whether the key's current run passed the token bucket (consumes the admission)."""
        if key in self._admitted:
            self._admitted.discard(key)
            return True
        return False

    def due_at(self, key: K) -> datetime | None:
        at = self._due.get(key)
        return None if at is None else datetime.fromtimestamp(at, UTC)

    def forget(self, key: K) -> None:
        self._due.pop(key, None)
        self._admitted.discard(key)
        self._failures.pop(key, None)

    def failure_delay(self, key: K, cap: float | None = None) -> float:
        """Counts one more failure of ``key``; returns the seconds to wait before a retry.

        Exponential per key (`FAILURE_DELAY_BASE_S` doubling to ``cap``, by default
        `FAILURE_DELAY_CAP_S`), jittered, like client-go's per-item rate limiter.
        """
        count = self._failures.get(key, 0) + 1
        self._failures[key] = count
        ceiling = FAILURE_DELAY_CAP_S if cap is None else cap
        delay = min(FAILURE_DELAY_BASE_S * 2.0 ** min(count - 1, 20), ceiling)
        return delay * (0.5 + random.random() / 2)  # noqa: S311 -- jitter, not a secret

    def failures(self, key: K) -> int:
        """Consecutive failures of ``key`` so far."""
        return self._failures.get(key, 0)

    def succeeded(self, key: K) -> None:
        """Forgets the key's failures: the next one starts from the base delay."""
        self._failures.pop(key, None)

    async def get(self) -> K:
        """Waits for the next key and marks it as being processed."""
        key = await self._ready.get()
        self._queued.discard(key)
        self._processing.add(key)
        return key

    def started(self, key: K) -> None:
        """Notes that a worker began reconciling ``key`` (after any wait for leadership)."""
        self._started[key] = time.monotonic()

    def longest_running(self) -> float:
        """Seconds the oldest reconciliation in progress has run (0 when none runs)."""
        if not self._started:
            return 0.0
        return time.monotonic() - min(self._started.values())

    def done(self, key: K) -> None:
        """Marks a key as processed; requeues it when it was re-added meanwhile."""
        self._processing.discard(key)
        self._started.pop(key, None)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    async def run_timer(self) -> None:
        """Moves due keys from the heap to the queue, rate-limiting scheduled work."""
        while True:
            self._wakeup.clear()
            now = time.time()
            while self._heap and self._heap[0][0] <= now:
                at, _, key, limited = heapq.heappop(self._heap)
                if self._due.get(key) != at:
                    continue  # superseded by a later schedule() or add()
                if limited:
                    delay = self.bucket.delay_for_one()
                    if delay > 0:
                        await asyncio.sleep(delay)  # the rate bound itself
                if self._due.get(key) == at:
                    del self._due[key]
                    if limited:
                        self._admitted.add(key)
                    self.add(key)
                now = time.time()
            timeout = self._heap[0][0] - now if self._heap else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)
