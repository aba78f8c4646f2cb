"""Issuing: the leaf profile rule by rule, bad input, self-signed and CA requests."""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certmint.pki import building, ca, claims, decode, errors, extensions, issuing, spiffe

from .support import ALGORITHMS, IDENTITY, NOW, Pki

HOUR = datetime.timedelta(hours=1)
SERVER_AND_CLIENT = x509.ExtendedKeyUsage(
    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
)
CUSTOM_OID = "1.3.6.1.4.1.55555.1.7"


def _extension(
    certificate: x509.Certificate, kind: type[x509.ExtensionType]
) -> tuple[bool, object]:
    found = certificate.extensions.get_extension_for_class(kind)
    return found.critical, found.value


def _issue(pki: Pki, **changes: object) -> x509.Certificate:
    return issuing.issue(pki.request(**changes), pki.root("ECDSA P-256"), NOW).certificate


@dataclasses.dataclass(frozen=True)
class Rule:
    changes: dict[str, object]
    observe: Callable[[x509.Certificate], object]
    expected: object


PROFILE_RULES = [
    pytest.param(
        Rule(
            {"uris": ("https://api.example/",), "dns_names": ("api.payments.svc",)},
            lambda cert: _extension(cert, x509.SubjectAlternativeName),
            (
                True,
                x509.SubjectAlternativeName(
                    [
                        x509.UniformResourceIdentifier(str(IDENTITY)),
                        x509.UniformResourceIdentifier("https://api.example/"),
                        x509.DNSName("api.payments.svc"),
                    ]
                ),
            ),
        ),
        id="the identity is the first URI SAN and the SAN is critical with an empty subject",
    ),
    pytest.param(
        Rule(
            {"common_name": "api"},
            lambda cert: (cert.subject, _extension(cert, x509.SubjectAlternativeName)[0]),
            (x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "api")]), False),
        ),
        id="the SAN is not critical when a common name fills the subject",
    ),
    pytest.param(
        Rule(
            {},
            lambda cert: _extension(cert, x509.BasicConstraints),
            (True, x509.BasicConstraints(ca=False, path_length=None)),
        ),
        id="basic constraints are critical with cA false",
    ),
    pytest.param(
        Rule(
            {},
            lambda cert: _extension(cert, x509.KeyUsage),
            (True, building.key_usage(digital_signature=True)),
        ),
        id=(
            "an ECDSA leaf has only digitalSignature, critical, though the default usages ask for "
            "keyEncipherment"
        ),
    ),
    pytest.param(
        Rule({}, lambda cert: _extension(cert, x509.ExtendedKeyUsage), (False, SERVER_AND_CLIENT)),
        id="the default extended usages are serverAuth and clientAuth",
    ),
    pytest.param(
        Rule(
            {"usages": ("signing", "server auth")},
            lambda cert: (
                _extension(cert, x509.KeyUsage)[1],
                _extension(cert, x509.ExtendedKeyUsage)[1],
            ),
            (
                building.key_usage(digital_signature=True),
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
            ),
        ),
        id="cert-manager usage names map to key usage bits and purposes",
    ),
    pytest.param(
        Rule(
            {"usages": ("digital signature", "key agreement")},
            lambda cert: (
                _extension(cert, x509.KeyUsage)[1],
                [e.oid for e in cert.extensions if isinstance(e.value, x509.ExtendedKeyUsage)],
            ),
            (building.key_usage(digital_signature=True, key_agreement=True), []),
        ),
        id="no extended key usage extension when the usages name no purpose",
    ),
    pytest.param(
        Rule(
            {"usages": ()},
            lambda cert: _extension(cert, x509.KeyUsage)[1],
            building.key_usage(digital_signature=True),
        ),
        id="digitalSignature is set even when the usages leave it out",
    ),
    pytest.param(
        Rule(
            {
                "common_name": "api",
                "subject": issuing.Subject(
                    organizations=("Acme",),
                    organizational_units=("Payments",),
                    countries=("DE",),
                    localities=("Berlin",),
                ),
            },
            lambda cert: cert.subject.rfc4514_string(),
            "CN=api,OU=Payments,O=Acme,L=Berlin,C=DE",
        ),
        id="the subject carries the common name and subject attributes",
    ),
    pytest.param(
        Rule(
            {"claims": {"role": ("writer", "reader"), "env": ("prod",)}},
            lambda cert: (
                _extension_by_oid(cert, claims.CLAIMS_OID).critical,
                claims.claims_of(cert),
            ),
            (False, {"env": ("prod",), "role": ("reader", "writer")}),
        ),
        id="claims go into a non-critical claims extension",
    ),
    pytest.param(
        Rule(
            {"claims": {"role": ("reader",)}, "claims_oid": x509.ObjectIdentifier(CUSTOM_OID)},
            lambda cert: (
                [e.oid.dotted_string for e in cert.extensions if e.oid in claims.DEFAULT_OIDS.read],
                claims.claims_of(cert, extensions.claims_oids(CUSTOM_OID)),
            ),
            ([], {"role": ("reader",)}),
        ),
        id="claims go under the operator's own claims OID when it has one",
    ),
    pytest.param(
        Rule({}, lambda cert: [e.oid for e in cert.extensions if e.oid == claims.CLAIMS_OID], []),
        id="there is no claims extension without claims",
    ),
    pytest.param(
        Rule(
            {"extensions": (extensions.RawExtension(CUSTOM_OID, False, b"\x0c\x01x"),)},
            lambda cert: _raw_extension(cert, CUSTOM_OID),
            (False, b"\x0c\x01x"),
        ),
        id="a raw extension keeps its OID, critical flag and value",
    ),
    pytest.param(
        Rule(
            {
                "ip_addresses": (ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("fd00::1")),
                "email_addresses": ("ops@example.com",),
            },
            lambda cert: decode.describe(cert).ip_addresses + decode.describe(cert).email_addresses,
            ("10.0.0.1", "fd00::1", "ops@example.com"),
        ),
        id="IP and email SANs are carried",
    ),
    pytest.param(
        Rule(
            {},
            lambda cert: (cert.not_valid_before_utc, cert.not_valid_after_utc),
            (NOW - datetime.timedelta(seconds=30), NOW + HOUR),
        ),
        id="notBefore is backdated 30 seconds and notAfter is issuance plus duration",
    ),
]


