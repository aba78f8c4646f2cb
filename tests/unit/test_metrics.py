"""Metrics: the scrape-time collector over a hand-built store, the counters, the probes."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import prometheus_client
import pytest
from prometheus_client.registry import CollectorRegistry

from certmint.core import state
from certmint.pki import ca as pki_ca
from certmint.pki import keys
from certmint.runtime import handlers, health, metrics, probes, runner

#: (metric name, sorted label pairs) -> value: one scrape, comparable as a whole.
Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]

NOW = datetime(2030, 5, 17, 9, 30, tzinfo=UTC)
NOT_AFTER = "2030-05-18T09:30:00Z"
RENEWAL = "2030-05-17T17:30:00Z"
CERTIFICATE_FAMILIES = (
    "certmint_certificate_ready_status",
    "certmint_certificate_not_after_timestamp_seconds",
    "certmint_certificate_renewal_timestamp_seconds",
)
ISSUER_FAMILIES = ("certmint_issuer_ready_status", "certmint_ca_not_after_timestamp_seconds")


def key(metric: str, /, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (metric, tuple(sorted(labels.items())))


def scrape(
    store: state.Store,
    watches: health.WatchHealth | None = None,
    is_leader: Callable[[], bool] = lambda: True,
    families: tuple[str, ...] = (*CERTIFICATE_FAMILIES, *ISSUER_FAMILIES),
    *,
    per_certificate: metrics.PerCertificate = metrics.PerCertificate.ALL,
    now: datetime = NOW,
) -> Series:
    """Collects once through a private registry; only the named families are kept."""
    registry = CollectorRegistry()
    registry.register(
        metrics.StoreCollector(
            store,
            watches or health.WatchHealth(),
            is_leader,
            per_certificate=per_certificate,
            clock=now.timestamp,
        )
    )
    return {
        key(sample.name, **sample.labels): sample.value
        for family in registry.collect()
        if family.name in families
        for sample in family.samples
    }


def ready(status: str, reason: str) -> dict[str, Any]:
    return {"type": "Ready", "status": status, "reason": reason, "message": reason}


def certificate(
    name: str = "api",
    namespace: str = "payments",
    status: Mapping[str, Any] | None = None,
    issuer_ref: Mapping[str, str] | None = None,
    **spec_fields: Any,
) -> state.CertificateRecord:
    """A record as the Certificate watch stores it: parsed by the handlers' parser."""
    body = {
        "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4())},
        "spec": {
            "secretName": "api-tls",
            "issuerRef": dict(issuer_ref or {"name": "ca"}),
            **spec_fields,
        },
        "status": dict(status or {}),
    }
    return handlers.certificate_record(body)


def store_of(*records: state.CertificateRecord | state.IssuerRecord) -> state.Store:
    store = state.Store()
    for record in records:
        if isinstance(record, state.CertificateRecord):
            store.put_certificate(record)
        else:
            store.issuers[record.key] = record
    return store


def ready_series(value: str, family: str, /, **labels: str) -> Series:
    """The three condition series of one object, 1 for ``value``."""
    return {
        key(family, **labels, condition=condition): 1.0 if condition == value else 0.0
        for condition in ("True", "False", "Unknown")
    }


PAYMENTS_API = {"name": "api", "namespace": "payments", "issuer_name": "ca"}

