"""Certificate authorities: generation, intermediates, loading from a Secret."""

from __future__ import annotations

import dataclasses
import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from certmint.pki import building, ca, decode, errors, keys

from .support import ALGORITHMS, NOW, Pki

DAY = datetime.timedelta(days=1)


def _extension(
    certificate: x509.Certificate, kind: type[x509.ExtensionType]
) -> x509.Extension[x509.ExtensionType]:
    return certificate.extensions.get_extension_for_class(kind)


def test_a_root_ca_has_the_ca_profile(pki: Pki, algorithm: str) -> None:
    root = pki.root(algorithm)
    certificate = root.certificate
    assert certificate.subject == certificate.issuer
    assert certificate.subject.rfc4514_string() == f"CN=root {algorithm}"
    constraints = _extension(certificate, x509.BasicConstraints)
    assert (constraints.critical, constraints.value) == (
        True,
        x509.BasicConstraints(ca=True, path_length=None),
    )
    usage = _extension(certificate, x509.KeyUsage)
    assert (usage.critical, usage.value) == (
        True,
        building.key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True),
    )
    ski = _extension(certificate, x509.SubjectKeyIdentifier).value
    aki = _extension(certificate, x509.AuthorityKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(root.private_key.public_key())
    assert isinstance(aki, x509.AuthorityKeyIdentifier)
    assert isinstance(ski, x509.SubjectKeyIdentifier)
    assert aki.key_identifier == ski.digest
    assert certificate.not_valid_before_utc == NOW - building.NOT_BEFORE_BACKDATE
    assert certificate.not_valid_after_utc == NOW + datetime.timedelta(days=30)
    assert root.root is certificate
    assert root.chain == ()
    assert root.fingerprint_sha256 == certificate.fingerprint(hashes.SHA256()).hex()
    assert keys.describe_key(root.private_key) == algorithm


def test_the_ca_repr_never_shows_the_private_key(pki: Pki) -> None:
    assert "private_key" not in repr(pki.root("ECDSA P-256"))


def test_an_intermediate_chains_to_its_root(pki: Pki, algorithm: str) -> None:
    root, intermediate = pki.root(algorithm), pki.intermediate(algorithm)
    intermediate.certificate.verify_directly_issued_by(root.certificate)
    assert intermediate.chain == (root.certificate,)
    assert intermediate.root is root.certificate
    aki = _extension(intermediate.certificate, x509.AuthorityKeyIdentifier).value
    assert isinstance(aki, x509.AuthorityKeyIdentifier)
    assert (
        aki.key_identifier
        == x509.SubjectKeyIdentifier.from_public_key(root.private_key.public_key()).digest
    )


def test_an_intermediate_never_outlives_its_parent(pki: Pki) -> None:
    root = pki.root("ECDSA P-256")
    intermediate = ca.issue_intermediate_ca(root, "long", 365 * DAY, ALGORITHMS["ECDSA P-256"], NOW)
    assert intermediate.not_after == root.not_after


def test_path_length_is_inherited_and_enforced() -> None:
    spec = ALGORITHMS["ECDSA P-256"]
    root = ca.generate_root_ca("root", DAY * 30, spec, NOW, path_length=1)
    intermediate = ca.issue_intermediate_ca(root, "one", DAY, spec, NOW)
    assert intermediate.path_length == 0
    with pytest.raises(errors.PKIError) as caught:
        ca.issue_intermediate_ca(intermediate, "two", DAY, spec, NOW)
    assert (caught.value.field, caught.value.message) == (
        "isCA",
        "the issuing CA 'CN=one' has pathLen 0 and cannot issue CAs",
    )
    with pytest.raises(errors.PKIError) as caught:
        ca.issue_intermediate_ca(root, "wide", DAY, spec, NOW, path_length=5)
    assert (caught.value.field, caught.value.message) == (
        "pathLength",
        "at most 0 under the issuing CA, not 5",
    )


def test_name_constraints_are_critical_and_permit_only_the_given_domains() -> None:
    root = ca.generate_root_ca(
        "root",
        DAY,
        ALGORITHMS["ECDSA P-256"],
        NOW,
        permitted_dns_domains=("svc.cluster.local", ".example.com"),
    )
    constraints = _extension(root.certificate, x509.NameConstraints)
    assert constraints.critical
    assert constraints.value == x509.NameConstraints(
        permitted_subtrees=[x509.DNSName("svc.cluster.local"), x509.DNSName(".example.com")],
        excluded_subtrees=None,
    )


@pytest.mark.parametrize(
    ("arguments", "field", "message"),
    [
        pytest.param(
            {"common_name": ""},
            "commonName",
            "a CA needs a non-empty common name",
            id="an empty common name",
        ),
        pytest.param(
            {"common_name": "x" * 65},
            "commonName",
            "longer than 64 characters",
            id="a common name over 64",
        ),
        pytest.param(
            {"duration": datetime.timedelta(0)},
            "duration",
            "must be positive, not 0:00:00",
            id="a zero duration",
        ),
        pytest.param(
            {"path_length": -1},
            "pathLength",
            "must be a non-negative integer, not -1",
            id="a negative path length",
        ),
        pytest.param(
            {"key_spec": keys.KeySpec(keys.KeyAlgorithm.RSA, 1024)},
            "privateKey.size",
            "RSA supports sizes 2048, 3072 and 4096, not 1024",
            id="a weak key",
        ),
        pytest.param(
            {"permitted_dns_domains": ("ok.example", "bad_domain")},
            "permittedDNSDomains[1]",
            "'bad_domain': label 'bad_domain' must be letters, digits and inner hyphens "
            "(use the xn-- form for international names)",
            id="a malformed permitted domain",
        ),
    ],
)
def test_bad_root_arguments_name_the_field(
    arguments: dict[str, object], field: str, message: str
) -> None:
    call: dict[str, object] = {
        "common_name": "root",
        "duration": DAY,
        "key_spec": ALGORITHMS["ECDSA P-256"],
        "now": NOW,
    } | arguments
    with pytest.raises(errors.PKIError) as caught:
        ca.generate_root_ca(**call)  # type: ignore[arg-type]
    assert (caught.value.field, caught.value.message) == (field, message)


def _pem(*certificates: x509.Certificate) -> bytes:
    return decode.certificates_to_pem(certificates)


def test_loading_a_root_from_pem_gives_the_same_ca(pki: Pki, algorithm: str) -> None:
    root = pki.root(algorithm)
    loaded = ca.load_ca(_pem(root.certificate), keys.private_key_to_pem(root.private_key), NOW)
    assert loaded == root


def test_loading_an_intermediate_with_its_chain_keeps_the_chain(pki: Pki) -> None:
    intermediate = pki.intermediate("ECDSA P-256")
    loaded = ca.load_ca(
        _pem(intermediate.certificate, *intermediate.chain),
        keys.private_key_to_pem(intermediate.private_key),
        NOW,
    )
    assert loaded.chain == intermediate.chain
    assert loaded.root == pki.root("ECDSA P-256").certificate


def _leaf_certificate(pki: Pki) -> x509.Certificate:
    key = pki.key("ECDSA P-256", "not-a-ca")
    return building.sign(
        building.Blueprint(
            subject=x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "leaf")]),
            issuer=x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "leaf")]),
            public_key=key.public_key(),
            not_before=NOW - DAY,
            not_after=NOW + DAY,
            extensions=[
                building.Extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            ],
        ),
        key,
    )


