"""The informers' handlers: what reaches the store and the work queue, and what does not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from kubernetes import client

from certmint import controller, handlers, informer, kube, secret_format, state
from tests.unit.test_informer import DEADLINE_S, wait_until

NAMESPACE = "shop"


@pytest.fixture
def ctl() -> controller.Controller:
    api = kube.Kube(client.ApiClient(client.Configuration()), threads=1)
    return controller.Controller(api, state.Store(), controller.Settings())


async def drain(queue: Any) -> list[Any]:
    """Every key queued for reconciliation, in order; the queue is left empty."""
    keys = []
    while len(queue):
        keys.append(await queue.get())
        queue.done(keys[-1])
    return keys


def certificate(name: str, version: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": NAMESPACE, "name": name, "uid": "u", "resourceVersion": version},
        "spec": {
            "secretName": f"{name}-tls",
            "issuerRef": {"name": "ca", "kind": "ClusterIssuer"},
            "dnsNames": ["web.shop.svc"],
            **spec,
        },
    }


def secret(name: str, version: str, owner: str | None) -> dict[str, Any]:
    labels = {secret_format.LABEL_CERTIFICATE_NAME: owner} if owner else {}
    return {
        "metadata": {
            "namespace": NAMESPACE,
            "name": name,
            "uid": "s",
            "resourceVersion": version,
            "labels": labels,
        },
        "data": {},
    }


async def test_a_certificate_is_stored_and_queued_and_its_own_echo_is_not(
    ctl: controller.Controller,
) -> None:
    handle = handlers.certificate_events(ctl, is_leader=lambda: False)
    handle("ADDED", certificate("web", "10"))
    assert ctl.store.certificates[(NAMESPACE, "web")].resource_version == "10"
    assert await drain(ctl.certificates) == [(NAMESPACE, "web")]

    # What the controller does after its status patch: the record carries the answer's version.
    ctl.store.certificates[(NAMESPACE, "web")].resource_version = "11"
    handle("MODIFIED", certificate("web", "11"))
    assert await drain(ctl.certificates) == []

    handle("MODIFIED", certificate("web", "12", dnsNames=["other.shop.svc"]))
    assert ctl.store.certificates[(NAMESPACE, "web")].spec.dns_names == ("other.shop.svc",)  # type: ignore[union-attr]
    assert await drain(ctl.certificates) == [(NAMESPACE, "web")]

    handle("DELETED", certificate("web", "12"))
    assert (NAMESPACE, "web") not in ctl.store.certificates
    assert list(ctl.store.certificates_of(("ClusterIssuer", "", "ca"))) == []


async def test_an_invalid_certificate_is_stored_with_its_error(ctl: controller.Controller) -> None:
    handle = handlers.certificate_events(ctl, is_leader=lambda: False)
    handle("ADDED", certificate("web", "1", secretName=""))
    record = ctl.store.certificates[(NAMESPACE, "web")]
    assert record.spec is None
    assert record.spec_error is not None
    assert await drain(ctl.certificates) == [(NAMESPACE, "web")]


async def test_a_secret_change_queues_its_certificate_and_an_echo_of_our_write_does_not(
    ctl: controller.Controller,
) -> None:
    handle = handlers.secret_events(ctl)
    handle("ADDED", secret("web-tls", "5", owner="web"))
    assert ctl.store.secrets[(NAMESPACE, "web-tls")].resource_version == "5"
    assert await drain(ctl.certificates) == [(NAMESPACE, "web")]

    handle("MODIFIED", secret("web-tls", "5", owner="web"))  # what we stored from our write
    assert await drain(ctl.certificates) == []

    handle("MODIFIED", secret("web-tls", "6", owner="web"))
    assert ctl.store.secrets[(NAMESPACE, "web-tls")].resource_version == "6"
    assert await drain(ctl.certificates) == [(NAMESPACE, "web")]

    handle("DELETED", {"metadata": {"namespace": NAMESPACE, "name": "web-tls"}})
    assert (NAMESPACE, "web-tls") not in ctl.store.secrets
    assert await drain(ctl.certificates) == [(NAMESPACE, "web")]


async def test_a_deleted_secret_never_stored_is_traced_to_its_certificate_by_label(
    ctl: controller.Controller,
) -> None:
    handle = handlers.secret_events(ctl)
    handle("DELETED", secret("api-tls", "9", owner="api"))
    assert await drain(ctl.certificates) == [(NAMESPACE, "api")]
    handle("DELETED", secret("unowned", "9", owner=None))
    assert await drain(ctl.certificates) == []


async def test_a_service_account_appearing_unblocks_the_certificates_waiting_for_it(
    ctl: controller.Controller,
) -> None:
    handle = handlers.service_account_events(ctl)
    ctl.store.waiting_for_account[(NAMESPACE, "api")] = {(NAMESPACE, "a"), (NAMESPACE, "b")}
    handle("ADDED", {"metadata": {"namespace": NAMESPACE, "name": "api"}})
    assert (NAMESPACE, "api") in ctl.store.service_accounts
    assert sorted(await drain(ctl.certificates)) == [(NAMESPACE, "a"), (NAMESPACE, "b")]
    handle("DELETED", {"metadata": {"namespace": NAMESPACE, "name": "api"}})
    assert (NAMESPACE, "api") not in ctl.store.service_accounts


async def test_the_store_is_synced_only_when_every_tracked_listing_is_in() -> None:
    health = handlers.WatchHealth()
    certificates, issuers = health.track(asyncio.Event()), health.track(asyncio.Event())
    waiting = asyncio.create_task(health.wait_synced())
    certificates.set()
    await asyncio.sleep(0)
    assert not health.synced
    assert not waiting.done()
    issuers.set()
    await asyncio.wait_for(waiting, DEADLINE_S)
    assert health.synced


@pytest.fixture
async def issuer_api() -> AsyncIterator[tuple[list[list[str]], client.Configuration]]:
    """Answers each Issuer LIST with the next names of its script (the last one repeats).

    ClusterIssuer LISTs consume the script too, and always find none.
    """
    script: list[list[str]] = []

    async def serve(request: web.Request) -> web.Response:
        plural = request.match_info["plural"]
        names = script[0] if len(script) == 1 else script.pop(0)
        items = [{"metadata": {"name": name}} for name in names if plural == "issuers"]
        return web.json_response({"metadata": {}, "items": items})

    app = web.Application()
    app.router.add_get("/apis/certmint.io/v1alpha1/{plural}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield script, client.Configuration(host=f"http://127.0.0.1:{runner.addresses[0][1]}")
    await runner.cleanup()


async def test_issuers_count_as_listed_once_a_probe_finds_none(
    issuer_api: tuple[list[list[str]], client.Configuration],
) -> None:
    script, configuration = issuer_api
    script.extend([["ca"], ["ca"], []])  # an Issuer that kopf never delivers goes away
    connection = informer.Connection(configuration)
    listed = asyncio.Event()
    await asyncio.wait_for(
        handlers.confirm_no_issuers(connection, listed, (), interval=0.01), DEADLINE_S
    )
    await connection.close()
    assert listed.is_set()
    assert script == [[]]


async def test_the_probe_stops_once_kopf_delivers_an_issuer(
    issuer_api: tuple[list[list[str]], client.Configuration],
) -> None:
    script, configuration = issuer_api
    script.extend([["ca"], ["ca"], ["ca"], ["ca"], ["ca"], ["ca"], ["ca"]])
    connection = informer.Connection(configuration)
    listed = asyncio.Event()
    probe = asyncio.create_task(handlers.confirm_no_issuers(connection, listed, (), interval=0.01))
    await wait_until(lambda: len(script) == 1)  # three rounds of probing found the Issuer
    assert not probe.done()  # an Issuer exists and kopf has not delivered it yet
    listed.set()  # what kopf's first issuer event does
    await asyncio.wait_for(probe, DEADLINE_S)
    await connection.close()
