"""Chain and identity verification, on both the cryptography path and the Ed25519 path."""

from __future__ import annotations

import dataclasses
import datetime
import functools
from collections.abc import Callable

import pytest
from cryptography import x509

from certmint.pki import building, ca, errors, extensions, issuing, verify

from .support import ALGORITHMS, NOW, TRUST_DOMAIN, Pki, craft

SECOND = datetime.timedelta(seconds=1)
LEAF_EXTENSIONS = [
    building.Extension(x509.BasicConstraints(ca=False, path_length=None), critical=True),
    building.Extension(building.key_usage(digital_signature=True), critical=True),
]
CA_EXTENSIONS = [
    building.Extension(x509.BasicConstraints(ca=True, path_length=None), critical=True),
    building.Extension(building.key_usage(key_cert_sign=True, crl_sign=True), critical=True),
]


def _uris(*uris: str) -> building.Extension:
    return building.Extension(
        x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri) for uri in uris]),
        critical=True,
    )


@pytest.mark.parametrize(
    "through_intermediate", [False, True], ids=["issued by the root", "issued by an intermediate"]
)
def test_an_issued_leaf_verifies_with_its_identity(
    pki: Pki, algorithm: str, through_intermediate: bool
) -> None:
    signer = pki.intermediate(algorithm) if through_intermediate else pki.root(algorithm)
    issued = issuing.issue(pki.request(algorithm), signer, NOW)
    verify.verify_chain(
        issued.certificate, issued.chain, [pki.root(algorithm).certificate], NOW, TRUST_DOMAIN
    )
    assert verify.chains_to(
        issued.certificate, issued.chain, [pki.root(algorithm).certificate], NOW
    )


@dataclasses.dataclass(frozen=True)
class Scenario:
    """Builds (leaf, intermediates, roots, now, expected trust domain) for one algorithm."""

    build: Callable[
        [Pki, str],
        tuple[
            x509.Certificate,
            list[x509.Certificate],
            list[x509.Certificate],
            datetime.datetime,
            str | None,
        ],
    ]


def _issued(pki: Pki, algorithm: str, **changes: object) -> x509.Certificate:
    return issuing.issue(pki.request(algorithm, **changes), pki.root(algorithm), NOW).certificate


def _roots(pki: Pki, algorithm: str) -> list[x509.Certificate]:
    return [pki.root(algorithm).certificate]


@functools.cache
def _limited_root(algorithm: str) -> ca.CertificateAuthority:
    return ca.generate_root_ca(
        "limited", datetime.timedelta(days=1), ALGORITHMS[algorithm], NOW, path_length=0
    )


def _too_deep(
    pki: Pki, algorithm: str
) -> tuple[x509.Certificate, list[x509.Certificate], list[x509.Certificate]]:
    root = _limited_root(algorithm)
    intermediate_key = pki.key(algorithm, "rogue intermediate")
    intermediate = ca.CertificateAuthority(
        craft(root, intermediate_key, CA_EXTENSIONS, common_name="rogue"),
        intermediate_key,
        (root.certificate,),
    )
    leaf = craft(
        intermediate, pki.key(algorithm), [*LEAF_EXTENSIONS, _uris("spiffe://cluster.local/x")]
    )
    return leaf, [intermediate.certificate], [root.certificate]


def _signing_without_cert_sign(
    pki: Pki, algorithm: str
) -> tuple[x509.Certificate, list[x509.Certificate], list[x509.Certificate]]:
    root = pki.root(algorithm)
    intermediate_key = pki.key(algorithm, "no cert sign")
    weak_extensions = [
        building.Extension(x509.BasicConstraints(ca=True, path_length=None), critical=True),
        building.Extension(building.key_usage(digital_signature=True), critical=True),
    ]
    intermediate = ca.CertificateAuthority(
        craft(root, intermediate_key, weak_extensions, common_name="weak"),
        intermediate_key,
        (root.certificate,),
    )
    leaf = craft(
        intermediate, pki.key(algorithm), [*LEAF_EXTENSIONS, _uris("spiffe://cluster.local/x")]
    )
    return leaf, [intermediate.certificate], [root.certificate]


