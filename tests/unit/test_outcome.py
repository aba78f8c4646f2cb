"""What a Certificate's reconciliation leaves behind, and when it acts at all (pure).

Every case asserts the whole `outcome.Outcome`: the status the reconciler patches, its
next wake-up, the Events, the log lines and the metric updates. Records, leaves and
Secrets come from the readiness tests' fixtures: real certificates at a fixed moment.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta
from typing import Any

import pytest

from certmint.core import outcome, readiness, secret_format, state, status
from certmint.pki import decode
from tests.unit.test_readiness import (
    CA,
    DUE,
    EARLY,
    LEAF,
    NOT_AFTER,
    NOT_READY,
    RUNTIME,
    certificate_record,
    secret_state,
)

IDENTITY = "spiffe://cluster.local/ns/payments/sa/api"
SERIAL = decode.serial_hex(LEAF)
UP_TO_DATE = "the certificate is up to date and has not expired"
BACKOFF = outcome.Backoff(base=timedelta(seconds=5), cap=timedelta(minutes=5))
LONG_AGO = "2029-12-31T23:00:00Z"
GENERATION = 3  # certificate_record's


def condition(
    type_: str, value: str, reason: str, message: str, since: str = status.timestamp(EARLY)
) -> status.Condition:
    return status.Condition(type_, value, reason, message, since, GENERATION)


def record_with(**fields: Any) -> state.CertificateRecord:
    """The readiness tests' Certificate, with its status parsed from ``fields``."""
    return dataclasses.replace(certificate_record(), status=status.CertificateStatus.parse(fields))


def ready_status(**changes: Any) -> status.CertificateStatus:
    """The status of the readiness tests' LEAF, up to date, as of EARLY."""
    return dataclasses.replace(
        status.CertificateStatus(
            conditions=(
                condition("Ready", "True", "Ready", UP_TO_DATE),
                condition("Issuing", "False", "Issued", "no issuance in progress"),
            ),
            identity=IDENTITY,
            serial_number=SERIAL,
            not_before=LEAF.not_valid_before_utc,
            not_after=NOT_AFTER,
            renewal_time=DUE,
            revision=1,
            issuer_fingerprint=CA.fingerprint_sha256,
        ),
        **changes,
    )


def issuance(*, replaced: bool, clamped: bool = False) -> outcome.Issuance:
    written = secret_state(certificate_record())
    return outcome.Issuance(
        secret=written,
        identity=IDENTITY,
        clamped=clamped,
        replaced=replaced,
        seconds=0.25,
        leaf=LEAF,
        signer_fingerprint=CA.fingerprint_sha256,
    )


def issued_message(why: str, suffix: str = "") -> str:
    return (
        f"issued serial {SERIAL} (revision 1), valid until {NOT_AFTER.isoformat()}: {why}{suffix}"
    )


def blocked(reason: str, message: str, **fields: Any) -> status.CertificateStatus:
    return dataclasses.replace(
        status.CertificateStatus.parse(fields),
        conditions=(
            condition("Ready", "False", reason, message),
            condition("Issuing", "False", reason, message),
        ),
    )


FAILED_BEFORE = {
    "conditions": [
        {
            "type": "Ready",
            "status": "False",
            "reason": "IssuerNotReady",
            "message": "x",
            "lastTransitionTime": LONG_AGO,
            "observedGeneration": GENERATION,
        }
    ],
    "failedIssuanceAttempts": 2,
    "lastFailureTime": LONG_AGO,
}
DENIAL = "DurationOutOfRange: duration 1h is outside what the issuer allows"
NO_ACCOUNT = 'ServiceAccount "api" does not exist in namespace "payments"'
NOT_READY_MESSAGE = 'ClusterIssuer "workloads" is not ready (CASecretMissing): gone'


@dataclasses.dataclass(frozen=True)
class Case:
    decision: readiness.Decision
    record: state.CertificateRecord = dataclasses.field(default_factory=certificate_record)
    secret: bool = True
    runtime: state.IssuerRuntime | None = RUNTIME
    issuance: outcome.Issuance | None = None


