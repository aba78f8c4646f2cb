"""Identifying a peer from its certificate."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from certmint import workload
from certmint.pki import claims as pki_claims
from certmint.pki import keys
from tests.unit.workload import support


def odd_certificate(
    pki: support.Pki,
    uris: list[str],
    *,
    claims_der: bytes | None = None,
    claims_oids: tuple[x509.ObjectIdentifier, ...] = (pki_claims.CLAIMS_OID,),
) -> x509.Certificate:
    """A leaf the operator would never issue, signed by the test CA."""
    key = keys.generate_private_key(keys.KeySpec())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(pki.authority.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(support.NOW - datetime.timedelta(minutes=1))
        .not_valid_after(support.NOW + datetime.timedelta(hours=1))
    )
    if uris:
        names = [x509.UniformResourceIdentifier(uri) for uri in uris]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=True)
    for oid in claims_oids if claims_der is not None else ():
        extension = x509.UnrecognizedExtension(oid, claims_der)
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(pki.authority.private_key, hashes.SHA256())


def test_a_peer_from_an_issued_certificate(pki: support.Pki) -> None:
    leaf = pki.leaf(
        "web",
        "api",
        claims={"role": ("reader", "writer"), "env": ("prod",)},
        dns_names=("api.web.svc",),
    )

    peer = workload.peer_from_certificate(leaf.certificate, trust_domain="cluster.local")

    assert peer == workload.Peer(
        identity="spiffe://cluster.local/ns/web/sa/api",
        trust_domain="cluster.local",
        path="/ns/web/sa/api",
        claims={"env": ["prod"], "role": ["reader", "writer"]},
        dns_names=("api.web.svc",),
        not_after=leaf.certificate.not_valid_after_utc,
        serial_number=leaf.serial,
        certificate=leaf.certificate,
    )
    assert (peer.has_claim("role", "writer"), peer.has_claim("role", "admin")) == (True, False)


@pytest.mark.parametrize(
    ("uris", "claims_der", "trust_domain", "reason", "message"),
    [
        pytest.param(
            [],
            None,
            None,
            "NoIdentity",
            "the certificate has no spiffe:// URI SAN",
            id="refuse a certificate without SANs",
        ),
        pytest.param(
            ["https://example.com/x"],
            None,
            None,
            "NoIdentity",
            "the certificate has no spiffe:// URI SAN",
            id="refuse a certificate with only other URIs",
        ),
        pytest.param(
            ["spiffe://cluster.local/ns/a/sa/x", "SPIFFE://cluster.local/ns/b/sa/y"],
            None,
            None,
            "SeveralIdentities",
            "the certificate has 2 spiffe:// URI SANs; an identity needs exactly one",
            id="refuse two identities, whatever their letter case",
        ),
        pytest.param(
            ["spiffe://cluster.local/ns//sa/x"],
            None,
            None,
            "InvalidIdentity",
            "'spiffe://cluster.local/ns//sa/x': the SPIFFE path '/ns//sa/x' has an empty "
            "segment or trailing '/'",
            id="refuse an identity that breaks the SPIFFE rules",
        ),
        pytest.param(
            ["spiffe://partner.example/ns/a/sa/x"],
            None,
            "cluster.local",
            "TrustDomainMismatch",
            "spiffe://partner.example/ns/a/sa/x is not in the trust domain 'cluster.local'",
            id="refuse an identity from another trust domain",
        ),
        pytest.param(
            ["spiffe://cluster.local/ns/a/sa/x"],
            b"\x30\x00",
            None,
            "InvalidClaims",
            "not a DER WorkloadClaims value (...)",
            id="refuse a malformed claims extension",
        ),
    ],
)
def test_peers_that_cannot_be_identified(
    pki: support.Pki,
    *,
    uris: list[str],
    claims_der: bytes | None,
    trust_domain: str | None,
    reason: str,
    message: str,
) -> None:
    certificate = odd_certificate(pki, uris, claims_der=claims_der)

    with pytest.raises(workload.PeerError) as refused:
        workload.peer_from_certificate(certificate, trust_domain=trust_domain)

    got = refused.value.message
    if message.endswith("(...)"):  # the ASN.1 library's own words follow
        got = got[: got.index("(") + 1] + "...)"
    assert (refused.value.reason, got) == (reason, message)


ROLE_READER_DER = pki_claims.encode_claims({"role": ["reader"]})
OWN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.55555.9.1")


@pytest.mark.parametrize(
    ("written_under", "claims_oid", "expected"),
    [
        pytest.param((pki_claims.CLAIMS_OID,), None, {"role": ["reader"]},
                     id="certmint's OID is read by default"),
        pytest.param((pki_claims.LEGACY_CLAIMS_OID,), None, {"role": ["reader"]},
                     id="the legacy OID is read by default"),
        pytest.param((OWN_OID,), None, {}, id="another OID is not read by default"),
        pytest.param((OWN_OID,), OWN_OID.dotted_string, {"role": ["reader"]},
                     id="an organization's OID is read when given"),
        pytest.param((pki_claims.CLAIMS_OID,), OWN_OID.dotted_string, {},
                     id="an organization's OID replaces certmint's for reading"),
    ],
)  # fmt: skip
def test_which_claims_oids_a_peer_is_read_under(
    pki: support.Pki,
    written_under: tuple[x509.ObjectIdentifier, ...],
    claims_oid: str | None,
    expected: dict[str, list[str]],
) -> None:
    certificate = odd_certificate(
        pki,
        ["spiffe://cluster.local/ns/web/sa/api"],
        claims_der=ROLE_READER_DER,
        claims_oids=written_under,
    )
    peer = workload.peer_from_certificate(certificate, claims_oid=claims_oid)
    assert peer.claims == expected


def test_claims_under_both_the_current_and_the_legacy_oid_are_refused(pki: support.Pki) -> None:
    certificate = odd_certificate(
        pki,
        ["spiffe://cluster.local/ns/web/sa/api"],
        claims_der=ROLE_READER_DER,
        claims_oids=(pki_claims.CLAIMS_OID, pki_claims.LEGACY_CLAIMS_OID),
    )
    with pytest.raises(workload.PeerError) as caught:
        workload.peer_from_certificate(certificate)
    assert (caught.value.reason, caught.value.message) == (
        "InvalidClaims",
        "the certificate carries claims under several OIDs "
        f"({pki_claims.CLAIMS_OID.dotted_string}, {pki_claims.LEGACY_CLAIMS_OID.dotted_string})",
    )
