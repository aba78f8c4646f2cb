"""kopf's issuer supervisor: the start gate, the listing, the watcher check, kopf's settings.

The real kopf against the real API server, through outages, is `tests/faults/`; here the
connection is a script, to reach each branch.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, cast

import pytest
from kubernetes import client

from certmint.api import resources
from certmint.core import state
from certmint.k8s import informer
from certmint.runtime import kopf_issuers

DEADLINE_S = 10.0


class Body:
    """A response body as `informer.Connection.get` returns it."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._data = json.dumps(document).encode()

    async def __aenter__(self) -> Body:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    async def read(self) -> bytes:
        return self._data


class ScriptedConnection:
    """Answers discovery from ``answers`` (an exception or the served plurals), in turn."""

    def __init__(self, answers: list[BaseException | list[str]]) -> None:
        self.answers = answers
        self.requests = 0
        self.existing: set[str] = set()

    async def get(self, path: str, params: Mapping[str, str]) -> Body:
        assert path == resources.API_PREFIX
        self.requests += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return Body({"resources": [{"name": name} for name in answer]})

    async def exists_any(self, path: str) -> bool:
        return path in self.existing


def supervisor(
    connection: ScriptedConnection,
    store: state.Store,
    delivered: list[tuple[str, str, str]],
) -> kopf_issuers.KopfIssuers:
    def handler(kind: str) -> informer.EventHandler:
        def handle(type_: str, body: Mapping[str, Any]) -> None:
            delivered.append((type_, kind, str(body["metadata"]["name"])))

        return handle

    return kopf_issuers.KopfIssuers(
        cast(informer.Connection, connection),
        client.Configuration(),
        store,
        {"issuers": handler("Issuer"), "clusterissuers": handler("ClusterIssuer")},
        retry_base=0.001,
        retry_cap=0.002,
    )


def test_kopf_settings_scan_nothing_post_nothing_and_never_kill_the_process() -> None:
    settings = kopf_issuers.kopf_settings()
    assert settings.scanning.disabled
    assert not settings.posting.enabled
    assert settings.process.ultimate_exiting_timeout is None
    assert settings.watching.server_timeout == informer.WATCH_TIMEOUT_S


async def test_the_gate_retries_every_failure_until_both_kinds_are_served() -> None:
    connection = ScriptedConnection(
        [
            informer.ApiError(0, "connection refused"),
            ConnectionRefusedError(),
            informer.ApiError(404, "the group is not served yet"),
            informer.ApiError(429, "too many requests"),
            informer.ApiError(503, "unavailable"),
            informer.ApiError(403, "the authorizer warms up"),
            ["issuers"],  # one CRD established, the other not yet
            ["issuers", "issuers/status", "clusterissuers"],
        ]
    )
    gate = supervisor(connection, state.Store(), [])
    await asyncio.wait_for(gate.wait_served(), DEADLINE_S)
    assert connection.requests == 8
    assert gate.stalled_for() < DEADLINE_S


async def test_the_first_listing_prunes_what_kopf_no_longer_lists() -> None:
    store = state.Store()
    for key in (("Issuer", "ns", "kept"), ("Issuer", "ns", "gone"), ("ClusterIssuer", "", "x")):
        store.issuers[key] = cast(state.IssuerRecord, object())
    delivered: list[tuple[str, str, str]] = []
    issuers = supervisor(ScriptedConnection([[]]), store, delivered)
    listing = kopf_issuers.Listing()
    listing.keys.add(("Issuer", "ns", "kept"))
    issuers.listing_complete(listing)
    issuers.listing_complete(listing)  # only the first completion prunes
    assert sorted(delivered) == [("DELETED", "ClusterIssuer", "x"), ("DELETED", "Issuer", "gone")]
    assert issuers.listed.is_set()


