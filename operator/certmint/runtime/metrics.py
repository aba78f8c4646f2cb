"""Prometheus metrics: per-object series computed at scrape time, plus event counters.

Per-object gauges come from a custom collector over the in-memory store, so a deleted
Certificate leaves no stale series behind. Nothing here ever sees key material.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from certmint.core import fleet, state, status
from certmint.runtime import health, scheduler

ISSUANCE_TOTAL = Counter(
    "certmint_issuance",
    "Issuance attempts by outcome (success, failure, denied).",
    ["issuer_name", "issuer_kind", "result"],
)
ISSUANCE_DURATION = Histogram(
    "certmint_issuance_duration_seconds",
    "Time to issue one certificate: key generation, signing and the Secret write.",
    ["issuer_name", "issuer_kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
POLICY_DENIALS = Counter(
    "certmint_policy_denials",
    "Certificates denied by issuer policy, by the policy rule that denied them.",
    ["reason"],
)

EVENTS_DROPPED = Counter(
    "certmint_events_dropped",
    "Normal Events not posted: over the budget of --event-qps and --event-burst.",
    ["reason"],
)

CONDITION_VALUES = ("True", "False", "Unknown")


def initialize_series(denial_reasons: Iterable[str]) -> None:
    """Creates the denial series at zero, so ``rate()`` sees the first denial."""
    for reason in denial_reasons:
        POLICY_DENIALS.labels(reason=reason)


def initialize_issuer_series(issuer_name: str, issuer_kind: str) -> None:
    """Creates an issuer's issuance series at zero, so ``rate()`` sees the first event."""
    for result in ("success", "failure", "denied"):
        ISSUANCE_TOTAL.labels(issuer_name=issuer_name, issuer_kind=issuer_kind, result=result)
    ISSUANCE_DURATION.labels(issuer_name=issuer_name, issuer_kind=issuer_kind)


def observe_issuance(
    issuer_name: str, issuer_kind: str, result: str, seconds: float | None = None
) -> None:
    ISSUANCE_TOTAL.labels(issuer_name=issuer_name, issuer_kind=issuer_kind, result=result).inc()
    if seconds is not None:
        ISSUANCE_DURATION.labels(issuer_name=issuer_name, issuer_kind=issuer_kind).observe(seconds)


class PerCertificate(enum.Enum):
    """Which Certificates get the per-certificate series (``--per-certificate-metrics``)."""

    #: Those that need attention: not Ready, or past their renewal time (renewal due,
    #: overdue, expired). The default: what the per-certificate alerts fire on.
    ATTENTION = "attention"
    #: Every Certificate: 5 series each, the cost grows with the fleet.
    ALL = "all"
    #: None: only the aggregates (the alerts fall back to them, without the name).
    NONE = "none"


CERTIFICATE_LABELS = ["name", "namespace", "issuer_name", "issuer_kind"]
GROUP_LABELS = ["namespace", "issuer_name", "issuer_kind"]


