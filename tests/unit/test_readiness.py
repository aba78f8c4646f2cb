"""The pure decision chain: what happens to a Certificate, given what the store holds.

Records are built by hand around real certificates issued by the PKI core at a fixed
moment, and ``now`` is passed in; every case asserts the whole `readiness.Decision`.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certmint.api import certificate_types, fields, issuer_types, resources
from certmint.core import issuance, readiness, secret_format, state, status
from certmint.pki import building, decode, issuing, keys, renewal
from certmint.pki import ca as pki_ca

T0 = datetime(2030, 1, 1, tzinfo=UTC)
ECDSA = keys.KeySpec(keys.KeyAlgorithm.ECDSA, 256)
NAMESPACE, NAME = "payments", "api"
CA = pki_ca.generate_root_ca("workloads root", timedelta(days=30), ECDSA, T0 - timedelta(days=1))
OTHER_CA = pki_ca.generate_root_ca("other root", timedelta(days=30), ECDSA, T0 - timedelta(days=1))
BUNDLE_PEM = decode.certificates_to_pem((CA.certificate,))
SPEC: dict[str, Any] = {
    "secretName": "api-tls",
    "issuerRef": {"name": "workloads", "kind": "ClusterIssuer"},
    "serviceAccountName": "api",
    "duration": "1h",
    "renewBefore": "20m",
}
ISSUER_BODY: dict[str, Any] = {
    "kind": "ClusterIssuer",
    "metadata": {"name": "workloads"},
    "spec": {"ca": {"secretName": "workloads-ca"}, "trustDomain": "cluster.local"},
}


def issuer_spec(**spec: Any) -> issuer_types.IssuerSpec:
    return issuer_types.IssuerSpec.from_body(
        {**ISSUER_BODY, "spec": {**ISSUER_BODY["spec"], **spec}}
    )


def certificate_spec(**changes: Any) -> certificate_types.CertificateSpec:
    return certificate_types.CertificateSpec.from_body(
        {"metadata": {"namespace": NAMESPACE, "name": NAME}, "spec": {**SPEC, **changes}}
    )


def leaf_from(signer: pki_ca.CertificateAuthority) -> tuple[x509.Certificate, keys.PrivateKey]:
    key = keys.generate_private_key(ECDSA)
    request = issuance.leaf_request(
        certificate_spec(), issuer_spec(), NAMESPACE, key.public_key(), timedelta(hours=1)
    )
    return issuing.issue(request, signer, T0).certificate, key


LEAF, _ = leaf_from(CA)
FOREIGN_LEAF, _ = leaf_from(OTHER_CA)


def leaf_valid_from(not_before: datetime) -> x509.Certificate:
    """A leaf of CA whose validity starts at ``not_before`` (issued a backdate later)."""
    key = keys.generate_private_key(ECDSA)
    request = issuance.leaf_request(
        certificate_spec(), issuer_spec(), NAMESPACE, key.public_key(), timedelta(hours=1)
    )
    leaf = issuing.issue(request, CA, not_before + building.NOT_BEFORE_BACKDATE).certificate
    assert leaf.not_valid_before_utc == not_before
    return leaf


NOT_AFTER = LEAF.not_valid_after_utc


def due_of(leaf: x509.Certificate) -> datetime:
    """When ``leaf`` is due, computed here from the documented seed, not by the code under test."""
    return renewal.renewal_time(
        leaf.not_valid_before_utc,
        leaf.not_valid_after_utc,
        renew_before=timedelta(minutes=20),
        jitter_seed=f"{NAMESPACE}/{NAME}/{decode.serial_hex(leaf)}",
    )


DUE = due_of(LEAF)
SKEWED_LEAF = leaf_valid_from(T0 + timedelta(minutes=10, seconds=30))


def ready(due: datetime = DUE) -> readiness.Decision:
    """Nothing to do; the decision carries the leaf's renewal time for the status."""
    return readiness.Decision(
        "ready", "Ready", "the certificate is up to date and has not expired", renewal_time=due
    )


EARLY = T0 + timedelta(minutes=10)
RUNTIME = state.IssuerRuntime(
    ready=True,
    reason="CAReady",
    message="signing with CA CN=workloads root",
    signer=CA,
    bundle=(CA.certificate,),
    bundle_pem=BUNDLE_PEM,
)
NOT_READY = state.IssuerRuntime(
    ready=False,
    reason="CASecretMissing",
    message='CA Secret "certmint-system/workloads-ca" is gone',
)
SELF_SIGNED = state.IssuerRuntime(
    ready=True, reason="SelfSigned", message="certificates are signed by their own private keys"
)