def _raw_extension(certificate: x509.Certificate, oid: str) -> tuple[bool, bytes]:
    found = _extension_by_oid(certificate, x509.ObjectIdentifier(oid))
    assert isinstance(found.value, x509.UnrecognizedExtension)
    return found.critical, found.value.value


def _extension_by_oid(
    certificate: x509.Certificate, oid: x509.ObjectIdentifier
) -> x509.Extension[x509.ExtensionType]:
    return certificate.extensions.get_extension_for_oid(oid)


@pytest.mark.parametrize("rule", PROFILE_RULES)
def test_leaf_profile(pki: Pki, rule: Rule) -> None:
    assert rule.observe(_issue(pki, **rule.changes)) == rule.expected


@pytest.mark.parametrize(
    ("algorithm_name", "expected"),
    [
        pytest.param(
            "ECDSA P-256",
            building.key_usage(digital_signature=True),
            id="ECDSA P-256 gets digitalSignature",
        ),
        pytest.param(
            "ECDSA P-384",
            building.key_usage(digital_signature=True),
            id="ECDSA P-384 gets digitalSignature",
        ),
        pytest.param(
            "RSA 2048",
            building.key_usage(digital_signature=True, key_encipherment=True),
            id="RSA also gets keyEncipherment",
        ),
        pytest.param(
            "Ed25519",
            building.key_usage(digital_signature=True),
            id="Ed25519 gets digitalSignature",
        ),
    ],
)
def test_key_usage_depends_on_the_key_algorithm(
    pki: Pki, algorithm_name: str, expected: x509.KeyUsage
) -> None:
    certificate = issuing.issue(
        pki.request(algorithm_name), pki.root(algorithm_name), NOW
    ).certificate
    assert _extension(certificate, x509.KeyUsage) == (True, expected)


