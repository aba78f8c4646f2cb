"""Metrics that scale: the aggregates by group, and per-certificate series only when needed."""

from __future__ import annotations

import dataclasses
import random
from datetime import datetime, timedelta
from typing import Any

import pytest

from certmint.cli import main as cli_main
from certmint.core import fleet, state, status
from certmint.runtime import health, metrics
from tests.unit.test_metrics import (
    CERTIFICATE_FAMILIES,
    NOW,
    Series,
    certificate,
    key,
    ready,
    ready_series,
    scrape,
    store_of,
)

AGGREGATE_FAMILIES = (
    "certmint_certificates",
    "certmint_certificates_expiring",
    "certmint_certificates_renewal_overdue",
    "certmint_certificates_earliest_not_after_timestamp_seconds",
)
GROUP = {"namespace": "payments", "issuer_name": "ca", "issuer_kind": "Issuer"}
API = {"name": "api", **GROUP}
HOUR = timedelta(hours=1)


def stamp(moment: datetime) -> str:
    return status.timestamp(moment)


def issued(
    condition: str = "True",
    reason: str = "Issued",
    not_after: datetime = NOW + 24 * HOUR,
    renewal: datetime = NOW + 16 * HOUR,
) -> dict[str, Any]:
    """A status after issuance: Ready as given, the certificate's notAfter and renewal time."""
    return {
        "conditions": [ready(condition, reason)],
        "notAfter": stamp(not_after),
        "renewalTime": stamp(renewal),
    }


def per_certificate(
    ready_value: str, not_after: datetime | None, renewal: datetime | None, **labels: str
) -> Series:
    """The per-certificate series of one Certificate."""
    series = ready_series(ready_value, "certmint_certificate_ready_status", **labels)
    if not_after is not None:
        series[key("certmint_certificate_not_after_timestamp_seconds", **labels)] = (
            not_after.timestamp()
        )
    if renewal is not None:
        series[key("certmint_certificate_renewal_timestamp_seconds", **labels)] = (
            renewal.timestamp()
        )
    return series


ATTENTION_CASES = [
    pytest.param(issued(), {}, id="a Ready certificate before its renewal time has no series"),
    pytest.param(
        issued("False", "IssuerNotReady"),
        per_certificate("False", NOW + 24 * HOUR, NOW + 16 * HOUR, **API),
        id="a certificate that is not Ready has its series, times included",
    ),
    pytest.param(
        {"conditions": [ready("False", "PolicyViolation")]},
        per_certificate("False", None, None, **API),
        id="a certificate never issued and denied has its Ready series",
    ),
    pytest.param(
        {},
        per_certificate("Unknown", None, None, **API),
        id="a certificate not reconciled yet reports condition Unknown",
    ),
    pytest.param(
        issued(renewal=NOW - timedelta(seconds=30)),
        per_certificate("True", NOW + 24 * HOUR, NOW - timedelta(seconds=30), **API),
        id="a Ready certificate whose renewal time has come has its series",
    ),
    pytest.param(
        issued(not_after=NOW + HOUR, renewal=NOW - 7 * HOUR),
        per_certificate("True", NOW + HOUR, NOW - 7 * HOUR, **API),
        id="a certificate whose renewal is overdue has its series",
    ),
    pytest.param(
        issued(not_after=NOW - HOUR, renewal=NOW - 9 * HOUR),
        per_certificate("True", NOW - HOUR, NOW - 9 * HOUR, **API),
        id="an expired certificate has its series",
    ),
]


@pytest.mark.parametrize(("status_body", "expected"), ATTENTION_CASES)
def test_by_default_only_certificates_needing_attention_have_per_certificate_series(
    status_body: dict[str, Any], expected: Series
) -> None:
    store = store_of(certificate(status=status_body))
    assert scrape(store, per_certificate=metrics.PerCertificate.ATTENTION) == expected


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        pytest.param(
            metrics.PerCertificate.ALL,
            {
                **per_certificate("True", NOW + 24 * HOUR, NOW + 16 * HOUR, **API),
                **per_certificate("False", None, None, **{**API, "name": "denied"}),
            },
            id="all: every certificate has its series",
        ),
        pytest.param(
            metrics.PerCertificate.ATTENTION,
            per_certificate("False", None, None, **{**API, "name": "denied"}),
            id="attention: only the denied certificate has its series",
        ),
        pytest.param(metrics.PerCertificate.NONE, {}, id="none: no certificate has series"),
    ],
)
def test_the_per_certificate_mode_chooses_which_certificates_have_series(
    mode: metrics.PerCertificate, expected: Series
) -> None:
    store = store_of(
        certificate(status=issued()),
        certificate("denied", status={"conditions": [ready("False", "PolicyViolation")]}),
    )
    assert scrape(store, per_certificate=mode) == expected


