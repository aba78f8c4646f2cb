"""The informer against a scripted API server on loopback: paging, watch, relist, retries.

The integration tests run it against the real kube-apiserver; here the server is a
script, to reach what a real one does rarely (410 Gone, failures, a continue token).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import pytest
from aiohttp import web
from kubernetes import client

from certmint.k8s import informer

SECRETS = informer.Kind("/api/v1", "secrets", "certmint.io/certificate-name")
DEADLINE_S = 10.0


def secret(name: str, version: int, namespace: str = "ns") -> dict[str, Any]:
    return {"metadata": {"namespace": namespace, "name": name, "resourceVersion": str(version)}}


class ScriptedApi:
    """Lists ``objects`` in pages; each watch request plays the next script, then ends.

    Once the scripts run out a watch stays open, sending nothing, until the test ends.
    """

    def __init__(self) -> None:
        self.objects: list[dict[str, Any]] = []
        self.list_version = 100
        self.watch_scripts: list[list[dict[str, Any]]] = []
        self.failures: list[int] = []  # statuses to answer the next requests with
        self.requests: list[dict[str, str]] = []
        self.authorizations: list[str] = []
        self.paths: set[str] = set()
        self.closing = asyncio.Event()

    async def serve(self, request: web.Request) -> web.StreamResponse:
        params = dict(request.query)
        self.requests.append(params)
        self.paths.add(request.path)
        self.authorizations.append(request.headers.get("Authorization", ""))
        if self.failures:
            status = self.failures.pop(0)
            return web.json_response({"kind": "Status", "message": "scripted"}, status=status)
        if params.get("watch") == "true":
            return await self._watch(request)
        start = int(params.get("continue") or 0)
        limit = int(params["limit"])
        page = self.objects[start : start + limit]
        more = start + limit < len(self.objects)
        metadata = {"resourceVersion": str(self.list_version)}
        if more:
            metadata["continue"] = str(start + limit)
        return web.json_response({"metadata": metadata, "items": page})

    async def _watch(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        if not self.watch_scripts:
            await self.closing.wait()
        for event in self.watch_scripts.pop(0):
            await response.write(json.dumps(event).encode() + b"\n")
        await response.write_eof()
        return response

    def watches(self) -> list[dict[str, str]]:
        return [params for params in self.requests if params.get("watch") == "true"]


@pytest.fixture
async def api() -> AsyncIterator[tuple[ScriptedApi, client.Configuration]]:
    scripted = ScriptedApi()
    app = web.Application()
    app.router.add_get("/api/v1/secrets", scripted.serve)
    app.router.add_get("/api/v1/namespaces/{namespace}/secrets", scripted.serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    configuration = client.Configuration(host=f"http://127.0.0.1:{port}")
    configuration.api_key = {"BearerToken": "token-1"}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    yield scripted, configuration
    scripted.closing.set()
    await runner.cleanup()


class Recorder:
    """The handler: every (type, namespace/name, resourceVersion) in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def __call__(self, type_: str, obj: Mapping[str, Any]) -> None:
        metadata = obj.get("metadata") or {}
        self.events.append(
            (
                type_,
                f"{metadata['namespace']}/{metadata['name']}",
                metadata.get("resourceVersion", ""),
            )
        )


async def wait_until(condition: Callable[[], bool]) -> None:
    deadline = asyncio.get_running_loop().time() + DEADLINE_S
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def running(
    configuration: client.Configuration, handle: informer.EventHandler, **kwargs: Any
) -> AsyncIterator[informer.Informer]:
    connection = informer.Connection(configuration)
    watcher = informer.Informer(connection, SECRETS, handle, retry_base=0.01, **kwargs)
    task = asyncio.create_task(watcher.run())
    try:
        yield watcher
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await connection.close()


async def test_a_listing_of_many_pages_is_handed_over_whole_before_listed(
    api: tuple[ScriptedApi, client.Configuration],
) -> None:
    scripted, configuration = api
    scripted.objects = [secret(f"s{i}", i) for i in range(2 * informer.PAGE_SIZE + 3)]
    recorder = Recorder()
    async with running(configuration, recorder) as watcher:
        await asyncio.wait_for(watcher.listed.wait(), DEADLINE_S)
        assert [name for _, name, _ in recorder.events] == [
            f"ns/s{i}" for i in range(2 * informer.PAGE_SIZE + 3)
        ]
        assert {type_ for type_, _, _ in recorder.events} == {"ADDED"}
        await wait_until(lambda: len(scripted.watches()) == 1)
    pages = [params for params in scripted.requests if "watch" not in params]
    assert [params.get("continue") for params in pages] == [None, "500", "1000"]
    assert all(params["labelSelector"] == SECRETS.label_selector for params in scripted.requests)
    assert scripted.watches()[0]["resourceVersion"] == "100"
    assert scripted.watches()[0]["allowWatchBookmarks"] == "true"
    assert set(scripted.authorizations) == {"Bearer token-1"}