def certificate_record(
    *, spec_changes: dict[str, Any] | None = None, renew_request: str = "", generation: int = 3
) -> state.CertificateRecord:
    raw = {**SPEC, **(spec_changes or {})}
    spec: certificate_types.CertificateSpec | None = None
    error: fields.SpecError | None = None
    try:
        spec = certificate_spec(**(spec_changes or {}))
    except fields.SpecError as err:
        error = err
    return state.CertificateRecord(
        namespace=NAMESPACE,
        name=NAME,
        uid="uid-api",
        generation=generation,
        spec=spec,
        spec_error=error,
        spec_hash=secret_format.spec_hash(raw),
        renew_request=renew_request,
        status=status.CertificateStatus(),
        issuer_key=state.issuer_key_for(NAMESPACE, spec.issuer_ref) if spec else None,
    )


def issuer_record(runtime: state.IssuerRuntime = RUNTIME, **spec: Any) -> state.IssuerRecord:
    parsed: issuer_types.IssuerSpec | None = None
    error: fields.SpecError | None = None
    try:
        parsed = issuer_spec(**spec)
    except fields.SpecError as err:
        error = err
    return state.IssuerRecord(
        kind="ClusterIssuer",
        namespace="",
        name="workloads",
        uid="uid-workloads",
        generation=1,
        spec=parsed,
        spec_error=error,
        status={},
        runtime=runtime,
    )


def secret_state(record: state.CertificateRecord, **changes: Any) -> secret_format.SecretState:
    """The Secret as the last issuance for ``record`` left it, with some fields replaced."""
    issued = secret_format.SecretState(
        namespace=NAMESPACE,
        name="api-tls",
        uid="uid-secret",
        resource_version="7",
        owner=NAME,
        annotations={
            resources.ANNOTATION_SPEC_HASH: record.spec_hash,
            resources.ANNOTATION_REVISION: "1",
        },
        leaf_der=LEAF.public_bytes(serialization.Encoding.DER),
        key_matches=True,
        bundle_digest=secret_format.bundle_digest(BUNDLE_PEM),
    )
    if "leaf" in changes:  # the tables name the parsed leaf; the summary holds its DER
        leaf = changes.pop("leaf")
        changes["leaf_der"] = (
            None if leaf is None else leaf.public_bytes(serialization.Encoding.DER)
        )
    return dataclasses.replace(issued, **changes)


@dataclasses.dataclass(frozen=True)
class Situation:
    """How the world differs from "issued, up to date, everything present"."""

    spec_changes: dict[str, Any] | None = None
    issued_with: dict[str, Any] | None = None  # spec of the last issuance, when it differed
    renew_request: str = ""
    satisfied_request: str = ""
    issuer: str = "ready"  # ready, missing, invalid, not ready, self-signed
    issuer_spec: dict[str, Any] | None = None
    secret: dict[str, Any] | None = None  # SecretState fields to replace
    secret_missing: bool = False
    service_account: bool = True

    def inputs(self) -> readiness.Inputs:
        record = certificate_record(
            spec_changes=self.spec_changes, renew_request=self.renew_request
        )
        issued_for = certificate_record(
            spec_changes=self.spec_changes if self.issued_with is None else self.issued_with
        )
        secret = None
        if not self.secret_missing:
            secret = secret_state(issued_for, **(self.secret or {}))
            if self.satisfied_request:
                annotations = {
                    **secret.annotations,
                    resources.ANNOTATION_RENEW_REQUEST: self.satisfied_request,
                }
                secret = dataclasses.replace(secret, annotations=annotations)
        return readiness.Inputs(
            certificate=record,
            issuer=self.issuer_record(),
            secret=secret,
            service_account_exists=self.service_account,
        )

    def issuer_record(self) -> state.IssuerRecord | None:
        if self.issuer == "missing":
            return None
        if self.issuer == "invalid":
            return issuer_record(policy={"minDuration": "soon"})
        if self.issuer == "not ready":
            return issuer_record(NOT_READY)
        if self.issuer == "self-signed":
            record = issuer_record(SELF_SIGNED)
            return dataclasses.replace(record, spec=issuer_spec(ca=None, selfSigned={}))
        return issuer_record(**(self.issuer_spec or {}))


def block(reason: str, message: str, denial: str = "") -> readiness.Decision:
    return readiness.Decision("block", reason, message, denial)


def issue(reason: str, message: str) -> readiness.Decision:
    return readiness.Decision("issue", reason, message)


RENEWAL_DUE = f"the renewal time {DUE.isoformat()} has passed"
NOT_READY_MESSAGE = (
    'ClusterIssuer "workloads" is not ready (CASecretMissing): '
    'CA Secret "certmint-system/workloads-ca" is gone'
)
NO_ACCOUNT_MESSAGE = (
    'ServiceAccount "api" does not exist in namespace "payments"; '
    "create it or fix spec.serviceAccountName"
)
try:
    certificate_spec(duration="soon")