CASES = [
    pytest.param(
        Case(readiness.Decision("ready", "Ready", UP_TO_DATE, renewal_time=DUE)),
        outcome.Outcome(ready_status(), outcome.Wake(DUE, limited=True)),
        id="an up-to-date leaf is Ready with its facts and wakes at its renewal time, silently",
    ),
    pytest.param(
        Case(readiness.Decision("ready", "Ready", UP_TO_DATE, renewal_time=DUE), runtime=None),
        outcome.Outcome(ready_status(issuer_fingerprint=None), outcome.Wake(DUE, limited=True)),
        id="without an issuer the signing CA's fingerprint is unknown",
    ),
    pytest.param(
        Case(
            readiness.Decision("issue", "SecretMissing", 'Secret "api-tls" does not exist'),
            secret=False,
            issuance=issuance(replaced=False),
        ),
        outcome.Outcome(
            ready_status(),
            outcome.Wake(DUE, limited=True),
            events=(
                outcome.Event(
                    "Normal", "Issued", issued_message('Secret "api-tls" does not exist')
                ),
            ),
            logs=(
                outcome.LogLine(
                    logging.INFO, issued_message('Secret "api-tls" does not exist'), "SecretMissing"
                ),
            ),
            metrics=(outcome.Counted("success", 0.25),),
        ),
        id="a first issuance is Ready, says Issued, and counts a timed success",
    ),
    pytest.param(
        Case(
            readiness.Decision("issue", "RenewalDue", "the renewal time has passed"),
            issuance=issuance(replaced=True),
        ),
        outcome.Outcome(
            ready_status(),
            outcome.Wake(DUE, limited=True),
            events=(
                outcome.Event("Normal", "Renewed", issued_message("the renewal time has passed")),
            ),
            logs=(
                outcome.LogLine(
                    logging.INFO, issued_message("the renewal time has passed"), "RenewalDue"
                ),
            ),
            metrics=(outcome.Counted("success", 0.25),),
        ),
        id="a due renewal says Renewed",
    ),
    pytest.param(
        Case(
            readiness.Decision("issue", "Expired", "the certificate expired"),
            issuance=issuance(replaced=True, clamped=True),
        ),
        outcome.Outcome(
            ready_status(
                conditions=(
                    condition(
                        "Ready",
                        "True",
                        "Ready",
                        UP_TO_DATE + "; its lifetime was shortened to end with the issuing CA",
                    ),
                    condition("Issuing", "False", "Issued", "no issuance in progress"),
                )
            ),
            outcome.Wake(DUE, limited=True),
            events=(
                outcome.Event(
                    "Normal",
                    "Renewed",
                    issued_message(
                        "the certificate expired",
                        "; the lifetime was shortened to end with the issuing CA",
                    ),
                ),
            ),
            logs=(
                outcome.LogLine(
                    logging.INFO,
                    issued_message(
                        "the certificate expired",
                        "; the lifetime was shortened to end with the issuing CA",
                    ),
                    "Expired",
                ),
            ),
            metrics=(outcome.Counted("success", 0.25),),
        ),
        id="an expired leaf re-issued short of the CA's end says so in Ready and the Event",
    ),
    pytest.param(
        Case(
            readiness.Decision("issue", "SpecChanged", "the spec changed"),
            record=record_with(**FAILED_BEFORE),
            issuance=issuance(replaced=True),
        ),
        outcome.Outcome(
            ready_status(),
            outcome.Wake(DUE, limited=True),
            events=(outcome.Event("Normal", "Issued", issued_message("the spec changed")),),
            logs=(
                outcome.LogLine(logging.INFO, issued_message("the spec changed"), "SpecChanged"),
            ),
            metrics=(outcome.Counted("success", 0.25),),
        ),
        id="a spec change says Issued even over an old Secret, and clears earlier failures",
    ),
    pytest.param(
        Case(readiness.Decision("block", "PolicyViolation", DENIAL, "DurationOutOfRange")),
        outcome.Outcome(
            blocked("PolicyViolation", DENIAL),
            events=(outcome.Event("Warning", "Denied", DENIAL),),
            logs=(outcome.LogLine(logging.WARNING, DENIAL, "PolicyViolation"),),
            metrics=(outcome.Denied("DurationOutOfRange"), outcome.Counted("denied")),
        ),
        id="a first denial says Denied and counts the rule and a denied issuance",
    ),
    pytest.param(
        Case(
            readiness.Decision("block", "PolicyViolation", DENIAL, "DurationOutOfRange"),
            record=record_with(
                conditions=[
                    condition("Ready", "False", "PolicyViolation", DENIAL).to_json(),
                    condition("Issuing", "False", "PolicyViolation", DENIAL).to_json(),
                ]
            ),
        ),
        outcome.Outcome(blocked("PolicyViolation", DENIAL)),
        id="the same denial again changes nothing and counts nothing",
    ),
    pytest.param(
        Case(
            readiness.Decision("block", "IssuerNotFound", 'ClusterIssuer "workloads" is gone'),
            record=record_with(identity=IDENTITY, serialNumber=SERIAL, revision=4),
            runtime=None,
        ),
        outcome.Outcome(
            blocked(
                "IssuerNotFound",
                'ClusterIssuer "workloads" is gone',
                identity=IDENTITY,
                serialNumber=SERIAL,
                revision=4,
            ),
            events=(
                outcome.Event("Warning", "IssuerNotFound", 'ClusterIssuer "workloads" is gone'),
            ),
            logs=(
                outcome.LogLine(
                    logging.WARNING, 'ClusterIssuer "workloads" is gone', "IssuerNotFound"
                ),
            ),
        ),
        id="a missing issuer blocks and keeps the facts of the certificate still in place",
    ),
    pytest.param(
        Case(readiness.Decision("block", "IssuerNotReady", NOT_READY_MESSAGE), runtime=NOT_READY),
        outcome.Outcome(
            status.CertificateStatus(
                conditions=(
                    condition("Ready", "False", "IssuerNotReady", NOT_READY_MESSAGE),
                    condition("Issuing", "True", "IssuerNotReady", NOT_READY_MESSAGE),
                ),
                failed_issuance_attempts=1,
                last_failure_time=EARLY,
            ),
            outcome.Wake(EARLY + timedelta(seconds=5), limited=False),
            events=(outcome.Event("Warning", "Failed", NOT_READY_MESSAGE),),
            logs=(
                outcome.LogLine(
                    logging.WARNING,
                    f"issuance attempt 1 failed: {NOT_READY_MESSAGE}",
                    "IssuerNotReady",
                ),
            ),
            metrics=(outcome.Counted("failure"),),
        ),
        id="an issuer not ready is a failed attempt, retried after the first backoff",
    ),
    pytest.param(
        Case(readiness.Decision("block", "ServiceAccountNotFound", NO_ACCOUNT)),
        outcome.Outcome(
            status.CertificateStatus(
                conditions=(
                    condition("Ready", "False", "ServiceAccountNotFound", NO_ACCOUNT),
                    condition("Issuing", "True", "ServiceAccountNotFound", NO_ACCOUNT),
                ),
                failed_issuance_attempts=1,
                last_failure_time=EARLY,
            ),
            outcome.Wake(EARLY + timedelta(seconds=5), limited=False),
            events=(outcome.Event("Warning", "Failed", NO_ACCOUNT),),
            logs=(
                outcome.LogLine(
                    logging.WARNING,
                    f"issuance attempt 1 failed: {NO_ACCOUNT}",
                    "ServiceAccountNotFound",
                ),
            ),
            metrics=(outcome.Counted("failure"),),
        ),
        id="a missing ServiceAccount is a failed attempt too, retried after the backoff",
    ),
    pytest.param(
        Case(
            readiness.Decision("block", "IssuerNotReady", "invalid issuer spec", final=True),
        ),
        outcome.Outcome(
            blocked("IssuerNotReady", "invalid issuer spec"),
            events=(outcome.Event("Warning", "IssuerNotReady", "invalid issuer spec"),),
            logs=(outcome.LogLine(logging.WARNING, "invalid issuer spec", "IssuerNotReady"),),
        ),
        id="an issuer with an invalid spec blocks without retries: its edit wakes the certificate",
    ),
    pytest.param(
        Case(readiness.Decision("block", "InvalidSpec", "spec.duration: bad")),
        outcome.Outcome(
            blocked("InvalidSpec", "spec.duration: bad"),
            events=(outcome.Event("Warning", "InvalidSpec", "spec.duration: bad"),),
            logs=(outcome.LogLine(logging.WARNING, "spec.duration: bad", "InvalidSpec"),),
        ),
        id="an invalid spec blocks without retries: only an edit helps",
    ),
    pytest.param(
        Case(readiness.failure("issuance failed: boom"), record=record_with(**FAILED_BEFORE)),
        outcome.Outcome(
            status.CertificateStatus(
                conditions=(
                    condition("Ready", "False", "Failed", "issuance failed: boom", LONG_AGO),
                    condition("Issuing", "True", "Failed", "issuance failed: boom"),
                ),
                failed_issuance_attempts=3,
                last_failure_time=EARLY,
            ),
            outcome.Wake(EARLY + timedelta(seconds=20), limited=False),
            events=(outcome.Event("Warning", "Failed", "issuance failed: boom"),),
            logs=(
                outcome.LogLine(
                    logging.WARNING, "issuance attempt 3 failed: issuance failed: boom", "Failed"
                ),
            ),
            metrics=(outcome.Counted("failure"),),
        ),
        id="an error after two failures is the third, Ready keeps its transition time",
    ),
    pytest.param(
        Case(
            readiness.Decision("block", "IssuerNotReady", NOT_READY_MESSAGE),
            record=dataclasses.replace(record_with(**FAILED_BEFORE), generation=GENERATION + 1),
        ),
        outcome.Outcome(
            status.CertificateStatus(
                conditions=(
                    dataclasses.replace(
                        condition("Ready", "False", "IssuerNotReady", NOT_READY_MESSAGE, LONG_AGO),
                        observed_generation=GENERATION + 1,
                    ),
                    dataclasses.replace(
                        condition("Issuing", "True", "IssuerNotReady", NOT_READY_MESSAGE),
                        observed_generation=GENERATION + 1,
                    ),
                ),
                failed_issuance_attempts=1,
                last_failure_time=EARLY,
            ),
            outcome.Wake(EARLY + timedelta(seconds=5), limited=False),
            events=(outcome.Event("Warning", "Failed", NOT_READY_MESSAGE),),
            logs=(
                outcome.LogLine(
                    logging.WARNING,
                    f"issuance attempt 1 failed: {NOT_READY_MESSAGE}",
                    "IssuerNotReady",
                ),
            ),
            metrics=(outcome.Counted("failure"),),
        ),
        id="a spec change starts the failure count again",
    ),
]