@functools.cache
def _constrained_root(algorithm: str) -> ca.CertificateAuthority:
    return ca.generate_root_ca(
        "constrained",
        datetime.timedelta(days=1),
        ALGORITHMS[algorithm],
        NOW,
        permitted_dns_domains=("example.com",),
    )


def _constrained(
    pki: Pki, algorithm: str
) -> tuple[x509.Certificate, list[x509.Certificate], list[x509.Certificate]]:
    root = _constrained_root(algorithm)
    leaf = issuing.issue(
        pki.request(algorithm, dns_names=("api.other.org",)), root, NOW
    ).certificate
    return leaf, [], [root.certificate]


CHAIN_FAILURES = [
    pytest.param(
        Scenario(
            lambda pki, alg: (
                _issued(pki, alg),
                [],
                [pki.root(alg, "stranger").certificate],
                NOW,
                None,
            )
        ),
        id="a leaf from another root",
    ),
    pytest.param(
        Scenario(
            lambda pki, alg: (
                _issued(pki, alg),
                [],
                _roots(pki, alg),
                NOW + datetime.timedelta(hours=1) + SECOND,
                None,
            )
        ),
        id="a leaf checked after its notAfter",
    ),
    pytest.param(
        Scenario(
            lambda pki, alg: (
                _issued(pki, alg),
                [],
                _roots(pki, alg),
                NOW - datetime.timedelta(minutes=1),
                None,
            )
        ),
        id="a leaf checked before its notBefore",
    ),
    pytest.param(
        Scenario(
            lambda pki, alg: (
                issuing.issue(pki.request(alg), pki.intermediate(alg), NOW).certificate,
                [],
                _roots(pki, alg),
                NOW,
                None,
            )
        ),
        id="a leaf whose intermediate is missing",
    ),
    pytest.param(
        Scenario(
            lambda pki, alg: (
                _issued(
                    pki,
                    alg,
                    extensions=(
                        extensions.RawExtension("1.3.6.1.4.1.55555.1.7", True, b"\x05\x00"),
                    ),
                ),
                [],
                _roots(pki, alg),
                NOW,
                None,
            )
        ),
        id="a leaf with a critical extension nobody understands",
    ),
    pytest.param(
        Scenario(
            lambda pki, alg: (
                _issued(pki, alg, is_ca=True, common_name="sub"),
                [],
                _roots(pki, alg),
                NOW,
                None,
            )
        ),
        id="a CA certificate presented as a leaf",
    ),
    pytest.param(
        Scenario(lambda pki, alg: (*_too_deep(pki, alg), NOW, None)),
        id="an intermediate under a root with pathLen 0",
    ),
    pytest.param(
        Scenario(lambda pki, alg: (*_signing_without_cert_sign(pki, alg), NOW, None)),
        id="an intermediate without keyCertSign",
    ),
    pytest.param(
        Scenario(lambda pki, alg: (*_constrained(pki, alg), NOW, None)),
        id="a DNS name outside the root's name constraints",
    ),
]


@pytest.mark.parametrize("scenario", CHAIN_FAILURES)
def test_broken_chains_are_refused(pki: Pki, algorithm: str, scenario: Scenario) -> None:
    leaf, intermediates, roots, now, trust_domain = scenario.build(pki, algorithm)
    with pytest.raises(errors.VerificationError) as caught:
        verify.verify_chain(leaf, intermediates, roots, now, trust_domain)
    assert (caught.value.field, caught.value.reason) == ("tls.crt", "ChainInvalid")
    assert not verify.chains_to(leaf, intermediates, roots, now)


