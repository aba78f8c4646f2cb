"""A fix for kopf's start-up with many objects: wake the waiters only when it matters.

While kopf pre-populates the indexes at start-up, every object of the initial listings
adds a toggle to one shared ``ToggleSet`` and drops it once indexed, and every object's
worker then waits on that set until all toggles are gone. kopf (1.45) wakes *every*
waiter on *every* add and drop, so M listed objects cost about M² wake-ups: 12 extra CPU
seconds for 2,000 objects, and by extrapolation some 20 minutes for 20,000 (see
docs/performance.md).

Waiters on a ``ToggleSet`` only ever wait for the set's overall state (on or off), and
adding or dropping a toggle changes nothing else they could observe; so notifying only
when that state changes wakes the same waiters for the same reasons, once.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("certmint.kopf")


def install() -> bool:
    """Replaces ``ToggleSet``'s add and drop with versions that notify on a change only.

    Returns:
        False (and changes nothing) when kopf's internals are not the expected ones.
    """
    try:
        from kopf._cogs.aiokits import aiotoggles  # noqa: PLC0415 -- a private module
    except ImportError:
        return False
    toggle_set: Any = aiotoggles.ToggleSet
    expected = ("_condition", "_toggles", "is_on", "make_toggle", "drop_toggle", "drop_toggles")
    probe = toggle_set(all)
    if not all(hasattr(probe, name) for name in expected):
        log.warning("kopf's ToggleSet changed; start-up may be slow with many objects")
        return False

    async def make_toggle(self: Any, state: bool = False, *, name: str | None = None) -> Any:
        toggle = aiotoggles.Toggle(state, name=name, condition=self._condition)
        async with self._condition:
            before = self.is_on()
            self._toggles.add(toggle)
            if self.is_on() != before:
                self._condition.notify_all()
        return toggle

    async def drop_toggles(self: Any, toggles: Any) -> None:
        async with self._condition:
            before = self.is_on()
            self._toggles.difference_update(toggles)
            if self.is_on() != before:
                self._condition.notify_all()

    async def drop_toggle(self: Any, toggle: Any) -> None:
        await drop_toggles(self, (toggle,))

    toggle_set.make_toggle = make_toggle
    toggle_set.drop_toggle = drop_toggle
    toggle_set.drop_toggles = drop_toggles
    return True