class StoreCollector(Collector):
    """Yields the Certificate, issuer and operator series from the store at scrape time.

    Certificates are counted by `fleet.FleetIndex`, which the store tells of each change
    and which applies them at the next scrape; per-certificate series follow
    ``per_certificate``.
    """

    def __init__(
        self,
        store: state.Store,
        health: health.WatchHealth,
        is_leader: Callable[[], bool],
        queues: Mapping[str, scheduler.WorkQueue[Any]] | None = None,
        *,
        per_certificate: PerCertificate = PerCertificate.ATTENTION,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.health = health
        self.is_leader = is_leader
        self.queues = dict(queues or {})
        self.per_certificate = per_certificate
        self.clock = clock
        self.index = fleet.FleetIndex()
        store.subscribe(self.index.changed)

    def collect(self) -> Iterator[Metric]:
        self.index.refresh()
        now = self.clock()
        yield from self._certificates(now)
        yield from _aggregates(self.index, now)
        yield from self._issuers()
        yield from self._operator()

    def _certificates(self, now: float) -> Iterator[Metric]:
        ready = GaugeMetricFamily(
            "certmint_certificate_ready_status",
            "The Ready condition of a Certificate (1 for the current value).",
            labels=[*CERTIFICATE_LABELS, "condition"],
        )
        not_after = GaugeMetricFamily(
            "certmint_certificate_not_after_timestamp_seconds",
            "When the certificate in the Secret expires (Unix time).",
            labels=CERTIFICATE_LABELS,
        )
        renewal = GaugeMetricFamily(
            "certmint_certificate_renewal_timestamp_seconds",
            "When the certificate is due for renewal (Unix time).",
            labels=CERTIFICATE_LABELS,
        )
        if self.per_certificate is PerCertificate.ALL:
            selected = self.index.entries()
        elif self.per_certificate is PerCertificate.ATTENTION:
            selected = self.index.needing_attention(now)
        else:
            selected = iter(())
        for key, entry in selected:
            values = [key.name, *entry.group]
            for condition in CONDITION_VALUES:
                ready.add_metric([*values, condition], 1.0 if condition == entry.ready else 0.0)
            if entry.not_after is not None:
                not_after.add_metric(values, entry.not_after)
            if entry.renewal is not None:
                renewal.add_metric(values, entry.renewal)
        yield from (ready, not_after, renewal)

    def _issuers(self) -> Iterator[Metric]:
        labels = ["name", "namespace", "kind"]
        ready = GaugeMetricFamily(
            "certmint_issuer_ready_status",
            "The Ready condition of an Issuer or ClusterIssuer (1 for the current value).",
            labels=[*labels, "condition"],
        )
        ca_not_after = GaugeMetricFamily(
            "certmint_ca_not_after_timestamp_seconds",
            "When the issuer's signing CA expires (Unix time).",
            labels=labels,
        )
        for record in list(self.store.issuers.values()):
            values = [record.name, record.namespace, record.kind]
            current = status.find_condition(record.status, "Ready")
            value = str(current.get("status")) if current else "Unknown"
            for condition in CONDITION_VALUES:
                ready.add_metric([*values, condition], 1.0 if condition == value else 0.0)
            signer = record.runtime.signer
            if signer is not None:
                ca_not_after.add_metric(values, signer.not_after.timestamp())
        yield from (ready, ca_not_after)

    def _operator(self) -> Iterator[Metric]:
        age = GaugeMetricFamily(
            "certmint_watch_last_event_age_seconds",
            "Seconds since each watched kind last delivered an event.",
            labels=["resource"],
        )
        now = time.monotonic()
        for resource, seen in sorted(self.health.last_event.items()):
            age.add_metric([resource], now - seen)
        yield age
        leader = GaugeMetricFamily("certmint_leader", "1 when this replica is the active leader.")
        leader.add_metric([], 1.0 if self.is_leader() else 0.0)
        yield leader
        synced = GaugeMetricFamily(
            "certmint_cache_synced", "1 once the initial listings of all watched kinds are in."
        )
        synced.add_metric([], 1.0 if self.health.synced else 0.0)
        yield synced
        if self.queues:
            yield from self._queues()

    def _queues(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "certmint_workqueue_depth",
            "Keys waiting for a worker, by queue.",
            labels=["queue"],
        )
        scheduled = GaugeMetricFamily(
            "certmint_workqueue_scheduled",
            "Keys with a reconciliation scheduled for later (renewals, retries), by queue.",
            labels=["queue"],
        )
        for name, queue in sorted(self.queues.items()):
            depth.add_metric([name], float(len(queue)))
            scheduled.add_metric([name], float(queue.scheduled))
        yield from (depth, scheduled)


def _aggregates(index: fleet.FleetIndex, now: float) -> Iterator[Metric]:
    """The series by group (namespace, issuer): their number grows with groups, not Certificates."""
    counts = GaugeMetricFamily(
        "certmint_certificates",
        "Certificates by namespace, issuer, Ready condition status and reason.",
        labels=[*GROUP_LABELS, "condition", "reason"],
    )
    expiring = GaugeMetricFamily(
        "certmint_certificates_expiring",
        "Certificates whose notAfter is at most `le` seconds away (le=0: expired), cumulative.",
        labels=[*GROUP_LABELS, "le"],
    )
    overdue = GaugeMetricFamily(
        "certmint_certificates_renewal_overdue",
        "Certificates past their renewal time by the CertificateRenewalOverdue alert's margin.",
        labels=GROUP_LABELS,
    )
    earliest = GaugeMetricFamily(
        "certmint_certificates_earliest_not_after_timestamp_seconds",
        "The soonest notAfter among the group's certificates (Unix time).",
        labels=GROUP_LABELS,
    )
    for group, tally in index.groups():
        labels = list(group)
        for (condition, reason), count in sorted(tally.by_condition.items()):
            counts.add_metric([*labels, condition, reason], float(count))
        for window in fleet.EXPIRY_WINDOWS:
            expiring.add_metric([*labels, str(int(window))], float(tally.expiring(now, window)))
        expiring.add_metric([*labels, "+Inf"], float(tally.with_not_after()))
        overdue.add_metric(labels, float(tally.overdue(now)))
        if (soonest := tally.earliest_not_after()) is not None:
            earliest.add_metric(labels, soonest)
    yield from (counts, expiring, overdue, earliest)
