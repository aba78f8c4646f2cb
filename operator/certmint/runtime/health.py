"""Whether the watches have listed everything, and when each kind last delivered an event."""

from __future__ import annotations

import asyncio
import time


class WatchHealth:
    """When each watched kind last delivered an event, and whether all are listed.

    Every source of the store adds its ``listed`` gate with `track`; the store is synced
    once each has handed over its initial listing completely.
    """

    def __init__(self) -> None:
        self.last_event: dict[str, float] = {}
        self._gates: list[asyncio.Event] = []

    def track(self, listed: asyncio.Event) -> asyncio.Event:
        self._gates.append(listed)
        return listed

    @property
    def synced(self) -> bool:
        """Whether the initial listings of all watched kinds are in the store."""
        return all(gate.is_set() for gate in self._gates)

    async def wait_synced(self) -> None:
        for gate in self._gates:
            await gate.wait()

    def seen(self, resource: str) -> None:
        self.last_event[resource] = time.monotonic()