def test_key_identifiers_link_the_leaf_to_its_issuer(pki: Pki, algorithm: str) -> None:
    signer = pki.intermediate(algorithm)
    certificate = issuing.issue(pki.request(algorithm), signer, NOW).certificate
    _, ski = _extension(certificate, x509.SubjectKeyIdentifier)
    _, aki = _extension(certificate, x509.AuthorityKeyIdentifier)
    _, issuer_ski = _extension(signer.certificate, x509.SubjectKeyIdentifier)
    assert ski == x509.SubjectKeyIdentifier.from_public_key(pki.key(algorithm).public_key())
    assert aki == x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski)  # type: ignore[arg-type]
    assert certificate.issuer == signer.certificate.subject


def test_serials_are_random_and_at_least_64_bits(pki: Pki) -> None:
    serials = [_issue(pki).serial_number for _ in range(8)]
    assert len(set(serials)) == 8
    assert min(serial.bit_length() for serial in serials) >= 64


def test_chain_pem_is_the_leaf_then_the_intermediates_without_the_root(pki: Pki) -> None:
    signer = pki.intermediate("ECDSA P-256")
    issued = issuing.issue(pki.request(), signer, NOW)
    assert issued.chain == (signer.certificate,)
    assert decode.load_pem_certificates(issued.chain_pem) == [
        issued.certificate,
        signer.certificate,
    ]


def test_a_leaf_from_a_root_has_no_chain(pki: Pki) -> None:
    issued = issuing.issue(pki.request(), pki.root("ECDSA P-256"), NOW)
    assert (issued.chain, issued.clamped) == ((), False)
    assert issued.chain_pem == issued.certificate_pem


@pytest.mark.parametrize(
    ("duration", "expected_not_after", "clamped"),
    [
        pytest.param(
            datetime.timedelta(days=29),
            NOW + datetime.timedelta(days=29),
            False,
            id="a duration inside the CA's life is kept",
        ),
        pytest.param(
            datetime.timedelta(days=30),
            NOW + datetime.timedelta(days=30),
            False,
            id="a duration ending with the CA is kept",
        ),
        pytest.param(
            datetime.timedelta(days=90),
            NOW + datetime.timedelta(days=30),
            True,
            id="a longer duration is clamped to the CA's notAfter",
        ),
    ],
)
def test_not_after_never_passes_the_ca(
    pki: Pki, duration: datetime.timedelta, expected_not_after: datetime.datetime, clamped: bool
) -> None:
    issued = issuing.issue(pki.request(duration=duration), pki.root("ECDSA P-256"), NOW)
    assert (issued.certificate.not_valid_after_utc, issued.clamped) == (expected_not_after, clamped)


def test_a_leaf_under_an_intermediate_is_clamped_to_the_intermediate(pki: Pki) -> None:
    signer = pki.intermediate("ECDSA P-256")
    issued = issuing.issue(pki.request(duration=datetime.timedelta(days=20)), signer, NOW)
    assert (issued.certificate.not_valid_after_utc, issued.clamped) == (signer.not_after, True)


def test_a_leaf_never_starts_before_its_ca(pki: Pki) -> None:
    root = pki.root("ECDSA P-256")
    certificate = issuing.issue(pki.request(), root, root.not_before).certificate
    assert certificate.not_valid_before_utc == root.not_before