@pytest.mark.parametrize(("case", "expected"), CASES)
def test_the_outcome_of_a_decision(case: Case, expected: outcome.Outcome) -> None:
    record = case.record
    secret: secret_format.SecretState | None = secret_state(record) if case.secret else None
    assert (
        outcome.of(
            record,
            case.decision,
            secret=secret,
            issuer=case.runtime,
            now=EARLY,
            issuance=case.issuance,
            backoff=BACKOFF,
        )
        == expected
    )


def test_an_issuance_names_the_ca_that_signed_it_without_reading_the_leaf() -> None:
    signed = dataclasses.replace(issuance(replaced=False), signer_fingerprint="ab" * 32)
    result = outcome.of(
        certificate_record(),
        readiness.Decision("issue", "SecretMissing", 'Secret "api-tls" does not exist'),
        secret=None,
        issuer=RUNTIME,
        now=EARLY,
        issuance=signed,
        backoff=BACKOFF,
    )
    assert result.status.issuer_fingerprint == "ab" * 32


def test_an_up_to_date_leaf_is_reported_from_the_leaf_whatever_the_decision_computed() -> None:
    """Without the decision's renewal time the leaf's own is used: the same moment."""
    decision = readiness.Decision("ready", "Ready", UP_TO_DATE)
    record = certificate_record()
    assert outcome.of(
        record, decision, secret=secret_state(record), issuer=RUNTIME, now=EARLY
    ) == outcome.Outcome(ready_status(), outcome.Wake(DUE, limited=True))


