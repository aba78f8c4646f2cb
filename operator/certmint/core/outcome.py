"""What follows from a Certificate's decision: status, next wake-up, Events, logs, metrics.

One pure function, `of`, computes it all as a value from the record, the decision, the
Secret's leaf (or the issuance just written) and the issuer; the certificate reconciler
applies it by patching only the status fields that differ. ``now`` is passed in.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta

from cryptography import x509

from certmint.core import readiness, secret_format, state, status
from certmint.pki import decode, renewal

#: The Ready message of an up-to-date certificate whose lifetime the CA cut short.
CLAMPED_SUFFIX = "; its lifetime was shortened to end with the issuing CA"


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """A Kubernetes Event to post about the Certificate."""

    type: str
    reason: str
    message: str


@dataclasses.dataclass(frozen=True, slots=True)
class LogLine:
    """A line for the operator's log; ``reason`` goes into its structured fields."""

    level: int
    message: str
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class Counted:
    """One ``certmint_issuance_total`` increment, with the duration of a success."""

    result: str
    seconds: float | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Denied:
    """One ``certmint_policy_denials_total`` increment."""

    rule: str


MetricUpdate = Counted | Denied


@dataclasses.dataclass(frozen=True, slots=True)
class Wake:
    """Reconcile the Certificate again at ``at``; ``limited`` goes through the rate bound."""

    at: datetime
    limited: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Backoff:
    """Delays between failed issuances: ``base`` doubling up to ``cap``."""

    base: timedelta = renewal.DEFAULT_BACKOFF_BASE
    cap: timedelta = renewal.DEFAULT_BACKOFF_CAP


@dataclasses.dataclass(frozen=True, slots=True)
class Issuance:
    """What an issuance just wrote.

    Attributes:
        secret: The Secret as written (its leaf is the new certificate).
        identity: The SPIFFE ID the leaf was issued for, "" without one.
        clamped: The CA's expiry cut the requested lifetime short.
        replaced: A Secret of this Certificate existed before.
        seconds: How long key generation, signing and the write took.
        leaf: The new certificate, as signed (the Secret holds its DER).
        signer_fingerprint: The SHA-256 fingerprint of the issuer's CA that signed it;
            None when it is self-signed.
    """

    secret: secret_format.SecretState
    identity: str
    clamped: bool
    replaced: bool
    seconds: float
    leaf: x509.Certificate
    signer_fingerprint: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """Everything a reconciliation should leave behind, in the order it is applied."""

    status: status.CertificateStatus
    wake: Wake | None = None
    events: tuple[Event, ...] = ()
    logs: tuple[LogLine, ...] = ()
    metrics: tuple[MetricUpdate, ...] = ()


def failed_attempts(record: state.CertificateRecord) -> int:
    """Consecutive failures, reset by a spec change (a new generation)."""
    ready = record.status.condition("Ready")
    if ready is None or ready.observed_generation != record.generation:
        return 0
    return record.status.failed_issuance_attempts or 0


def backoff_until(record: state.CertificateRecord, backoff: Backoff) -> datetime | None:
    """When the failure backoff of ``record`` ends; None when it has no failures."""
    attempts, last = failed_attempts(record), record.status.last_failure_time
    if not attempts or last is None:
        return None
    # lastFailureTime has whole seconds: count from the end of that second, never early.
    return renewal.next_retry_time(
        last + timedelta(seconds=1), attempts, base=backoff.base, cap=backoff.cap
    )


def pace(
    decision: readiness.Decision, *, admitted: bool, retry_at: datetime | None, now: datetime
) -> Wake | None:
    """Whether to act on ``decision`` now, or when to look again instead.

    Args:
        decision: What `readiness.decide` said.
        admitted: The rate bound let this reconciliation through (a scheduled wake-up
            took a token).
        retry_at: When the failure backoff ends (`backoff_until`), None when none runs.
        now: The current time (aware).

    Returns:
        None to act now; a wake-up through the rate bound for a time- or CA-driven
        re-issue that was not admitted; the end of the backoff for an issuance or a
        retry that comes too early.
    """
    if decision.reason in readiness.RATE_BOUND and not admitted:
        return Wake(now, limited=True)
    if decision.respects_backoff and retry_at is not None and now < retry_at:
        return Wake(retry_at, limited=False)
    return None


def _conditions(
    record: state.CertificateRecord,
    ready: tuple[str, str, str],
    issuing: tuple[str, str, str],
    now: datetime,
) -> tuple[status.Condition, ...]:
    return tuple(
        status.transition(
            record.status.condition(type_),
            type_=type_,
            status=value,
            reason=reason,
            message=message,
            generation=record.generation,
            now=now,
        )
        for type_, (value, reason, message) in (("Ready", ready), ("Issuing", issuing))
    )


def _up_to_date(
    record: state.CertificateRecord,
    leaf: x509.Certificate,
    revision: int,
    now: datetime,
    *,
    message: str,
    renewal_time: datetime,
    identity: str | None,
    issuer_fingerprint: str | None,
) -> Outcome:
    desired = status.CertificateStatus(
        conditions=_conditions(
            record, ("True", "Ready", message), ("False", "Issued", "no issuance in progress"), now
        ),
        identity=identity or None,
        serial_number=decode.serial_hex(leaf),
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        renewal_time=renewal_time,
        revision=revision,
        issuer_fingerprint=issuer_fingerprint,
    )
    return Outcome(desired, Wake(renewal_time, limited=True))


