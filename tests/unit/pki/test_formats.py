"""Extra output formats and certificate decoding."""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12

from certmint.pki import decode, errors, formats, issuing, keys

from .support import IDENTITY, NOW, Pki


def _issued(pki: Pki, algorithm: str = "ECDSA P-256") -> issuing.IssuedCertificate:
    return issuing.issue(pki.request(algorithm), pki.intermediate(algorithm), NOW)


def test_pkcs12_round_trips_with_the_password(pki: Pki, algorithm: str) -> None:
    issued = _issued(pki, algorithm)
    key = pki.key(algorithm)
    loaded = pkcs12.load_pkcs12(formats.pkcs12(key, issued, b"s3cret", "api"), b"s3cret")
    assert loaded.key is not None
    assert loaded.key.public_key() == key.public_key()
    assert loaded.cert is not None
    assert (loaded.cert.certificate, loaded.cert.friendly_name) == (issued.certificate, b"api")
    assert [entry.certificate for entry in loaded.additional_certs] == list(issued.chain)
    with pytest.raises(ValueError, match="Invalid password or PKCS12 data"):
        pkcs12.load_pkcs12(formats.pkcs12(key, issued, b"s3cret", "api"), b"wrong")


def test_pkcs12_uses_aes_256_and_pbkdf2(pki: Pki, openssl: str, tmp_path: Path) -> None:
    path = tmp_path / "keystore.p12"
    path.write_bytes(formats.pkcs12(pki.key("ECDSA P-256"), _issued(pki), b"s3cret", "api"))
    info = subprocess.run(
        [openssl, "pkcs12", "-info", "-noout", "-in", str(path), "-passin", "pass:s3cret"],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    assert "MAC: sha256" in info
    assert (
        "Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 50000, PRF hmacWithSHA256" in info
    )
    assert (
        "PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, Iteration 50000, PRF hmacWithSHA256"
        in info
    )


def test_an_empty_pkcs12_password_is_refused(pki: Pki) -> None:
    with pytest.raises(errors.PKIError) as caught:
        formats.pkcs12(pki.key("ECDSA P-256"), _issued(pki), b"", "api")
    assert (caught.value.field, caught.value.message) == (
        "keystores.pkcs12.passwordSecretRef",
        "the PKCS#12 password is empty",
    )


def test_describe_summarizes_an_issued_leaf(pki: Pki) -> None:
    issued = issuing.issue(
        pki.request(claims={"role": ("reader",)}, dns_names=("api.svc",), common_name="api"),
        pki.root("ECDSA P-256"),
        NOW,
    )
    certificate = issued.certificate
    view = decode.describe(certificate)
    assert view == decode.CertificateView(
        subject="CN=api",
        issuer="CN=root ECDSA P-256",
        serial_number_hex=format(certificate.serial_number, "x"),
        not_before=NOW - datetime.timedelta(seconds=30),
        not_after=NOW + datetime.timedelta(hours=1),
        identity=str(IDENTITY),
        claims={"role": ("reader",)},
        dns_names=("api.svc",),
        ip_addresses=(),
        uris=(str(IDENTITY),),
        email_addresses=(),
        key="ECDSA P-256",
        fingerprint_sha256=decode.fingerprint_sha256(certificate),
        is_ca=False,
        signature_algorithm="ecdsa-with-SHA256",
        other_extensions=(),
    )
    as_json = view.to_json_dict()
    assert (as_json["notAfter"], as_json["claims"], as_json["isCA"]) == (
        (NOW + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        {"role": ["reader"]},
        False,
    )


def test_load_pem_certificates_refuses_text_without_certificates(pki: Pki) -> None:
    with pytest.raises(errors.PKIError) as caught:
        decode.load_pem_certificates(keys.private_key_to_pem(pki.key("ECDSA P-256")))
    assert (caught.value.field, caught.value.message) == (
        "tls.crt",
        "no readable PEM certificate found",
    )