ISSUE = readiness.Decision("issue", "SecretMissing", "x")
RENEW = readiness.Decision("issue", "RenewalDue", "x")
RETRY = readiness.Decision("block", "IssuerNotReady", "x")
READY = readiness.Decision("ready", "Ready", UP_TO_DATE)
LATER = EARLY + timedelta(minutes=1)


@pytest.mark.parametrize(
    ("decision", "admitted", "retry_at", "expected"),
    [
        pytest.param(RENEW, False, None, outcome.Wake(EARLY, limited=True), id=(
            "a due renewal the rate bound did not admit waits for a token"
        )),
        pytest.param(
            readiness.Decision("issue", "IssuerCAChanged", "x"), False, None,
            outcome.Wake(EARLY, limited=True), id="a new CA's re-issue waits for a token",
        ),
        pytest.param(RENEW, True, None, None, id="an admitted renewal is signed now"),
        pytest.param(
            ISSUE, False, None, None, id="a missing Secret is issued at once, without a token"
        ),
        pytest.param(
            readiness.Decision("issue", "SpecChanged", "x"), False, None, None,
            id="a spec change is issued at once, without a token",
        ),
        pytest.param(
            ISSUE, False, LATER, outcome.Wake(LATER, limited=False),
            id="an issuance during a failure backoff waits for its end",
        ),
        pytest.param(
            RETRY, True, LATER, outcome.Wake(LATER, limited=False),
            id="a retry during the backoff waits for its end",
        ),
        pytest.param(ISSUE, False, EARLY, None, id="an issuance at the end of the backoff acts"),
        pytest.param(READY, False, LATER, None, id="an up-to-date certificate ignores a backoff"),
        pytest.param(
            readiness.Decision("block", "PolicyViolation", "x", "DurationOutOfRange"),
            False, LATER, None, id="a denial is reported during a backoff",
        ),
    ],
)  # fmt: skip
def test_when_the_reconciler_acts(
    decision: readiness.Decision,
    admitted: bool,
    retry_at: datetime | None,
    expected: outcome.Wake | None,
) -> None:
    assert outcome.pace(decision, admitted=admitted, retry_at=retry_at, now=EARLY) == expected


@pytest.mark.parametrize(
    ("fields", "generation", "expected"),
    [
        pytest.param({}, GENERATION, None, id="no failures, no backoff"),
        pytest.param(
            FAILED_BEFORE,
            GENERATION,
            datetime.fromisoformat("2029-12-31T23:00:11+00:00"),
            id="two failures wait 10 s from the end of the last failure's second",
        ),
        pytest.param(
            FAILED_BEFORE, GENERATION + 1, None, id="a spec change since the failures ends it"
        ),
        pytest.param(
            {**FAILED_BEFORE, "lastFailureTime": "not a time"},
            GENERATION,
            None,
            id="an unreadable failure time does not hold the certificate back",
        ),
    ],
)
def test_the_failure_backoff_comes_from_the_status(
    fields: dict[str, Any], generation: int, expected: datetime | None
) -> None:
    record = dataclasses.replace(record_with(**fields), generation=generation)
    assert outcome.backoff_until(record, BACKOFF) == expected