def test_a_ca_not_yet_valid_signs_nothing(pki: Pki) -> None:
    root = pki.root("ECDSA P-256")
    early = root.not_before - datetime.timedelta(hours=2)
    with pytest.raises(errors.CAError) as caught:
        issuing.issue(pki.request(), root, early)
    assert (caught.value.reason, caught.value.field) == ("CANotYetValid", "tls.crt")
    assert caught.value.message == (
        f"the CA certificate is not valid before {root.not_before.isoformat()}; certificates "
        "it signed would not be valid yet, so it signs nothing until then"
    )


def test_a_ca_valid_within_the_clock_skew_allowance_signs_from_its_not_before(pki: Pki) -> None:
    root = pki.root("ECDSA P-256")
    early = root.not_before - building.CLOCK_SKEW_ALLOWANCE
    certificate = issuing.issue(pki.request(), root, early).certificate
    assert certificate.not_valid_before_utc == root.not_before


def test_a_ca_not_yet_valid_beyond_the_allowance_signs_nothing(pki: Pki) -> None:
    root = pki.root("ECDSA P-256")
    early = root.not_before - building.CLOCK_SKEW_ALLOWANCE - datetime.timedelta(seconds=1)
    with pytest.raises(errors.CAError) as caught:
        issuing.issue(pki.request(), root, early)
    assert caught.value.reason == "CANotYetValid"


def test_an_expired_ca_signs_nothing(pki: Pki) -> None:
    root = pki.root("ECDSA P-256")
    with pytest.raises(errors.CAError) as caught:
        issuing.issue(pki.request(), root, root.not_after)
    assert (caught.value.reason, caught.value.field) == ("CAExpired", "tls.crt")


def test_a_self_signed_certificate_is_its_own_issuer(pki: Pki) -> None:
    key = pki.key("ECDSA P-256")
    issued = issuing.issue(pki.request(common_name="self"), key, NOW)
    certificate = issued.certificate
    certificate.verify_directly_issued_by(certificate)
    _, ski = _extension(certificate, x509.SubjectKeyIdentifier)
    _, aki = _extension(certificate, x509.AuthorityKeyIdentifier)
    assert aki == x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)  # type: ignore[arg-type]
    assert (issued.chain, issued.clamped, certificate.issuer) == ((), False, certificate.subject)
    assert certificate.not_valid_after_utc == NOW + HOUR


def test_a_ca_request_gets_a_ca_profile_within_the_parents_path_length(pki: Pki) -> None:
    spec = ALGORITHMS["ECDSA P-256"]
    parent = ca.generate_root_ca("limited", datetime.timedelta(days=3), spec, NOW, path_length=2)
    certificate = issuing.issue(
        pki.request(is_ca=True, common_name="sub-ca", usages=("cert sign", "crl sign")), parent, NOW
    ).certificate
    assert _extension(certificate, x509.BasicConstraints) == (
        True,
        x509.BasicConstraints(ca=True, path_length=1),
    )
    assert _extension(certificate, x509.KeyUsage) == (
        True,
        building.key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True),
    )


def _network() -> object:
    return ipaddress.ip_network("10.0.0.0/8")