IDENTITY_FAILURES = [
    pytest.param(
        lambda pki, alg: (_issued(pki, alg), "other.domain"),
        "TrustDomainMismatch",
        "spiffe://cluster.local/ns/payments/sa/api is not in trust domain 'other.domain'",
        id="an identity from another trust domain",
    ),
    pytest.param(
        lambda pki, alg: (_issued(pki, alg, spiffe_id=None, dns_names=("api.svc",)), TRUST_DOMAIN),
        "IdentityInvalid",
        "the leaf carries no SPIFFE ID",
        id="no identity when a trust domain is expected",
    ),
    pytest.param(
        lambda pki, alg: (
            craft(
                pki.root(alg),
                pki.key(alg),
                [*LEAF_EXTENSIONS, _uris("spiffe://cluster.local/a", "spiffe://cluster.local/b")],
            ),
            None,
        ),
        "IdentityInvalid",
        "the leaf carries 2 SPIFFE IDs; an SVID has exactly one",
        id="two identities",
    ),
    pytest.param(
        lambda pki, alg: (
            craft(
                pki.root(alg), pki.key(alg), [*LEAF_EXTENSIONS, _uris("spiffe://cluster.local/a/")]
            ),
            None,
        ),
        "IdentityInvalid",
        "'spiffe://cluster.local/a/': the SPIFFE path '/a/' has an empty segment or trailing '/'",
        id="a malformed identity",
    ),
]


@pytest.mark.parametrize(("build", "reason", "message"), IDENTITY_FAILURES)
def test_bad_identities_are_refused(
    pki: Pki,
    algorithm: str,
    build: Callable[[Pki, str], tuple[x509.Certificate, str | None]],
    reason: str,
    message: str,
) -> None:
    leaf, trust_domain = build(pki, algorithm)
    with pytest.raises(errors.VerificationError) as caught:
        verify.verify_chain(leaf, [], _roots(pki, algorithm), NOW, trust_domain)
    assert (caught.value.field, caught.value.reason, caught.value.message) == (
        "uris",
        reason,
        message,
    )


def test_a_leaf_without_identity_verifies_when_no_trust_domain_is_expected(
    pki: Pki, algorithm: str
) -> None:
    leaf = _issued(pki, algorithm, spiffe_id=None, common_name="legacy", dns_names=("legacy.svc",))
    verify.verify_chain(leaf, [], _roots(pki, algorithm), NOW)


def test_a_leaf_with_only_a_common_name_verifies(pki: Pki, algorithm: str) -> None:
    leaf = _issued(pki, algorithm, spiffe_id=None, common_name="legacy")
    verify.verify_chain(leaf, [], _roots(pki, algorithm), NOW)


def test_a_server_only_leaf_still_verifies(pki: Pki, algorithm: str) -> None:
    leaf = _issued(pki, algorithm, usages=("digital signature", "server auth"))
    verify.verify_chain(leaf, [], _roots(pki, algorithm), NOW, TRUST_DOMAIN)


def test_an_empty_subject_with_a_non_critical_san_is_refused(pki: Pki, algorithm: str) -> None:
    san = building.Extension(
        x509.SubjectAlternativeName([x509.UniformResourceIdentifier("spiffe://cluster.local/a")]),
        critical=False,
    )
    leaf = craft(pki.root(algorithm), pki.key(algorithm), [*LEAF_EXTENSIONS, san])
    with pytest.raises(errors.VerificationError) as caught:
        verify.verify_chain(leaf, [], _roots(pki, algorithm), NOW)
    assert caught.value.reason == "ChainInvalid"


def test_no_trust_anchors_is_a_clear_error(pki: Pki) -> None:
    with pytest.raises(errors.VerificationError) as caught:
        verify.verify_chain(_issued(pki, "ECDSA P-256"), [], [], NOW)
    assert (caught.value.field, caught.value.reason, caught.value.message) == (
        "ca.crt",
        "ChainInvalid",
        "no trust anchors to verify against",
    )