async def test_no_issuer_at_all_completes_the_listing() -> None:
    connection = ScriptedConnection([[]])
    connection.existing = {"/apis/certmint.io/v1alpha1/issuers"}
    issuers = supervisor(connection, state.Store(), [])
    listing = kopf_issuers.Listing()
    empty = asyncio.create_task(issuers._confirm_empty(listing, interval=0.01))
    with pytest.raises(TimeoutError):  # an issuer exists: kopf must deliver it first
        await asyncio.wait_for(asyncio.shield(listing.complete.wait()), 0.1)
    connection.existing.clear()
    await asyncio.wait_for(empty, DEADLINE_S)
    assert listing.complete.is_set()
    assert issuers.listed.is_set()


@contextlib.asynccontextmanager
async def fake_watcher(plural: str) -> AsyncIterator[asyncio.Task[None]]:
    name = f"watcher for {plural}.{resources.VERSION}.{resources.GROUP}@None"
    task = asyncio.create_task(asyncio.Event().wait(), name=name)  # type: ignore[arg-type]
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_failed_watcher_ends_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kopf_issuers, "CHECK_INTERVAL_S", 0.01)
    issuers = supervisor(ScriptedConnection([[]]), state.Store(), [])
    kopf_task = asyncio.create_task(asyncio.Event().wait(), name="kopf root")
    async with fake_watcher("issuers"), fake_watcher("clusterissuers") as cluster:
        watch = asyncio.create_task(issuers._watch_over([kopf_task]))
        with pytest.raises(TimeoutError):  # every watcher runs: the run goes on
            await asyncio.wait_for(asyncio.shield(watch), 0.2)
        assert issuers.stalled_for() < 0.2  # and that is watch progress
        cluster.cancel()  # kopf's guard logs a failed watcher; nothing restarts it
        assert await asyncio.wait_for(watch, DEADLINE_S) is True
    kopf_task.cancel()


async def test_kopf_ending_ends_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kopf_issuers, "START_GRACE_S", 3600.0)
    issuers = supervisor(ScriptedConnection([[]]), state.Store(), [])
    ended = asyncio.create_task(asyncio.sleep(0), name="kopf root")
    assert await asyncio.wait_for(issuers._watch_over([ended]), DEADLINE_S) is False


async def test_watchers_that_never_start_end_the_run_after_the_grace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kopf_issuers, "CHECK_INTERVAL_S", 0.01)
    monkeypatch.setattr(kopf_issuers, "START_GRACE_S", 0.05)
    issuers = supervisor(ScriptedConnection([[]]), state.Store(), [])
    kopf_task = asyncio.create_task(asyncio.Event().wait(), name="kopf root")
    assert await asyncio.wait_for(issuers._watch_over([kopf_task]), DEADLINE_S) is False
    kopf_task.cancel()


def test_the_registry_has_an_index_and_an_event_handler_per_kind() -> None:
    issuers = supervisor(ScriptedConnection([[]]), state.Store(), [])
    registry = issuers.registry(kopf_issuers.Listing())
    ids = {handler.id for handler in registry._indexing.get_all_handlers()}
    ids |= {handler.id for handler in registry._watching.get_all_handlers()}
    assert ids == {"index_issuers", "on_issuers", "index_clusterissuers", "on_clusterissuers"}


def test_kopf_still_names_its_watcher_tasks_as_the_supervisor_expects() -> None:
    """`running_watchers` reads kopf's task names: an upgrade that renames them fails here."""
    # kopf internals, pinned on purpose
    from kopf._cogs.structs import references
    from kopf._core.reactor import orchestration

    source = inspect.getsource(orchestration.spawn_missing_watchers)
    assert 'what = f"{resource}@{namespace}"' in source
    assert 'name=f"watcher for {what}"' in source
    resource = references.Resource(resources.GROUP, resources.VERSION, "issuers")
    assert f"watcher for {resource}@None".startswith(
        f"watcher for issuers.{resources.VERSION}.{resources.GROUP}@"
    )