BAD_REQUESTS = [
    pytest.param(
        {"duration": datetime.timedelta(0)},
        "duration",
        "must be a positive duration, not 0:00:00",
        id="a zero duration",
    ),
    pytest.param(
        {"duration": -HOUR},
        "duration",
        "must be a positive duration, not -1 day, 23:00:00",
        id="a negative duration",
    ),
    pytest.param(
        {"spiffe_id": None},
        "subject",
        (
            "the certificate would name nothing: give it an identity (serviceAccountName), a "
            "commonName, or dnsNames, ipAddresses, uris or emailAddresses"
        ),
        id="a certificate that names nothing",
    ),
    pytest.param(
        {"spiffe_id": spiffe.SpiffeId("cluster.local", "")},
        "serviceAccountName",
        "a workload identity needs a path after the trust domain",
        id="an identity without a path",
    ),
    pytest.param(
        {"dns_names": ("ok.svc", "a..b")},
        "dnsNames[1]",
        "'a..b' has an empty label",
        id="a DNS name with an empty label",
    ),
    pytest.param(
        {"dns_names": ("a.*.b",)},
        "dnsNames[0]",
        "'a.*.b': '*' may only be the whole leftmost label",
        id="a wildcard in the middle",
    ),
    pytest.param(
        {"dns_names": ("*",)},
        "dnsNames[0]",
        "'*': a wildcard needs a parent domain",
        id="a bare wildcard",
    ),
    pytest.param(
        {"dns_names": ("under_score.svc",)},
        "dnsNames[0]",
        (
            "'under_score.svc': label 'under_score' must be letters, digits and inner hyphens (use "
            "the xn-- form for international names)"
        ),
        id="an underscore in a DNS name",
    ),
    pytest.param(
        {"dns_names": ("-bad.svc",)},
        "dnsNames[0]",
        (
            "'-bad.svc': label '-bad' must be letters, digits and inner hyphens (use the xn-- form "
            "for international names)"
        ),
        id="a leading hyphen",
    ),
    pytest.param(
        {"dns_names": ("bücher.example",)},
        "dnsNames[0]",
        (
            "'bücher.example': label 'bücher' must be letters, digits and inner hyphens (use the "
            "xn-- form for international names)"
        ),
        id="a non-ASCII DNS name",
    ),
    pytest.param(
        {"dns_names": ("api.svc.",)},
        "dnsNames[0]",
        "'api.svc.' ends with a dot; write it without the trailing dot",
        id="a trailing dot",
    ),
    pytest.param(
        {"dns_names": ("10.0.0.1",)},
        "dnsNames[0]",
        "'10.0.0.1' is an IP address; list it under ipAddresses",
        id="an IP address among DNS names",
    ),
    pytest.param(
        {"dns_names": (".".join(["a" * 63] * 4) + ".example",)},
        "dnsNames[0]",
        f"'{'.'.join(['a' * 63] * 4)}.example' is longer than 253 characters",
        id="a DNS name over 253 characters",
    ),
    pytest.param(
        {"dns_names": ("x" * 64 + ".svc",)},
        "dnsNames[0]",
        f"'{'x' * 64}.svc' has a label longer than 63 characters",
        id="a label over 63 characters",
    ),
    pytest.param(
        {"dns_names": ("api.svc", "api.svc")},
        "dnsNames",
        "api.svc is listed twice",
        id="a repeated DNS name",
    ),
    pytest.param(
        {"ip_addresses": ("10.0.0.1",)},
        "ipAddresses[0]",
        "'10.0.0.1' is not a single IP address",
        id="an IP address given as text",
    ),
    pytest.param(
        {"ip_addresses": (_network(),)},
        "ipAddresses[0]",
        "IPv4Network('10.0.0.0/8') is not a single IP address",
        id="a network instead of an address",
    ),
    pytest.param(
        {"uris": ("not a uri",)},
        "uris[0]",
        "'not a uri' must be printable ASCII without spaces (percent-encode the rest)",
        id="a URI with spaces",
    ),
    pytest.param(
        {"uris": ("relative/path",)},
        "uris[0]",
        "'relative/path' is not an absolute URI (scheme:...)",
        id="a relative URI",
    ),
    pytest.param(
        {"uris": ("https://ex.com/ü",)},
        "uris[0]",
        "'https://ex.com/ü' must be printable ASCII without spaces (percent-encode the rest)",
        id="a non-ASCII URI",
    ),
    pytest.param(
        {"uris": ("spiffe://cluster.local/ns/other/sa/x",)},
        "uris[0]",
        (
            "'spiffe://cluster.local/ns/other/sa/x' would be a second SPIFFE ID; a certificate "
            "carries exactly one"
        ),
        id="a second SPIFFE ID in uris",
    ),
    pytest.param(
        {"uris": ("SPIFFE://cluster.local/x",)},
        "uris[0]",
        "'SPIFFE://cluster.local/x' would be a second SPIFFE ID; a certificate carries exactly one",
        id="a second SPIFFE ID in another letter case",
    ),
    pytest.param(
        {"spiffe_id": None, "uris": ("spiffe://a/x", "spiffe://a/y")},
        "uris[1]",
        "'spiffe://a/y' would be a second SPIFFE ID; a certificate carries exactly one",
        id="two SPIFFE IDs in uris",
    ),
    pytest.param(
        {"spiffe_id": None, "uris": ("spiffe://A/x",)},
        "uris[0]",
        (
            "'spiffe://A/x': the trust domain 'A' contains 'A', outside [a-z0-9._-]; trust domains "
            "are lowercase"
        ),
        id="an invalid SPIFFE ID in uris",
    ),
    pytest.param(
        {"email_addresses": ("no-at-sign",)},
        "emailAddresses[0]",
        "'no-at-sign' is not an email address (local@domain)",
        id="an email without @",
    ),
    pytest.param(
        {"email_addresses": ("a@b@c.com",)},
        "emailAddresses[0]",
        "'a@b@c.com' is not an email address (local@domain)",
        id="an email with two @",
    ),
    pytest.param(
        {"email_addresses": ("ü@example.com",)},
        "emailAddresses[0]",
        "'ü@example.com': the local part has characters a certificate cannot carry",
        id="a non-ASCII email",
    ),
    pytest.param(
        {"email_addresses": ("ops@-bad.com",)},
        "emailAddresses[0]",
        (
            "'ops@-bad.com': bad domain: '-bad.com': label '-bad' must be letters, digits "
            "and inner hyphens (use the xn-- form for international names)"
        ),
        id="an email with a bad domain",
    ),
    pytest.param(
        {"common_name": "x" * 65},
        "commonName",
        f"{'x' * 65!r} is longer than 64 characters",
        id="a common name over 64 characters",
    ),
    pytest.param(
        {"common_name": "a\nb"},
        "commonName",
        "'a\\nb' contains the unprintable character U+000A (Cc)",
        id="a control character in the common name",
    ),
    pytest.param(
        {"common_name": "a\u200bb"},
        "commonName",
        "'a\\u200bb' contains the unprintable character U+200B (ZERO WIDTH SPACE)",
        id="a zero-width space in the common name",
    ),
    pytest.param(
        {"subject": issuing.Subject(countries=("Germany",))},
        "subject.countries[0]",
        "'Germany' is not a two-letter country code",
        id="a country that is not a code",
    ),
    pytest.param(
        {"subject": issuing.Subject(organizations=("Acme", " "))},
        "subject.organizations[1]",
        "the value must be a non-empty string, not only blanks",
        id="a blank organization",
    ),
    pytest.param(
        {"claims": {"": ("x",)}}, "claims", "a claim key is empty", id="an empty claim key"
    ),
    pytest.param(
        {"claims": {"role": ()}},
        "claims.role",
        "a claim needs at least one value",
        id="a claim without values",
    ),
    pytest.param(
        {"extensions": (extensions.RawExtension("2.5.29.17", False, b"\x05\x00"),)},
        "extensions[0].oid",
        (
            "2.5.29.17 is reserved for standard certificate extensions (id-ce) and cannot "
            "be set as a raw extension"
        ),
        id="a raw extension with a reserved OID",
    ),
    pytest.param(
        {
            "extensions": (
                extensions.RawExtension(CUSTOM_OID, False, b"\x05\x00"),
                extensions.RawExtension(CUSTOM_OID, False, b"\x05\x00"),
            )
        },
        "extensions[1].oid",
        f"{CUSTOM_OID} is listed twice",
        id="a raw extension listed twice",
    ),
    pytest.param(
        {
            "claims_oid": x509.ObjectIdentifier(CUSTOM_OID),
            "extensions": (extensions.RawExtension(CUSTOM_OID, False, b"\x05\x00"),),
        },
        "extensions[0].oid",
        f"{CUSTOM_OID} is the claims extension; use spec.claims",
        id="a raw extension under the operator's own claims OID",
    ),
    pytest.param(
        {"extensions": (extensions.RawExtension(CUSTOM_OID, False, b"\x05\x00\x00"),)},
        "extensions[0].value",
        "1 bytes follow the DER element; give exactly one",
        id="a raw extension value that is not one DER element",
    ),
    pytest.param(
        {"usages": ("server auth", "flying")},
        "usages[1]",
        "unknown usage 'flying'",
        id="an unknown usage",
    ),
    pytest.param(
        {"usages": ("cert sign",)},
        "usages[0]",
        "'cert sign' is only for CA certificates (isCA: true)",
        id="cert sign on a leaf",
    ),
    pytest.param(
        {"usages": ("crl sign",)},
        "usages[0]",
        "'crl sign' is only for CA certificates (isCA: true)",
        id="crl sign on a leaf",
    ),
    pytest.param(
        {"usages": ("encipher only",)},
        "usages",
        "'encipher only' and 'decipher only' need 'key agreement'",
        id="encipher only without key agreement",
    ),
]


