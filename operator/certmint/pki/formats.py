"""The PKCS#12 keystore (``keystore.p12``): key and chain in one encrypted file.

The other extra outputs are plain encodings (`certmint.pki.keys` and the certificates'
own ``public_bytes``) that `certmint.core.secret_format` writes directly.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12 as pkcs12_format

from certmint.pki import errors, issuing, keys

# PBKDF2 iterations for the PKCS#12 password: high enough to slow guessing, low enough
# that issuing stays fast (OpenSSL 3 itself defaults to 2048; 600 000 would cost ~0.3 s).
PKCS12_KDF_ROUNDS = 50_000


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
