"""Pod certificates: the request checks, the decision chain, lifetimes and refresh times."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import NameOID

from certmint.api import fields, issuer_types
from certmint.api import pod_certificates as api
from certmint.core import pod_certificate_requests as requests
from certmint.core import pod_certificates as decisions
from certmint.core import state
from certmint.pki import ca as pki_ca
from certmint.pki import claims, decode, issuing, keys

POD_UID = "8c6e5ab4-51a9-4f39-a4a4-3f9b0c2e2d10"
NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
ISSUER = 'ClusterIssuer "pods"'


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def csr(key: Any, subject: x509.Name | None = None) -> bytes:
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject or x509.Name([]))
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.DER)


def proof(key: Any, data: bytes = POD_UID.encode()) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return bytes(key.sign(data))
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return bytes(key.sign(data, ec.ECDSA(hashes.SHA256())))
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    return bytes(key.sign(data, pss, hashes.SHA256()))


def spki(key: Any) -> bytes:
    return bytes(
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


P256 = ec.generate_private_key(ec.SECP256R1())
P521 = ec.generate_private_key(ec.SECP521R1())
ED = ed25519.Ed25519PrivateKey.generate()
RSA3072 = rsa.generate_private_key(public_exponent=65537, key_size=3072)
OTHER = ec.generate_private_key(ec.SECP256R1())


def body(namespace: str = "web", **spec: Any) -> dict[str, Any]:
    """A PodCertificateRequest as the API returns it; stub PKCS#10 of P256 by default."""
    fields = {
        "signerName": "certmint.io/pods",
        "podName": "api-0",
        "podUID": POD_UID,
        "serviceAccountName": "api",
        "serviceAccountUID": "sa-uid",
        "nodeName": "node-a",
        "nodeUID": "node-uid",
        "maxExpirationSeconds": 86400,
        "stubPKCS10Request": b64(csr(P256)),
        **spec,
    }
    return {
        "metadata": {
            "namespace": namespace,
            "name": "api-0-x1",
            "uid": "pcr-uid",
            "resourceVersion": "7",
        },
        "spec": {key: value for key, value in fields.items() if value is not None},
    }


def request(namespace: str = "web", **spec: Any) -> requests.PodCertificateRequest:
    return requests.PodCertificateRequest.from_body(body(namespace, **spec))


def issuer(
    kind: str = "ClusterIssuer",
    name: str = "pods",
    namespace: str = "",
    *,
    ready: bool = True,
    pod_certificates: dict[str, Any] | None = None,
    policy: dict[str, Any] | None = None,
) -> state.IssuerRecord:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    spec = issuer_types.IssuerSpec.from_body(
        {
            "kind": kind,
            "metadata": metadata,
            "spec": {
                "ca": {"secretName": "ca"},
                "trustDomain": "test.example",
                "policy": policy or {"claims": [{"key": "role", "values": ["reader"]}]},
                "podCertificates": {"signerName": "certmint.io/pods", **(pod_certificates or {})},
            },
        }
    )
    runtime = state.IssuerRuntime(ready=ready, reason="CAReady", message="the CA is ready")
    if not ready:
        runtime = state.IssuerRuntime(False, "CASecretMissing", 'Secret "ca" does not exist')
    return state.IssuerRecord(kind, namespace, name, "uid", 1, spec, None, {}, runtime=runtime)


def outcome(plan: decisions.Plan) -> tuple[str, str, str]:
    return (plan.action, plan.reason, plan.message)