except fields.SpecError as bad_duration:
    BAD_DURATION = str(bad_duration)
try:
    issuer_spec(policy={"minDuration": "soon"})
except fields.SpecError as bad_policy:
    BAD_POLICY = str(bad_policy)

CASES = [
    # -- nothing to do
    pytest.param(
        Situation(), EARLY, ready(), id="an issued certificate early in its life is ready"
    ),
    pytest.param(
        Situation(secret={"leaf": SKEWED_LEAF}),
        EARLY,
        ready(due_of(SKEWED_LEAF)),
        id="a leaf valid within the clock-skew allowance is ready",
    ),
    pytest.param(
        Situation(secret={"leaf": leaf_valid_from(EARLY + timedelta(seconds=31))}),
        EARLY,
        issue(
            "NotYetValid",
            f"the certificate is only valid from {(EARLY + timedelta(seconds=31)).isoformat()}",
        ),
        id="a leaf not valid yet beyond the allowance is never ready: it is re-issued",
    ),
    pytest.param(
        Situation(), DUE - timedelta(seconds=1), ready(), id="one second before renewal is ready"
    ),
    pytest.param(
        Situation(renew_request="2030-01-01T00:05:00Z", satisfied_request="2030-01-01T00:05:00Z"),
        EARLY,
        ready(),
        id="a renew request the Secret already answers issues nothing",
    ),
    pytest.param(
        Situation(issuer="not ready"),
        EARLY,
        ready(),
        id="an issuer that is not ready does not matter while nothing is needed",
    ),
    pytest.param(
        Situation(service_account=False),
        EARLY,
        ready(),
        id="a missing ServiceAccount does not matter while nothing is needed",
    ),
    pytest.param(
        Situation(issuer="self-signed"),
        EARLY,
        ready(),
        id="a self-signed issuer never asks for another CA or trust bundle",
    ),
    pytest.param(
        Situation(secret={"bundle_digest": "stale"}),
        EARLY,
        readiness.Decision("update-bundle", "TrustBundleChanged", "ca.crt is out of date"),
        id="a stale ca.crt is rewritten without re-issuing",
    ),
    # -- blockers, whatever else is true
    pytest.param(
        Situation(spec_changes={"duration": "soon"}, secret_missing=True),
        EARLY,
        block("InvalidSpec", BAD_DURATION),
        id="an invalid spec blocks with the parse error",
    ),
    pytest.param(
        Situation(issuer="missing"),
        EARLY,
        block("IssuerNotFound", 'ClusterIssuer "workloads" does not exist'),
        id="a missing ClusterIssuer blocks",
    ),
    pytest.param(
        Situation(spec_changes={"issuerRef": {"name": "workloads"}}, issuer="missing"),
        EARLY,
        block("IssuerNotFound", 'Issuer "workloads" does not exist in namespace "payments"'),
        id="a missing Issuer blocks and names the namespace it was looked for in",
    ),
    pytest.param(
        Situation(issuer="invalid"),
        EARLY,
        readiness.Decision(
            "block",
            "IssuerNotReady",
            f'ClusterIssuer "workloads" has an invalid spec: {BAD_POLICY}',
            final=True,
        ),
        id="an issuer with an invalid spec blocks until it is edited, without retries",
    ),
    pytest.param(
        Situation(issuer_spec={"policy": {"minDuration": "2h"}}, secret_missing=True),
        EARLY,
        block(
            "PolicyViolation",
            'DurationOutOfRange: duration 1h is outside what ClusterIssuer "workloads" '
            "allows: 2h to 168h; set spec.duration within that range",
            "DurationOutOfRange",
        ),
        id="a policy denial wins over a missing Secret",
    ),
    pytest.param(
        Situation(secret={"owner": "billing"}),
        NOT_AFTER,
        block(
            "SecretConflict",
            'Secret "api-tls" already exists and belongs to Certificate "billing"; certmint '
            "never overwrites it. Choose another spec.secretName or delete that Secret.",
        ),
        id="a Secret of another Certificate is never taken over, even when expired",
    ),
    pytest.param(
        Situation(secret={"owner": None}),
        EARLY,
        block(
            "SecretConflict",
            'Secret "api-tls" already exists and belongs to no certmint Certificate; certmint '
            "never overwrites it. Choose another spec.secretName or delete that Secret.",
        ),
        id="a Secret certmint did not make is never taken over",
    ),
    # -- triggers, in order
    pytest.param(
        Situation(secret_missing=True),
        EARLY,
        issue("SecretMissing", 'Secret "api-tls" does not exist'),
        id="a missing Secret is issued",
    ),
    pytest.param(
        Situation(secret={"leaf": None, "key_matches": False}),
        EARLY,
        issue("SecretInvalid", 'Secret "api-tls" holds no valid certificate'),
        id="a Secret without a readable certificate is re-issued",
    ),
    pytest.param(
        Situation(secret={"key_matches": False}),
        DUE,
        issue("KeyMismatch", "tls.key does not match the certificate in tls.crt"),
        id="a key that does not match wins over a due renewal",
    ),
    pytest.param(
        Situation(spec_changes={"dnsNames": ["api.payments.svc"]}, issued_with={}),
        NOT_AFTER,
        issue("SpecChanged", "the spec changed (generation 3) since the last issuance"),
        id="a changed spec wins over expiry",
    ),
    pytest.param(
        Situation(renew_request="2030-01-01T00:05:00Z", satisfied_request="2030-01-01T00:01:00Z"),
        EARLY,
        issue("RenewRequested", "a re-issue was requested at 2030-01-01T00:05:00Z"),
        id="a new renew request re-issues",
    ),
    pytest.param(
        Situation(renew_request="2030-01-01T00:05:00Z"),
        EARLY,
        issue("RenewRequested", "a re-issue was requested at 2030-01-01T00:05:00Z"),
        id="a first renew request re-issues",
    ),
    pytest.param(
        Situation(secret={"leaf": FOREIGN_LEAF}),
        EARLY,
        issue(
            "IssuerCAChanged",
            "the certificate was not signed by the issuer's current CA "
            f"({CA.fingerprint_sha256[:16]})",
        ),
        id="a certificate from another CA is re-issued",
    ),
    pytest.param(
        Situation(),
        NOT_AFTER,
        issue("Expired", f"the certificate expired at {NOT_AFTER.isoformat()}"),
        id="an expired certificate is re-issued as expired",
    ),
    pytest.param(
        Situation(),
        DUE,
        issue("RenewalDue", RENEWAL_DUE),
        id="a certificate is renewed at its renewal time to the second",
    ),
    # -- blockers that only matter when something must be signed
    pytest.param(
        Situation(issuer="not ready"),
        DUE,
        block("IssuerNotReady", f"{NOT_READY_MESSAGE} (needed: {RENEWAL_DUE})"),
        id="a due renewal waits for a ready issuer and says what it needs",
    ),
    pytest.param(
        Situation(service_account=False, secret_missing=True),
        EARLY,
        block(
            "ServiceAccountNotFound",
            f'{NO_ACCOUNT_MESSAGE} (needed: Secret "api-tls" does not exist)',
        ),
        id="a first issuance waits for its ServiceAccount",
    ),
    pytest.param(
        Situation(issuer="not ready", service_account=False, secret_missing=True),
        EARLY,
        block("IssuerNotReady", f'{NOT_READY_MESSAGE} (needed: Secret "api-tls" does not exist)'),
        id="an issuer that is not ready is reported before a missing ServiceAccount",
    ),
]


