"""Waiting for a condition: poll it until it holds, fail on a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class DeadlineExceededError(AssertionError):
    """A condition did not hold in time.

    An AssertionError, so that a test reports it as a failed expectation, not as an error.
    """


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float = 60.0,
    what: str = "condition",
    every: float = 0.1,
) -> T:
    """Polls ``probe`` until it returns something truthy, and returns that.

    Args:
        probe: Called every ``every`` seconds; an exception it raises ends the wait.
        timeout: Seconds before giving up.
        what: What is awaited, for the message.
        every: Seconds between two calls.

    Raises:
        DeadlineExceededError: ``probe`` returned nothing truthy within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)  # the polling interval of a condition with a deadline
    message = f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})"
    raise DeadlineExceededError(message)