# -- the request form and its proof ---------------------------------------------------
FORMS = [
    pytest.param({}, None, id="a stub PKCS#10 request of a P-256 key is accepted"),
    pytest.param({"stubPKCS10Request": b64(csr(ED))}, None, id="a stub PKCS#10 request of Ed25519"),
    pytest.param(
        {
            "stubPKCS10Request": None,
            "pkixPublicKey": b64(spki(RSA3072)),
            "proofOfPossession": b64(proof(RSA3072)),
        },
        None,
        id="the deprecated form with an RSA-PSS proof over the pod UID",
    ),
    pytest.param(
        {
            "stubPKCS10Request": None,
            "pkixPublicKey": b64(spki(ED)),
            "proofOfPossession": b64(proof(ED)),
        },
        None,
        id="the deprecated form with an Ed25519 proof",
    ),
    pytest.param(
        {"pkixPublicKey": b64(spki(P256)), "proofOfPossession": b64(proof(P256))},
        (
            "MalformedRequest",
            "exactly one of stubPKCS10Request or (pkixPublicKey and proofOfPossession) must be set",
        ),
        id="both forms at once are refused",
    ),
    pytest.param(
        {"stubPKCS10Request": None, "pkixPublicKey": b64(spki(P256))},
        (
            "MalformedRequest",
            "exactly one of stubPKCS10Request or (pkixPublicKey and proofOfPossession) must be set",
        ),
        id="a public key without its proof is refused",
    ),
    pytest.param(
        {
            "stubPKCS10Request": None,
            "pkixPublicKey": b64(spki(P256)),
            "proofOfPossession": b64(proof(OTHER)),
        },
        (
            "InvalidProofOfPossession",
            "proofOfPossession is not the key's signature over the pod UID",
        ),
        id="a proof made with another key is refused",
    ),
    pytest.param(
        {
            "stubPKCS10Request": None,
            "pkixPublicKey": b64(spki(P256)),
            "proofOfPossession": b64(proof(P256, b"another-pod")),
        },
        (
            "InvalidProofOfPossession",
            "proofOfPossession is not the key's signature over the pod UID",
        ),
        id="a proof over another pod's UID is refused",
    ),
    pytest.param(
        {
            "stubPKCS10Request": b64(
                csr(P256, x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "admin")]))
            )
        },
        (
            "MalformedRequest",
            "stubPKCS10Request must be empty (no subject, extension or attribute): "
            "the certificate's "
            "names come from the pod, never from the request",
        ),
        id="a PKCS#10 request that asks for a name is refused",
    ),
    pytest.param(
        {"stubPKCS10Request": b64(b"\x30\x03\x02\x01\x00")},
        ("MalformedRequest", "stubPKCS10Request is not a PKCS#10 request"),
        id="bytes that are no PKCS#10 request are refused",
    ),
    pytest.param(
        {"stubPKCS10Request": b64(csr(P521))},
        ("UnsupportedKeyType", "the key is ECDSA P-521, which certmint cannot certify"),
        id="a P-521 key is refused as unsupported",
    ),
]


@pytest.mark.parametrize(("spec", "refused"), FORMS)
def test_the_request_form_and_key_are_checked_again(
    spec: dict[str, Any], refused: tuple[str, str] | None
) -> None:
    if refused is None:
        assert requests.public_key(request(**spec)) is not None
        return
    with pytest.raises(requests.RequestError) as caught:
        requests.public_key(request(**spec))
    assert (caught.value.reason, caught.value.message) == refused


def test_a_request_reports_its_terminal_condition() -> None:
    answered = body()
    answered["status"] = {"conditions": [{"type": "Denied", "status": "True"}]}
    assert requests.PodCertificateRequest.from_body(answered).answered == "Denied"
    assert request().answered == ""