CERTIFICATE_CASES = [
    pytest.param(
        certificate(
            status={
                "conditions": [ready("True", "Ready")],
                "notAfter": NOT_AFTER,
                "renewalTime": RENEWAL,
            },
        ),
        {
            **ready_series(
                "True", "certmint_certificate_ready_status", **PAYMENTS_API, issuer_kind="Issuer"
            ),
            key(
                "certmint_certificate_not_after_timestamp_seconds",
                **PAYMENTS_API,
                issuer_kind="Issuer",
            ): datetime(2030, 5, 18, 9, 30, tzinfo=UTC).timestamp(),
            key(
                "certmint_certificate_renewal_timestamp_seconds",
                **PAYMENTS_API,
                issuer_kind="Issuer",
            ): datetime(2030, 5, 17, 17, 30, tzinfo=UTC).timestamp(),
        },
        id="a Ready certificate reports condition True and the status notAfter and renewalTime",
    ),
    pytest.param(
        certificate(status={"conditions": [ready("False", "PolicyViolation")]}),
        ready_series(
            "False", "certmint_certificate_ready_status", **PAYMENTS_API, issuer_kind="Issuer"
        ),
        id="a certificate never issued reports condition False and no times",
    ),
    pytest.param(
        certificate(
            status={
                "conditions": [ready("False", "IssuerNotReady")],
                "notAfter": NOT_AFTER,
                "renewalTime": RENEWAL,
                "failedIssuanceAttempts": 3,
            },
        ),
        {
            **ready_series(
                "False", "certmint_certificate_ready_status", **PAYMENTS_API, issuer_kind="Issuer"
            ),
            key(
                "certmint_certificate_not_after_timestamp_seconds",
                **PAYMENTS_API,
                issuer_kind="Issuer",
            ): datetime(2030, 5, 18, 9, 30, tzinfo=UTC).timestamp(),
            key(
                "certmint_certificate_renewal_timestamp_seconds",
                **PAYMENTS_API,
                issuer_kind="Issuer",
            ): datetime(2030, 5, 17, 17, 30, tzinfo=UTC).timestamp(),
        },
        id="a certificate whose renewal fails keeps the times of the certificate it still has",
    ),
    pytest.param(
        certificate(),
        ready_series(
            "Unknown", "certmint_certificate_ready_status", **PAYMENTS_API, issuer_kind="Issuer"
        ),
        id="a certificate not reconciled yet reports condition Unknown",
    ),
    pytest.param(
        certificate(issuer_ref={"name": "workloads", "kind": "ClusterIssuer"}),
        ready_series(
            "Unknown",
            "certmint_certificate_ready_status",
            name="api",
            namespace="payments",
            issuer_name="workloads",
            issuer_kind="ClusterIssuer",
        ),
        id="a ClusterIssuer's certificate is labelled with that kind",
    ),
    pytest.param(
        certificate(secretName="Not A Name", status={"conditions": [ready("False", "x")]}),
        ready_series(
            "False",
            "certmint_certificate_ready_status",
            name="api",
            namespace="payments",
            issuer_name="",
            issuer_kind="",
        ),
        id="a certificate with an invalid spec is labelled with an empty issuer",
    ),
    pytest.param(
        certificate(
            status={
                "conditions": [ready("True", "Ready")],
                "notAfter": "not a time",
                "renewalTime": None,
            },
        ),
        ready_series(
            "True", "certmint_certificate_ready_status", **PAYMENTS_API, issuer_kind="Issuer"
        ),
        id="an unreadable status time is left out rather than reported as zero",
    ),
]


@pytest.mark.parametrize(("record", "expected"), CERTIFICATE_CASES)
def test_a_certificate_is_reported_from_its_stored_status(
    record: state.CertificateRecord, expected: Series
) -> None:
    assert scrape(store_of(record)) == expected


def test_a_deleted_certificate_leaves_no_series_behind() -> None:
    kept = certificate("kept", status={"conditions": [ready("True", "Ready")]})
    gone = certificate(
        "gone",
        status={
            "conditions": [ready("True", "Ready")],
            "notAfter": NOT_AFTER,
            "renewalTime": RENEWAL,
        },
    )
    store = store_of(kept, gone)
    before = scrape(store)

    store.drop_certificate(gone.key)

    assert {name for (name, labels) in before if ("name", "gone") in labels} == set(
        CERTIFICATE_FAMILIES
    )
    assert scrape(store) == ready_series(
        "True",
        "certmint_certificate_ready_status",
        name="kept",
        namespace="payments",
        issuer_name="ca",
        issuer_kind="Issuer",
    )


@pytest.fixture(scope="module")
def authority() -> pki_ca.CertificateAuthority:
    return pki_ca.generate_root_ca(
        "metrics root", timedelta(days=90), keys.KeySpec(keys.KeyAlgorithm.ECDSA, 256), NOW
    )


def issuer(
    kind: str, namespace: str, name: str, runtime: state.IssuerRuntime
) -> state.IssuerRecord:
    return state.IssuerRecord(
        kind=kind,
        namespace=namespace,
        name=name,
        uid=str(uuid.uuid4()),
        generation=1,
        spec=None,
        spec_error=None,
        status={"conditions": [ready("True" if runtime.ready else "False", runtime.reason)]},
        runtime=runtime,
    )


def test_issuers_report_readiness_and_the_expiry_of_a_usable_ca(
    authority: pki_ca.CertificateAuthority,
) -> None:
    signing = state.IssuerRuntime(True, "CAReady", "signing", signer=authority)
    missing = state.IssuerRuntime(False, "CASecretMissing", "no Secret")
    store = store_of(
        issuer("ClusterIssuer", "", "workloads", signing),
        issuer("Issuer", "payments", "local", missing),
    )

    assert scrape(store) == {
        **ready_series(
            "True",
            "certmint_issuer_ready_status",
            kind="ClusterIssuer",
            namespace="",
            name="workloads",
        ),
        key(
            "certmint_ca_not_after_timestamp_seconds",
            kind="ClusterIssuer",
            namespace="",
            name="workloads",
        ): authority.not_after.timestamp(),
        **ready_series(
            "False",
            "certmint_issuer_ready_status",
            kind="Issuer",
            namespace="payments",
            name="local",
        ),
    }


@pytest.mark.parametrize(
    ("leading", "synced", "expected"),
    [
        pytest.param(True, True, (1.0, 1.0), id="a synced leader reports 1 and 1"),
        pytest.param(False, True, (0.0, 1.0), id="a standby reports certmint_leader 0"),
        pytest.param(True, False, (1.0, 0.0), id="before the listings cache_synced is 0"),
    ],
)
def test_operator_health_series(leading: bool, synced: bool, expected: tuple[float, float]) -> None:
    watches = health.WatchHealth()
    listed = watches.track(asyncio.Event())
    if synced:
        listed.set()
    series = scrape(
        state.Store(),
        watches,
        lambda: leading,
        families=("certmint_leader", "certmint_cache_synced"),
    )
    assert series == {
        key("certmint_leader"): expected[0],
        key("certmint_cache_synced"): expected[1],
    }