def aggregates(
    counts: dict[tuple[str, str], float],
    expiring: tuple[float, float, float, float, float, float],
    overdue: float,
    earliest: datetime | None,
    **group: str,
) -> Series:
    """The aggregate series of one group; ``expiring`` by window: 0, 1 h, 1 d, 7 d, 30 d, +Inf."""
    series: Series = {
        key("certmint_certificates", **group, condition=condition, reason=reason): value
        for (condition, reason), value in counts.items()
    }
    windows = ("0", "3600", "86400", "604800", "2592000", "+Inf")
    for window, value in zip(windows, expiring, strict=True):
        series[key("certmint_certificates_expiring", **group, le=window)] = value
    series[key("certmint_certificates_renewal_overdue", **group)] = overdue
    if earliest is not None:
        series[key("certmint_certificates_earliest_not_after_timestamp_seconds", **group)] = (
            earliest.timestamp()
        )
    return series


def test_aggregates_count_certificates_by_group_readiness_expiry_and_overdue_renewal() -> None:
    cluster = {"name": "workloads", "kind": "ClusterIssuer"}
    store = store_of(
        certificate("healthy", status=issued()),
        certificate("soon", status=issued(not_after=NOW + 2 * HOUR, renewal=NOW - 6 * HOUR)),
        certificate("gone", status=issued(not_after=NOW - HOUR, renewal=NOW - 9 * HOUR)),
        certificate("denied", status={"conditions": [ready("False", "PolicyViolation")]}),
        certificate("new"),
        certificate(
            "api", "shop", issuer_ref=cluster, status=issued(not_after=NOW + 10 * 24 * HOUR)
        ),
    )

    assert scrape(store, families=AGGREGATE_FAMILIES) == {
        **aggregates(
            {("False", "PolicyViolation"): 1.0, ("True", "Issued"): 3.0, ("Unknown", ""): 1.0},
            (1.0, 1.0, 3.0, 3.0, 3.0, 3.0),
            2.0,
            NOW - HOUR,
            **GROUP,
        ),
        **aggregates(
            {("True", "Issued"): 1.0},
            (0.0, 0.0, 0.0, 0.0, 1.0, 1.0),
            0.0,
            NOW + 10 * 24 * HOUR,
            namespace="shop",
            issuer_name="workloads",
            issuer_kind="ClusterIssuer",
        ),
    }


def test_series_follow_a_certificate_through_failure_recovery_and_deletion() -> None:
    record = certificate(status=issued())
    store = store_of(record)
    families = (*CERTIFICATE_FAMILIES, "certmint_certificates")
    healthy = scrape(store, families=families, per_certificate=metrics.PerCertificate.ATTENTION)

    # A watch event replaces the record: its issuer went away.
    failing = certificate(status=issued("False", "IssuerNotReady"))
    store.put_certificate(failing)
    not_ready = scrape(store, families=families, per_certificate=metrics.PerCertificate.ATTENTION)

    # certmint's own status patch replaces the status object of the stored record in place.
    store.set_certificate_status(failing, status.CertificateStatus.parse(issued()))
    recovered = scrape(store, families=families, per_certificate=metrics.PerCertificate.ATTENTION)

    store.drop_certificate(failing.key)
    deleted = scrape(store, families=families, per_certificate=metrics.PerCertificate.ATTENTION)

    count = "certmint_certificates"
    assert (healthy, not_ready, recovered, deleted) == (
        {key(count, **GROUP, condition="True", reason="Issued"): 1.0},
        {
            **per_certificate("False", NOW + 24 * HOUR, NOW + 16 * HOUR, **API),
            key(count, **GROUP, condition="False", reason="IssuerNotReady"): 1.0,
        },
        {key(count, **GROUP, condition="True", reason="Issued"): 1.0},
        {},
    )


def test_a_certificate_enters_attention_as_time_passes_without_any_change() -> None:
    store = store_of(certificate(status=issued(not_after=NOW + 2 * HOUR, renewal=NOW + HOUR)))
    collector = metrics.StoreCollector(
        store, health.WatchHealth(), lambda: True, clock=lambda: moments.pop(0)
    )
    moments = [(NOW + offset).timestamp() for offset in (timedelta(0), HOUR, 1.5 * HOUR, 3 * HOUR)]

    def observed() -> tuple[int, float, float]:
        families = {family.name: family for family in collector.collect()}
        overdue = families["certmint_certificates_renewal_overdue"].samples[0].value
        expired = next(
            each.value
            for each in families["certmint_certificates_expiring"].samples
            if each.labels["le"] == "0"
        )
        return len(families["certmint_certificate_ready_status"].samples), overdue, expired

    assert [observed() for _ in range(4)] == [
        (0, 0.0, 0.0),  # before the renewal time
        (3, 0.0, 0.0),  # renewal due: the series appear, not overdue yet
        (3, 1.0, 0.0),  # 30 minutes later: past the 15-minute margin
        (3, 1.0, 1.0),  # past notAfter
    ]


