"""Extra output formats for the Secret: combined PEM, DER, PKCS#12, the trust bundle."""

from __future__ import annotations

from collections.abc import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12 as pkcs12_format

from certmint.pki import decode, errors, issuing, keys

# PBKDF2 iterations for the PKCS#12 password: high enough to slow guessing, low enough
# that issuing stays fast (OpenSSL 3 itself defaults to 2048; 600 000 would cost ~0.3 s).
PKCS12_KDF_ROUNDS = 50_000


def combined_pem(key: keys.PrivateKey, issued: issuing.IssuedCertificate) -> bytes:
    """``tls-combined.pem``: the private key, then the certificate and intermediates."""
    return keys.private_key_to_pem(key) + issued.chain_pem


def certificate_der(issued: issuing.IssuedCertificate) -> bytes:
    """``tls.der``: the certificate alone, DER (DER holds one certificate per file)."""
    return issued.certificate.public_bytes(serialization.Encoding.DER)


def chain_der(issued: issuing.IssuedCertificate) -> bytes:
    """The certificate and intermediates as concatenated DER, for tools that read that."""
    return b"".join(
        cert.public_bytes(serialization.Encoding.DER)
        for cert in (issued.certificate, *issued.chain)
    )


def pkcs12(
    key: keys.PrivateKey,
    issued: issuing.IssuedCertificate,
    password: bytes,
    friendly_name: str | bytes | None = None,
) -> bytes:
    """``keystore.p12``: key and chain, encrypted with AES-256-CBC (PBES2, PBKDF2-SHA256).

    Args:
        key: The certificate's private key.
        issued: The certificate and its intermediates.
        password: The keystore password; must not be empty.
        friendly_name: The key entry's alias, e.g. the Certificate name.

    Returns:
        The PKCS#12 bytes, MAC'd with HMAC-SHA256.

    Raises:
        PKIError: ``keystores.pkcs12.passwordSecretRef`` for an empty password.
    """
    if not password:
        raise errors.PKIError("keystores.pkcs12.passwordSecretRef", "the PKCS#12 password is empty")
    name = friendly_name.encode() if isinstance(friendly_name, str) else friendly_name
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(PKCS12_KDF_ROUNDS)
        .key_cert_algorithm(pkcs12_format.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password)
    )
    return pkcs12_format.serialize_key_and_certificates(
        name, key, issued.certificate, list(issued.chain) or None, encryption
    )


def bundle_pem(roots: Iterable[x509.Certificate]) -> bytes:
    """``ca.crt``: trust anchors as PEM, in order, each certificate once."""
    seen: set[str] = set()
    unique: list[x509.Certificate] = []
    for root in roots:
        fingerprint = decode.fingerprint_sha256(root)
        if fingerprint not in seen:
            seen.add(fingerprint)
            unique.append(root)
    return decode.certificates_to_pem(unique)