# -- the decision chain ---------------------------------------------------------------
CLAIMS = decisions.CLAIMS_ANNOTATION
DECISIONS = [
    pytest.param(
        request(),
        [issuer()],
        ("issue", "Issued", f"signed by {ISSUER}"),
        id="a request for a ready issuer's signer is issued",
    ),
    pytest.param(
        request(),
        [],
        ("ignore", "NotOurs", "answered already, or not certmint's signer"),
        id="a request for a signer no issuer claims is left alone",
    ),
    pytest.param(
        request(),
        [issuer(), issuer("Issuer", "pods", "web")],
        (
            "fail",
            "SignerNameConflict",
            'signer certmint.io/pods is claimed by ClusterIssuer "pods", Issuer "web/pods"; '
            "certmint signs for a signer name only when exactly one issuer claims it",
        ),
        id="a signer name claimed twice fails the request",
    ),
    pytest.param(
        request("shop"),
        [issuer("Issuer", "pods", "web")],
        ("deny", "NamespaceNotAllowed", 'Issuer "web/pods" signs only for pods in namespace web'),
        id="a namespaced Issuer never signs for another namespace",
    ),
    pytest.param(
        request(),
        [issuer(ready=False)],
        ("wait", "IssuerNotReady", 'Secret "ca" does not exist'),
        id="a request waits while its issuer is not ready",
    ),
    pytest.param(
        request(stubPKCS10Request=b64(csr(ED))),
        [issuer(pod_certificates={"keyTypes": ["ECDSAP256"]})],
        (
            "deny",
            "UnsupportedKeyType",
            f"key type ED25519 is not accepted by {ISSUER}; use one of ECDSAP256",
        ),
        id="a key type the issuer does not accept is denied",
    ),
    pytest.param(
        request(unverifiedUserAnnotations={CLAIMS: json.dumps({"role": ["reader"]})}),
        [issuer()],
        ("issue", "Issued", f"signed by {ISSUER}"),
        id="a granted claim is issued",
    ),
    pytest.param(
        request(unverifiedUserAnnotations={CLAIMS: json.dumps({"role": ["admin"]})}),
        [issuer()],
        (
            "deny",
            "ClaimNotAllowed",
            'claim role="admin" is not granted to namespace "web" by ClusterIssuer "pods"; '
            'values of role granted here: "reader"',
        ),
        id="a claim value the policy does not grant is denied",
    ),
    pytest.param(
        request(unverifiedUserAnnotations={CLAIMS: "role=reader"}),
        [issuer()],
        (
            "deny",
            "InvalidClaims",
            f'unverifiedUserAnnotations["{CLAIMS}"] must be a JSON object of claim key to values, '
            'e.g. {"role": ["reader"]}',
        ),
        id="claims that are not JSON are denied",
    ),
    pytest.param(
        request(),
        [issuer(policy={"allowedNamespaces": ["shop"]})],
        (
            "deny",
            "NamespaceNotAllowed",
            'namespace "web" may not use ClusterIssuer "pods"; its policy allows namespaces '
            "matching shop",
        ),
        id="a namespace the policy does not serve is denied",
    ),
    pytest.param(
        request(maxExpirationSeconds=3600),
        [issuer(policy={"minDuration": "2h"})],
        (
            "deny",
            "DurationOutOfRange",
            'duration 1h is outside what ClusterIssuer "pods" allows: 2h to 168h; '
            "set spec.duration within that range",
        ),
        id="a maxExpirationSeconds below the policy minimum is denied",
    ),
]


@pytest.mark.parametrize(("pcr", "issuers", "expected"), DECISIONS)
def test_decide(
    pcr: requests.PodCertificateRequest,
    issuers: list[state.IssuerRecord],
    expected: tuple[str, str, str],
) -> None:
    assert outcome(decisions.decide(pcr, issuers)) == expected


def test_an_answered_request_is_left_alone() -> None:
    answered = dataclasses.replace(request(), answered="Issued")
    assert decisions.decide(answered, [issuer()]).action == "ignore"


def test_claimants_are_the_issuers_naming_the_signer() -> None:
    other = issuer(name="other", pod_certificates={"signerName": "certmint.io/other"})
    assert decisions.claimants("certmint.io/pods", [issuer(), other]) == [issuer()]


# -- lifetimes ------------------------------------------------------------------------
LIFETIMES = [
    pytest.param(
        86400, {}, {}, timedelta(hours=24), id="the policy default when the request allows it"
    ),
    pytest.param(3600, {}, {}, timedelta(hours=1), id="never past maxExpirationSeconds"),
    pytest.param(
        86400, {"duration": "2h"}, {}, timedelta(hours=2), id="podCertificates.duration first"
    ),
    pytest.param(
        86400,
        {},
        {"maxDuration": "6h", "defaultDuration": "6h"},
        timedelta(hours=6),
        id="never past the policy's maxDuration",
    ),
]


@pytest.mark.parametrize(("max_seconds", "signing", "policy", "expected"), LIFETIMES)
def test_lifetime(
    max_seconds: int, signing: dict[str, Any], policy: dict[str, Any], expected: timedelta
) -> None:
    record = issuer(pod_certificates=signing, policy=policy)
    assert record.spec is not None
    assert decisions.lifetime(request(maxExpirationSeconds=max_seconds), record.spec) == expected


