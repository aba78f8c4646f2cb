"""The informers' handlers: what reaches the store and the work queue, and what does not."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes import client

from certmint.api import resources
from certmint.core import state
from certmint.k8s import informer, kube
from certmint.runtime import handlers, health, runner, settings
from tests.unit.test_informer import DEADLINE_S

NAMESPACE = "shop"


@pytest.fixture
def rec() -> runner.Reconcilers:
    api = kube.Kube(informer.Connection(client.Configuration()), concurrency=1)
    return runner.Reconcilers.compose(api, state.Store(), settings.Settings())


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
    labels = {resources.LABEL_CERTIFICATE_NAME: owner} if owner else {}
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
    rec: runner.Reconcilers,
) -> None:
    handle = handlers.certificate_events(rec.certificates, is_leader=lambda: False)
    handle("ADDED", certificate("web", "10"))
    assert rec.store.certificates[(NAMESPACE, "web")].resource_version == "10"
    assert await drain(rec.certificates.queue) == [(NAMESPACE, "web")]

    # What the controller does after its status patch: the record carries the answer's version.
    rec.store.certificates[(NAMESPACE, "web")].resource_version = "11"
    handle("MODIFIED", certificate("web", "11"))
    assert await drain(rec.certificates.queue) == []

    handle("MODIFIED", certificate("web", "12", dnsNames=["other.shop.svc"]))
    assert rec.store.certificates[(NAMESPACE, "web")].spec.dns_names == ("other.shop.svc",)  # type: ignore[union-attr]
    assert await drain(rec.certificates.queue) == [(NAMESPACE, "web")]

    handle("DELETED", certificate("web", "12"))
    assert (NAMESPACE, "web") not in rec.store.certificates
    assert list(rec.store.certificates_of(("ClusterIssuer", "", "ca"))) == []


async def test_an_invalid_certificate_is_stored_with_its_error(rec: runner.Reconcilers) -> None:
    handle = handlers.certificate_events(rec.certificates, is_leader=lambda: False)
    handle("ADDED", certificate("web", "1", secretName=""))
    record = rec.store.certificates[(NAMESPACE, "web")]
    assert record.spec is None
    assert record.spec_error is not None
    assert await drain(rec.certificates.queue) == [(NAMESPACE, "web")]


async def test_a_secret_change_queues_its_certificate_and_an_echo_of_our_write_does_not(
    rec: runner.Reconcilers,
) -> None:
    handle = handlers.secret_events(rec.store, rec.certificates.queue)
    handle("ADDED", secret("web-tls", "5", owner="web"))
    assert rec.store.secrets[(NAMESPACE, "web-tls")].resource_version == "5"
    assert await drain(rec.certificates.queue) == [(NAMESPACE, "web")]

    handle("MODIFIED", secret("web-tls", "5", owner="web"))  # what we stored from our write
    assert await drain(rec.certificates.queue) == []

    handle("MODIFIED", secret("web-tls", "6", owner="web"))
    assert rec.store.secrets[(NAMESPACE, "web-tls")].resource_version == "6"
    assert await drain(rec.certificates.queue) == [(NAMESPACE, "web")]

    handle("DELETED", {"metadata": {"namespace": NAMESPACE, "name": "web-tls"}})
    assert (NAMESPACE, "web-tls") not in rec.store.secrets
    assert await drain(rec.certificates.queue) == [(NAMESPACE, "web")]


async def test_a_deleted_secret_never_stored_is_traced_to_its_certificate_by_label(
    rec: runner.Reconcilers,
) -> None:
    handle = handlers.secret_events(rec.store, rec.certificates.queue)
    handle("DELETED", secret("api-tls", "9", owner="api"))
    assert await drain(rec.certificates.queue) == [(NAMESPACE, "api")]
    handle("DELETED", secret("unowned", "9", owner=None))
    assert await drain(rec.certificates.queue) == []


async def test_a_service_account_appearing_unblocks_the_certificates_waiting_for_it(
    rec: runner.Reconcilers,
) -> None:
    handle = handlers.service_account_events(rec.store, rec.certificates.queue)
    rec.store.waiting_for_account[(NAMESPACE, "api")] = {(NAMESPACE, "a"), (NAMESPACE, "b")}
    handle("ADDED", {"metadata": {"namespace": NAMESPACE, "name": "api"}})
    assert (NAMESPACE, "api") in rec.store.service_accounts
    assert sorted(await drain(rec.certificates.queue)) == [(NAMESPACE, "a"), (NAMESPACE, "b")]
    handle("DELETED", {"metadata": {"namespace": NAMESPACE, "name": "api"}})
    assert (NAMESPACE, "api") not in rec.store.service_accounts


async def test_the_store_is_synced_only_when_every_tracked_listing_is_in() -> None:
    watches = health.WatchHealth()
    certificates, issuers = watches.track(asyncio.Event()), watches.track(asyncio.Event())
    waiting = asyncio.create_task(watches.wait_synced())
    certificates.set()
    await asyncio.sleep(0)
    assert not watches.synced
    assert not waiting.done()
    issuers.set()
    await asyncio.wait_for(waiting, DEADLINE_S)
    assert watches.synced


def cluster_issuer(name: str) -> dict[str, Any]:
    """A ClusterIssuer as a LIST item: without ``kind``, as list items may come."""
    return {
        "metadata": {"name": name, "uid": "i", "generation": 1},
        "spec": {"selfSigned": {}, "trustDomain": "example.org"},
    }


async def test_an_issuer_is_stored_under_its_kind_and_queued(rec: runner.Reconcilers) -> None:
    handle = handlers.issuer_events(rec.issuers, rec.certificates.queue, "ClusterIssuer")
    handle("ADDED", cluster_issuer("ca"))

    record = rec.store.issuers[("ClusterIssuer", "", "ca")]
    assert (record.kind, record.name, record.spec_error) == ("ClusterIssuer", "ca", None)
    assert await drain(rec.issuers.queue) == [("ClusterIssuer", "", "ca")]


async def test_a_deleted_issuer_leaves_the_store_and_queues_its_certificates(
    rec: runner.Reconcilers,
) -> None:
    handlers.certificate_events(rec.certificates, lambda: False)("ADDED", certificate("web", "1"))
    handle = handlers.issuer_events(rec.issuers, rec.certificates.queue, "ClusterIssuer")
    handle("ADDED", cluster_issuer("ca"))
    await drain(rec.certificates.queue)
    await drain(rec.issuers.queue)

    handle("DELETED", {"metadata": {"name": "ca"}})  # a listing's DELETED: the name only

    assert ("ClusterIssuer", "", "ca") not in rec.store.issuers
    assert await drain(rec.certificates.queue) == [(NAMESPACE, "web")]
    assert await drain(rec.issuers.queue) == []
