"""The informer against the real kube-apiserver: paging, watching, and a real 410 Gone."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import pytest
from kubernetes import client

from certmint.k8s import informer
from certmint.runtime import handlers
from tests.integration.support import certificate, custom

DEADLINE_S = 30.0


class Recorder:
    """The handler: every (type, name) in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def __call__(self, type_: str, obj: Mapping[str, Any]) -> None:
        self.events.append((type_, obj["metadata"]["name"]))

    def names(self, type_: str) -> set[str]:
        return {name for seen, name in self.events if seen == type_}


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + DEADLINE_S
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running(watcher: informer.Informer) -> AsyncIterator[None]:
    task = asyncio.create_task(watcher.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_lists_then_watches_and_relists_after_a_real_410_gone(
    kube: client.ApiClient, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("kept", "ghost"):
        certificate(kube, namespace, name)
    caplog.set_level(logging.INFO, logger="certmint.watch")
    recorder = Recorder()
    connection = informer.Connection(kube.configuration)
    watcher = informer.Informer(
        connection, handlers.CERTIFICATES, recorder, namespace=namespace, retry_base=0.1
    )
    try:
        async with running(watcher):
            await asyncio.wait_for(watcher.listed.wait(), DEADLINE_S)
            assert recorder.events == [("ADDED", "ghost"), ("ADDED", "kept")]
            certificate(kube, namespace, "new")
            await wait_until(lambda: "new" in recorder.names("ADDED"), "the watch to deliver")

        # While the informer is away, "ghost" goes; it comes back with a resourceVersion
        # the API server no longer serves (its watch cache starts long after 1).
        custom(kube).delete_namespaced_custom_object(
            "certmint.io", "v1alpha1", namespace, "certificates", "ghost"
        )
        recorder.events.clear()
        watcher.resource_version = "1"
        async with running(watcher):
            await wait_until(lambda: recorder.names("DELETED") == {"ghost"}, "the relist")
            assert recorder.names("ADDED") == {"kept", "new"}
            assert watcher.resource_version not in ("", "1")
        assert [
            record.getMessage() for record in caplog.records if record.name == "certmint.watch"
        ] == [f"{watcher.name}: resourceVersion expired, listing again"]
    finally:
        await connection.close()