def _issued(
    record: state.CertificateRecord,
    decision: readiness.Decision,
    issuance: Issuance,
    runtime: state.IssuerRuntime | None,
    now: datetime,
) -> Outcome:
    leaf, revision = issuance.leaf, issuance.secret.revision
    message = (
        f"issued serial {decode.serial_hex(leaf)} (revision {revision}), "
        f"valid until {leaf.not_valid_after_utc.isoformat()}: {decision.message}"
    )
    if issuance.clamped:
        message += "; the lifetime was shortened to end with the issuing CA"
    renewing = issuance.replaced and decision.reason not in ("SecretMissing", "SpecChanged")
    settled = _up_to_date(
        record,
        leaf,
        revision,
        now,
        message=readiness.UP_TO_DATE + (CLAMPED_SUFFIX if issuance.clamped else ""),
        renewal_time=readiness.renewal_time(record, leaf),
        identity=issuance.identity,
        issuer_fingerprint=issuance.signer_fingerprint or _signing_ca(leaf, runtime),
    )
    return dataclasses.replace(
        settled,
        events=(Event("Normal", "Renewed" if renewing else "Issued", message),),
        logs=(LogLine(logging.INFO, message, decision.reason),),
        metrics=(Counted("success", issuance.seconds),),
    )


def _signing_ca(leaf: x509.Certificate, runtime: state.IssuerRuntime | None) -> str | None:
    return readiness.signing_ca_fingerprint(leaf, runtime) if runtime else None


def _failed(
    record: state.CertificateRecord, decision: readiness.Decision, now: datetime, backoff: Backoff
) -> Outcome:
    attempts = failed_attempts(record) + 1
    reason, message = decision.reason, decision.message
    desired = dataclasses.replace(
        record.status,
        conditions=_conditions(record, ("False", reason, message), ("True", reason, message), now),
        failed_issuance_attempts=attempts,
        last_failure_time=now,
    )
    retry_at = renewal.next_retry_time(now, attempts, base=backoff.base, cap=backoff.cap)
    return Outcome(
        desired,
        Wake(retry_at, limited=False),
        events=(Event("Warning", "Failed", message),),
        logs=(LogLine(logging.WARNING, f"issuance attempt {attempts} failed: {message}", reason),),
        metrics=(Counted("failure"),),
    )


def _blocked(
    record: state.CertificateRecord, decision: readiness.Decision, now: datetime
) -> Outcome:
    reason, message = decision.reason, decision.message
    desired = dataclasses.replace(
        record.status,
        conditions=_conditions(record, ("False", reason, message), ("False", reason, message), now),
        failed_issuance_attempts=None,
        last_failure_time=None,
    )
    was = record.status.condition("Ready")
    if was is not None and (was.reason, was.message) == (reason, message):
        return Outcome(desired)  # said already: no second Event
    denied = reason == "PolicyViolation"
    return Outcome(
        desired,
        events=(Event("Warning", "Denied" if denied else reason, message),),
        logs=(LogLine(logging.WARNING, message, reason),),
        metrics=(Denied(decision.denial), Counted("denied")) if denied else (),
    )


def of(
    record: state.CertificateRecord,
    decision: readiness.Decision,
    *,
    secret: secret_format.SecretState | None,
    issuer: state.IssuerRuntime | None,
    now: datetime,
    issuance: Issuance | None = None,
    backoff: Backoff = Backoff(),
) -> Outcome:
    """Computes what a reconciliation of ``record`` leaves behind.

    Args:
        record: The Certificate as stored (its status is the current one).
        decision: What `readiness.decide` said, or `readiness.failure` after an error.
        secret: The Certificate's Secret as stored (unused after an issuance).
        issuer: The issuer's runtime state, None when there is no issuer.
        now: The current time (aware).
        issuance: What was just issued and written, if anything.
        backoff: The delays between failed attempts.

    Returns:
        After an issuance: Ready with the new leaf, an Issued or Renewed Event, a success
        count. For a failure (a retryable blocker or an error): Ready=False, Issuing=True,
        the attempt counted, a retry after the backoff. For an up-to-date leaf: Ready with
        its facts and a wake-up at its renewal time. Otherwise (blocked): Ready=False, with
        an Event and, for a denial, denial counts only when the reason or message is new.
    """
    if issuance is not None:
        return _issued(record, decision, issuance, issuer, now)
    if decision.counts_as_failure:
        return _failed(record, decision, now, backoff)
    leaf = secret.leaf if secret is not None else None
    if decision.action == "ready" and secret is not None and leaf is not None:
        identity = decode.identity_of(leaf)
        return _up_to_date(
            record,
            leaf,
            secret.revision,
            now,
            message=decision.message,
            renewal_time=decision.renewal_time or readiness.renewal_time(record, leaf),
            identity=str(identity) if identity else None,
            issuer_fingerprint=_signing_ca(leaf, issuer),
        )
    return _blocked(record, decision, now)