@pytest.mark.parametrize(("situation", "now", "expected"), CASES)
def test_decide(situation: Situation, now: datetime, expected: readiness.Decision) -> None:
    assert readiness.decide(situation.inputs(), now) == expected


@pytest.mark.parametrize(
    ("timing", "window"),
    [
        pytest.param(
            {"renewBefore": "20m"}, timedelta(minutes=20), id="renewBefore sets the window"
        ),
        pytest.param(
            {"renewBeforePercentage": 50},
            (NOT_AFTER - LEAF.not_valid_before_utc) / 2,
            id="renewBeforePercentage sets the window as a share of the lifetime",
        ),
        pytest.param(
            {},
            (NOT_AFTER - LEAF.not_valid_before_utc) / 3,
            id="without either the window is a third of the lifetime",
        ),
    ],
)
def test_the_renewal_time_comes_from_the_spec_and_a_per_certificate_seed(
    timing: dict[str, Any], window: timedelta
) -> None:
    raw = {key: value for key, value in SPEC.items() if key != "renewBefore"} | timing
    spec = certificate_types.CertificateSpec.from_body({"spec": raw})
    record = dataclasses.replace(certificate_record(), spec=spec)

    due = readiness.renewal_time(record, LEAF)

    assert due == renewal.renewal_time(
        LEAF.not_valid_before_utc,
        NOT_AFTER,
        renew_before=spec.renew_before,
        renew_before_percentage=spec.renew_before_percentage,
        jitter_seed=f"payments/api/{decode.serial_hex(LEAF)}",
    )
    assert NOT_AFTER - window * 1.1 - timedelta(seconds=1) <= due <= NOT_AFTER - window