def test_the_certificate_lives_exactly_the_allowed_lifetime_and_carries_the_claims() -> None:
    root = pki_ca.generate_root_ca(
        "pods root", timedelta(days=30), keys.KeySpec(), NOW - timedelta(days=1)
    )
    pcr = request(
        maxExpirationSeconds=3600,
        unverifiedUserAnnotations={CLAIMS: json.dumps({"role": "reader"})},
    )
    plan = decisions.decide(pcr, [issuer()])
    leaf = decisions.leaf_request(plan, pcr.namespace, claims.CLAIMS_OID)
    issued = issuing.issue(leaf, root, NOW)
    certificate = issued.certificate
    assert certificate.not_valid_after_utc - certificate.not_valid_before_utc == timedelta(hours=1)
    assert decode.spiffe_uris(certificate) == ["spiffe://test.example/ns/web/sa/api"]
    extension = certificate.extensions.get_extension_for_oid(claims.CLAIMS_OID)
    assert claims.decode_claims(extension.value.value) == {"role": ("reader",)}
    assert decisions.issued_problem(issued) is None


# -- refresh times --------------------------------------------------------------------
def test_refresh_is_a_renewal_time_within_the_api_servers_bounds() -> None:
    not_before, not_after = NOW, NOW + timedelta(hours=24)
    moment = decisions.begin_refresh_at(not_before, not_after, "web/1a")
    window = timedelta(hours=8)
    assert not_after - window - window / 10 <= moment <= not_after - window
    short = decisions.begin_refresh_at(NOW, NOW + timedelta(minutes=20), "web/1a")
    assert short == NOW + timedelta(minutes=10)


def test_refresh_slots_hold_the_rate_bound() -> None:
    slots = decisions.RefreshSlots(rate=2)
    moment = NOW + timedelta(hours=16)
    earliest, latest = NOW + timedelta(minutes=10), NOW + timedelta(hours=23)
    given = [slots.reserve(moment, earliest, latest) for _ in range(5)]
    assert given == [
        moment,
        moment,
        moment - timedelta(seconds=1),
        moment - timedelta(seconds=1),
        moment - timedelta(seconds=2),
    ]


def test_refresh_slots_move_later_at_the_earliest_bound() -> None:
    slots = decisions.RefreshSlots(rate=1)
    earliest = NOW
    moment = NOW + timedelta(seconds=1)
    given = [slots.reserve(moment, earliest, NOW + timedelta(hours=1)) for _ in range(3)]
    assert given == [moment, moment + timedelta(seconds=1), moment + timedelta(seconds=2)]


def test_the_trust_bundle_is_named_after_the_signer() -> None:
    signing = api.PodCertificatesSpec("certmint.io/pods")
    body_ = decisions.cluster_trust_bundle_body(signing, "ClusterIssuer", "pods", b"PEM")
    assert body_["metadata"]["name"] == "certmint.io:pods:bundle"
    assert body_["spec"] == {"signerName": "certmint.io/pods", "trustBundle": "PEM"}


# -- the issuer field -----------------------------------------------------------------
FIELD_ERRORS = [
    pytest.param(
        {"signerName": "example.com/pods"},
        "spec.podCertificates.signerName: must be certmint.io/<name> (lower case letters, "
        "digits, '-' and '.'), not \"example.com/pods\"",
        id="a signer name outside certmint.io is refused",
    ),
    pytest.param(
        {"signerName": "certmint.io/pods", "keyTypes": ["DSA"]},
        'spec.podCertificates.keyTypes: "DSA" is not one of ECDSAP256, ECDSAP384, ED25519, '
        "RSA3072, RSA4096",
        id="an unknown key type is refused",
    ),
    pytest.param(
        {"signerName": "certmint.io/pods", "duration": "30m"},
        "spec.podCertificates.duration: must be at least 1h: the API server refuses shorter "
        "pod certificates",
        id="a lifetime under an hour is refused",
    ),
]


@pytest.mark.parametrize(("field", "message"), FIELD_ERRORS)
def test_the_issuer_field_is_validated(field: dict[str, Any], message: str) -> None:
    with pytest.raises(fields.SpecError) as caught:
        api.parse(field, self_signed=False)
    assert str(caught.value) == message


def test_a_self_signed_issuer_cannot_sign_pod_certificates() -> None:
    with pytest.raises(fields.SpecError) as caught:
        issuer_types.IssuerSpec.from_body(
            {
                "kind": "Issuer",
                "metadata": {"name": "pods", "namespace": "web"},
                "spec": {"selfSigned": {}, "podCertificates": {"signerName": "certmint.io/pods"}},
            }
        )
    assert str(caught.value) == (
        "spec.podCertificates: a selfSigned issuer cannot sign pod certificates; use a ca issuer"
    )