@pytest.mark.parametrize(
    ("not_after", "renewal", "expected"),
    [
        pytest.param(1000.0, None, None, id="never issued: never overdue"),
        pytest.param(
            100_000.0, 10_000.0, 10_900.0, id="a long remaining time caps the margin at 15 minutes"
        ),
        pytest.param(10_300.0, 10_000.0, 10_150.0, id="a short one makes it half of what is left"),
        pytest.param(10_010.0, 10_000.0, 10_060.0, id="but never under a minute"),
    ],
)
def test_overdue_uses_the_margin_of_the_renewal_overdue_alert(
    not_after: float, renewal: float | None, expected: float | None
) -> None:
    assert fleet.overdue_at(not_after, renewal) == expected


def snapshot(index: fleet.FleetIndex, now: float) -> list[Any]:
    return [
        sorted(index.needing_attention(now)),
        [
            (group, dict(tally.by_condition), tally.not_after, tally.overdue_at, tally.size)
            for group, tally in index.groups()
        ],
    ]


def test_updating_entry_by_entry_gives_what_a_rebuild_gives() -> None:
    shuffle = random.Random(18)  # noqa: S311 -- a reproducible test order, not a secret
    reasons = [("True", "Issued"), ("False", "PolicyViolation"), ("Unknown", "")]
    records = {}
    for number in range(200):
        condition, reason = shuffle.choice(reasons)
        hours = shuffle.randint(-3, 30)
        body = issued(condition, reason, NOW + hours * HOUR, NOW + (hours - 8) * HOUR)
        records[number] = certificate(f"c{number}", f"ns{number % 3}", status=body)
    store = store_of(*records.values())
    incremental = fleet.FleetIndex()
    store.subscribe(incremental.changed)
    incremental.refresh()
    for number in shuffle.sample(sorted(records), 20):  # under 1 in REBUILD_SHARE
        record = records[number]
        if number % 3 == 0:
            store.drop_certificate(record.key)
        elif number % 3 == 1:
            store.set_certificate_status(record, dataclasses.replace(record.status, not_after=None))
        else:
            store.put_certificate(certificate(record.name, record.namespace))
    changed = incremental.refresh()
    rebuilt = fleet.FleetIndex()
    store.subscribe(rebuilt.changed)
    rebuilt.refresh()

    assert changed == 20
    assert snapshot(incremental, NOW.timestamp()) == snapshot(rebuilt, NOW.timestamp())
    assert len(incremental) == len(store.certificates)


def test_many_small_rounds_of_changes_keep_agreeing_with_a_rebuild() -> None:
    # Certificates issued in the same second share their renewal time; every round rewrites
    # some statuses (a status patch), so removed entries pile up until they are compacted.
    store = store_of(*(certificate(f"c{n:03d}", status=issued()) for n in range(120)))
    incremental = fleet.FleetIndex()
    store.subscribe(incremental.changed)
    incremental.refresh()
    observed = []
    for round_ in range(12):
        for number in range(round_, 120, 9):
            record = store.certificates[state.CertificateKey("payments", f"c{number:03d}")]
            renewal = NOW - HOUR if round_ % 2 else NOW + 16 * HOUR
            store.set_certificate_status(
                record, status.CertificateStatus.parse(issued(renewal=renewal))
            )
        incremental.refresh()
        rebuilt = fleet.FleetIndex()
        store.subscribe(rebuilt.changed)
        rebuilt.refresh()
        observed.append(
            snapshot(incremental, NOW.timestamp()) == snapshot(rebuilt, NOW.timestamp())
        )

    assert observed == [True] * 12


def test_a_store_without_changes_leaves_nothing_to_refresh() -> None:
    store = store_of(*(certificate(f"c{n}", status=issued()) for n in range(5)))
    index = fleet.FleetIndex()
    store.subscribe(index.changed)
    assert (index.refresh(), index.refresh()) == (5, 0)


def test_a_status_written_to_a_record_the_store_no_longer_holds_changes_nothing() -> None:
    stale = certificate(status=issued())
    store = store_of(stale)
    index = fleet.FleetIndex()
    store.subscribe(index.changed)
    index.refresh()
    store.put_certificate(certificate(status=issued("False", "IssuerNotReady")))
    index.refresh()

    store.set_certificate_status(stale, status.CertificateStatus.parse(issued()))

    assert (index.refresh(), [dict(tally.by_condition) for _, tally in index.groups()]) == (
        0,
        [{("False", "IssuerNotReady"): 1}],
    )


def test_the_command_line_offers_every_per_certificate_mode() -> None:
    parser = cli_main.build_parser()
    chosen = {
        value: parser.parse_args(
            ["run", "--per-certificate-metrics", value]
        ).per_certificate_metrics
        for value in cli_main.PER_CERTIFICATE_METRICS
    }
    assert (
        {metrics.PerCertificate(value) for value in chosen.values()},
        parser.parse_args(["run"]).per_certificate_metrics,
    ) == (set(metrics.PerCertificate), "attention")