async def test_watch_events_arrive_in_order_and_bookmarks_only_move_the_version(
    api: tuple[ScriptedApi, client.Configuration],
) -> None:
    scripted, configuration = api
    scripted.watch_scripts = [
        [
            {"type": "ADDED", "object": secret("a", 101)},
            {"type": "MODIFIED", "object": secret("a", 102)},
            {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "150"}}},
            {"type": "DELETED", "object": secret("a", 151)},
        ],
        [{"type": "ADDED", "object": secret("b", 160)}],
    ]
    recorder = Recorder()
    seen: list[str] = []
    async with running(configuration, recorder, seen=lambda: seen.append("x")):
        await wait_until(lambda: len(recorder.events) == 4)
        await wait_until(lambda: len(scripted.watches()) == 3)
    assert recorder.events == [
        ("ADDED", "ns/a", "101"),
        ("MODIFIED", "ns/a", "102"),
        ("DELETED", "ns/a", "151"),
        ("ADDED", "ns/b", "160"),
    ]
    # A watch the server ended resumes where it stopped, without a new listing.
    assert [params["resourceVersion"] for params in scripted.watches()] == ["100", "151", "160"]
    assert len([params for params in scripted.requests if "watch" not in params]) == 1
    assert len(seen) >= 1 + 3 + 5  # the listing, each watch start, each event and bookmark


async def test_410_gone_lists_again_and_reports_what_vanished_meanwhile_as_deleted(
    api: tuple[ScriptedApi, client.Configuration],
) -> None:
    scripted, configuration = api
    scripted.objects = [secret("kept", 1), secret("vanishes", 2)]
    scripted.watch_scripts = [
        [{"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}}]
    ]
    recorder = Recorder()
    async with running(configuration, recorder) as watcher:
        await asyncio.wait_for(watcher.listed.wait(), DEADLINE_S)
        scripted.objects = [secret("kept", 300), secret("new", 301)]
        scripted.list_version = 302
        await wait_until(lambda: len(scripted.watches()) == 2)
    assert recorder.events == [
        ("ADDED", "ns/kept", "1"),
        ("ADDED", "ns/vanishes", "2"),
        ("ADDED", "ns/kept", "300"),
        ("ADDED", "ns/new", "301"),
        ("DELETED", "ns/vanishes", ""),
    ]
    assert scripted.watches()[1]["resourceVersion"] == "302"


async def test_an_object_deleted_by_a_watch_event_is_not_reported_again_at_a_relist(
    api: tuple[ScriptedApi, client.Configuration],
) -> None:
    scripted, configuration = api
    scripted.objects = [secret("a", 1)]
    scripted.watch_scripts = [
        [
            {"type": "DELETED", "object": secret("a", 5)},
            {"type": "ERROR", "object": {"code": 410, "message": "too old"}},
        ]
    ]
    recorder = Recorder()
    async with running(configuration, recorder) as watcher:
        await asyncio.wait_for(watcher.listed.wait(), DEADLINE_S)
        scripted.objects = []
        await wait_until(lambda: len(scripted.watches()) == 2)
    assert recorder.events == [("ADDED", "ns/a", "1"), ("DELETED", "ns/a", "5")]


async def test_failures_are_retried_and_listed_waits_for_a_complete_listing(
    api: tuple[ScriptedApi, client.Configuration],
) -> None:
    scripted, configuration = api
    scripted.objects = [secret("a", 1)]
    scripted.failures = [500, 403]
    recorder = Recorder()
    async with running(configuration, recorder) as watcher:
        await asyncio.wait_for(watcher.listed.wait(), DEADLINE_S)
        assert recorder.events == [("ADDED", "ns/a", "1")]
    assert len(scripted.requests) >= 3


async def test_a_failing_handler_costs_its_object_and_not_the_watch(
    api: tuple[ScriptedApi, client.Configuration],
) -> None:
    scripted, configuration = api
    scripted.objects = [secret("a", 1), secret("poison", 2), secret("b", 3)]
    recorder = Recorder()

    def handle(type_: str, obj: Mapping[str, Any]) -> None:
        if obj["metadata"]["name"] == "poison":
            raise ValueError("cannot parse")
        recorder(type_, obj)

    async with running(configuration, handle) as watcher:
        await asyncio.wait_for(watcher.listed.wait(), DEADLINE_S)
    assert recorder.events == [("ADDED", "ns/a", "1"), ("ADDED", "ns/b", "3")]


async def test_a_namespaced_informer_reads_only_its_namespace(
    api: tuple[ScriptedApi, client.Configuration],
) -> None:
    scripted, configuration = api
    assert SECRETS.path("team-a") == "/api/v1/namespaces/team-a/secrets"
    assert SECRETS.path("") == "/api/v1/secrets"
    async with running(configuration, Recorder(), namespace="team-a") as watcher:
        await asyncio.wait_for(watcher.listed.wait(), DEADLINE_S)
    assert scripted.paths == {"/api/v1/namespaces/team-a/secrets"}


async def test_a_kind_not_served_yet_is_listed_once_its_crd_appears(
    api: tuple[ScriptedApi, client.Configuration],
) -> None:
    scripted, configuration = api
    scripted.objects = [secret("a", 1)]
    scripted.failures = [404, 404, 503, 429, 404]  # no CRD yet, the API server starting, APF
    recorder = Recorder()
    async with running(configuration, recorder) as watcher:
        await asyncio.wait_for(watcher.listed.wait(), DEADLINE_S)
        assert (recorder.events, scripted.failures, watcher.stalled_for() < DEADLINE_S) == (
            [("ADDED", "ns/a", "1")],
            [],
            True,
        )