@pytest.mark.parametrize(("changes", "field", "message"), BAD_REQUESTS)
def test_bad_input_names_the_field_and_signs_nothing(
    pki: Pki, monkeypatch: pytest.MonkeyPatch, changes: dict[str, object], field: str, message: str
) -> None:
    signed: list[object] = []
    monkeypatch.setattr(building, "sign", lambda *args: signed.append(args))
    request = pki.request(**changes)
    with pytest.raises(errors.PKIError) as caught:
        issuing.validate(request)
    assert (caught.value.field, caught.value.message, caught.value.reason) == (
        field,
        message,
        "InvalidSpec",
    )
    with pytest.raises(errors.PKIError) as caught_on_issue:
        issuing.issue(request, pki.root("ECDSA P-256"), NOW)
    assert str(caught_on_issue.value) == f"{field}: {message}"
    assert signed == []


@pytest.mark.parametrize(
    ("signer", "changes", "field", "message"),
    [
        pytest.param(
            lambda pki: pki.key("ECDSA P-256", "someone else"),
            {"common_name": "self"},
            "privateKey",
            "a self-signed certificate must be signed by its own key",
            id="self-signing with another key",
        ),
        pytest.param(
            lambda pki: pki.key("ECDSA P-256"),
            {},
            "commonName",
            (
                "a self-signed certificate needs a subject (commonName or subject), because its "
                "issuer name is its subject"
            ),
            id="self-signing with an empty subject",
        ),
        pytest.param(
            lambda pki: ca.generate_root_ca(
                "r", datetime.timedelta(days=1), ALGORITHMS["ECDSA P-256"], NOW, path_length=0
            ),
            {"is_ca": True, "common_name": "sub"},
            "isCA",
            "the issuing CA 'CN=r' has pathLen 0 and cannot issue CAs",
            id="a CA request under a CA with pathLen 0",
        ),
    ],
)
def test_signer_problems_name_the_field_and_sign_nothing(  # noqa: PLR0917  # pytest passes params positionally-named
    pki: Pki,
    monkeypatch: pytest.MonkeyPatch,
    signer: Callable[[Pki], object],
    changes: dict[str, object],
    field: str,
    message: str,
) -> None:
    chosen = signer(pki)
    signed: list[object] = []
    monkeypatch.setattr(building, "sign", lambda *args: signed.append(args))
    with pytest.raises(errors.PKIError) as caught:
        issuing.issue(pki.request(**changes), chosen, NOW)  # type: ignore[arg-type]
    assert (caught.value.field, caught.value.message) == (field, message)
    assert signed == []
