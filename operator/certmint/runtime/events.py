"""The event sink the reconcilers share: Events and other fire-and-forget API calls."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from typing import Any

from certmint.core import status
from certmint.k8s import kube

# The reconcilers' logger: docs/observability.md shows its name, log pipelines filter on it.
log = logging.getLogger("certmint.controller")


class EventSink:
    """Posts Events in the background, so a reconciliation never waits for one."""

    def __init__(self, api: kube.Kube, clock: Callable[[], datetime]) -> None:
        self.api = api
        self.clock = clock
        self._background: set[asyncio.Task[None]] = set()

    def post(self, involved: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """Posts an Event; a failure to post is logged, not raised."""
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