def _ca_without_cert_sign(pki: Pki) -> x509.Certificate:
    key = pki.key("ECDSA P-256", "no-cert-sign")
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "weak")])
    return building.sign(
        building.Blueprint(
            subject=name,
            issuer=name,
            public_key=key.public_key(),
            not_before=NOW - DAY,
            not_after=NOW + DAY,
            extensions=[
                building.Extension(x509.BasicConstraints(ca=True, path_length=None), critical=True),
                building.Extension(building.key_usage(digital_signature=True), critical=True),
            ],
        ),
        key,
    )


@dataclasses.dataclass(frozen=True)
class LoadCase:
    chain_pem: object  # Callable[[Pki], bytes]
    key_pem: object  # Callable[[Pki], bytes]
    at: datetime.datetime = NOW


def _root_pem(pki: Pki) -> bytes:
    return _pem(pki.root("ECDSA P-256").certificate)


def _root_key_pem(pki: Pki) -> bytes:
    return keys.private_key_to_pem(pki.root("ECDSA P-256").private_key)


@pytest.mark.parametrize(
    ("case", "field", "reason", "message"),
    [
        pytest.param(
            LoadCase(lambda pki: b"garbage", _root_key_pem),
            "tls.crt",
            "CAInvalid",
            "no PEM certificate could be read",
            id="an unreadable certificate is CAInvalid",
        ),
        pytest.param(
            LoadCase(_root_pem, lambda pki: b"garbage"),
            "tls.key",
            "CAInvalid",
            "not a PEM-encoded private key certmint can read",
            id="an unreadable key is CAInvalid",
        ),
        pytest.param(
            LoadCase(
                lambda pki: _pem(_leaf_certificate(pki)),
                lambda pki: keys.private_key_to_pem(pki.key("ECDSA P-256", "not-a-ca")),
            ),
            "tls.crt",
            "CANotACA",
            "certificate 0 ('CN=leaf') is not a CA (BasicConstraints cA is not true)",
            id="a leaf certificate is CANotACA",
        ),
        pytest.param(
            LoadCase(
                lambda pki: _pem(_ca_without_cert_sign(pki)),
                lambda pki: keys.private_key_to_pem(pki.key("ECDSA P-256", "no-cert-sign")),
            ),
            "tls.crt",
            "CANotACA",
            "certificate 0 ('CN=weak') lacks the keyCertSign key usage",
            id="a CA without keyCertSign is CANotACA",
        ),
        pytest.param(
            LoadCase(
                _root_pem, lambda pki: keys.private_key_to_pem(pki.key("ECDSA P-256", "other"))
            ),
            "tls.key",
            "CAKeyMismatch",
            "the private key does not belong to the CA certificate",
            id="another key is CAKeyMismatch",
        ),
        pytest.param(
            LoadCase(_root_pem, _root_key_pem, at=NOW + datetime.timedelta(days=30)),
            "tls.crt",
            "CAExpired",
            f"the CA certificate expired at {(NOW + datetime.timedelta(days=30)).isoformat()}",
            id="a CA at its notAfter is CAExpired",
        ),
        pytest.param(
            LoadCase(
                lambda pki: _pem(
                    pki.intermediate("ECDSA P-256").certificate, pki.root("RSA 2048").certificate
                ),
                lambda pki: keys.private_key_to_pem(pki.intermediate("ECDSA P-256").private_key),
            ),
            "tls.crt",
            "CAInvalid",
            "certificate 0 is not signed by certificate 1; order it CA first, root last",
            id="a chain that does not link up is CAInvalid",
        ),
    ],
)
def test_load_ca_refuses_unusable_cas(
    pki: Pki, case: LoadCase, field: str, reason: str, message: str
) -> None:
    with pytest.raises(errors.CAError) as caught:
        ca.load_ca(case.chain_pem(pki), case.key_pem(pki), case.at)  # type: ignore[operator]
    assert (caught.value.field, caught.value.reason, caught.value.message) == (
        field,
        reason,
        message,
    )


def test_an_encrypted_ca_key_is_refused_without_its_material(pki: Pki) -> None:
    root = pki.root("ECDSA P-256")
    encrypted = root.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    with pytest.raises(errors.CAError) as caught:
        ca.load_ca(_pem(root.certificate), encrypted, NOW)
    assert (caught.value.field, caught.value.reason) == ("tls.key", "CAInvalid")
    assert "BEGIN" not in str(caught.value)