def test_the_watch_event_age_counts_from_each_kinds_last_event() -> None:
    watches = health.WatchHealth()
    watches.seen("secrets")
    watches.last_event["certificates"] = watches.last_event["secrets"] - 30.0
    before = time.monotonic()
    series = scrape(state.Store(), watches, families=("certmint_watch_last_event_age_seconds",))
    elapsed = time.monotonic() - before + (before - watches.last_event["secrets"])

    ages = {dict(labels)["resource"]: value for (_, labels), value in series.items()}
    assert sorted(ages) == ["certificates", "secrets"]
    assert 0.0 <= ages["secrets"] <= elapsed
    assert 30.0 <= ages["certificates"] <= 30.0 + elapsed


def sample(metric: str, /, **labels: str) -> float:
    value = prometheus_client.REGISTRY.get_sample_value(metric, labels)
    return 0.0 if value is None else value


def test_issuance_is_counted_by_outcome_and_timed_only_when_something_was_signed() -> None:
    # The counters are process-wide; a fresh issuer name keeps this test's series its own.
    name = f"counted-{uuid.uuid4().hex[:8]}"
    labels = {"issuer_name": name, "issuer_kind": "Issuer"}

    metrics.observe_issuance(name, "Issuer", "success", 0.02)
    metrics.observe_issuance(name, "Issuer", "success", 0.3)
    metrics.observe_issuance(name, "Issuer", "failure")
    metrics.observe_issuance(name, "Issuer", "denied")

    assert {
        "success": sample("certmint_issuance_total", **labels, result="success"),
        "failure": sample("certmint_issuance_total", **labels, result="failure"),
        "denied": sample("certmint_issuance_total", **labels, result="denied"),
        "timed": sample("certmint_issuance_duration_seconds_count", **labels),
        "seconds": round(sample("certmint_issuance_duration_seconds_sum", **labels), 6),
        "within 25ms": sample("certmint_issuance_duration_seconds_bucket", **labels, le="0.025"),
        "within 500ms": sample("certmint_issuance_duration_seconds_bucket", **labels, le="0.5"),
    } == {
        "success": 1.0 + 1.0,
        "failure": 1.0,
        "denied": 1.0,
        "timed": 2.0,
        "seconds": 0.32,
        "within 25ms": 1.0,
        "within 500ms": 2.0,
    }


# The probes and /metrics -------------------------------------------------------------
HEALTHY = probes.Facts(
    ended_tasks=(),
    watch_stalls={"/api/v1/secrets": 1.0},
    longest_reconciliations={"certificates": 0.0},
    synced=True,
    in_contact=True,
    leader=False,
)


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[probes.Facts]]]:
    """The operator's metrics server on a free loopback port; replace ``facts[0]`` to vary it."""
    facts = [HEALTHY]
    app_runner = await runner.serve_metrics("127.0.0.1", 0, lambda: facts[0])
    host, port = app_runner.addresses[0][:2]
    yield f"http://{host}:{port}", facts
    await app_runner.cleanup()


async def get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, response.headers["Content-Type"], await response.text()


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        pytest.param(
            HEALTHY,
            {"/livez": (200, "ok\n"), "/readyz": (200, "ok\n"), "/healthz": (200, "ok\n")},
            id="every probe answers 200 while everything runs",
        ),
        pytest.param(
            dataclasses.replace(HEALTHY, synced=False),
            {
                "/livez": (200, "ok\n"),
                "/readyz": (503, "cache not synced: a watched kind has not been listed yet\n"),
                "/healthz": (503, "cache not synced: a watched kind has not been listed yet\n"),
            },
            id="an unsynced cache is alive but not ready, and healthz says so too",
        ),
        pytest.param(
            dataclasses.replace(HEALTHY, ended_tasks=("workers",)),
            {
                "/livez": (503, "task workers ended\n"),
                "/readyz": (503, "task workers ended\n"),
                "/healthz": (503, "task workers ended\n"),
            },
            id="a task that ended fails every probe",
        ),
    ],
)
async def test_the_probes_answer_from_the_facts(
    server: tuple[str, list[probes.Facts]], facts: probes.Facts, expected: dict[str, Any]
) -> None:
    base, holder = server
    holder[0] = facts
    answers = {}
    for path in expected:
        status, _, body = await get(f"{base}{path}")
        answers[path] = (status, body)
    assert answers == expected


async def test_metrics_are_served_in_the_prometheus_text_format(
    server: tuple[str, list[probes.Facts]],
) -> None:
    base, _ = server
    status, content_type, body = await get(f"{base}/metrics")
    assert (status, content_type.split(";")[0]) == (200, "text/plain")
    assert "# TYPE certmint_issuance_total counter" in body.splitlines()
