"""Private keys: which algorithms and sizes certmint supports, and their encodings.

Supported combinations (the same as cert-manager's, minus ECDSA P-521 and Ed448, which
few TLS peers accept): ECDSA P-256 (default) and P-384, RSA 2048/3072/4096, Ed25519.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import TypeAlias

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from certmint.pki import errors

PrivateKey: TypeAlias = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey: TypeAlias = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey

# Fermat's F4, the only public exponent anyone should use.
_RSA_PUBLIC_EXPONENT = 65537


class KeyAlgorithm(enum.StrEnum):
    """The key algorithms a Certificate may ask for (spec ``privateKey.algorithm``)."""

    ECDSA = "ECDSA"
    RSA = "RSA"
    ED25519 = "Ed25519"


_CURVES: dict[int, ec.EllipticCurve] = {256: ec.SECP256R1(), 384: ec.SECP384R1()}
_CURVE_SIZES: dict[str, int] = {curve.name: size for size, curve in _CURVES.items()}
_RSA_SIZES = (2048, 3072, 4096)
MIN_RSA_SIZE = 2048
_DEFAULT_SIZES: dict[KeyAlgorithm, int | None] = {
    KeyAlgorithm.ECDSA: 256,
    KeyAlgorithm.RSA: 2048,
    KeyAlgorithm.ED25519: None,
}


@dataclasses.dataclass(frozen=True)
class KeySpec:
    """An algorithm and, where the algorithm has one, a size in bits.

    Attributes:
        algorithm: The key algorithm.
        size: ECDSA curve size (256, 384) or RSA modulus size (2048, 3072, 4096);
            ``None`` means the algorithm's default, and is the only value for Ed25519.
    """

    algorithm: KeyAlgorithm = KeyAlgorithm.ECDSA
    size: int | None = None

    def normalized(self) -> KeySpec:
        """Return the spec with the default size filled in, after checking the combination.

        Returns:
            A `KeySpec` whose size is explicit (``None`` only for Ed25519).

        Raises:
            PKIError: ``privateKey.algorithm`` for an unknown algorithm,
                ``privateKey.size`` for a size the algorithm does not support.
        """
        try:
            algorithm = KeyAlgorithm(self.algorithm)
        except ValueError:
            allowed = ", ".join(a.value for a in KeyAlgorithm)
            raise errors.PKIError(
                "privateKey.algorithm",
                f"unsupported algorithm {self.algorithm!r}; use one of {allowed}",
            ) from None
        size = _DEFAULT_SIZES[algorithm] if self.size is None else self.size
        if algorithm is KeyAlgorithm.ECDSA and size not in _CURVES:
            raise errors.PKIError(
                "privateKey.size", f"ECDSA supports sizes 256 and 384, not {size}"
            )
        if algorithm is KeyAlgorithm.RSA and size not in _RSA_SIZES:
            raise errors.PKIError(
                "privateKey.size", f"RSA supports sizes 2048, 3072 and 4096, not {size}"
            )
        if algorithm is KeyAlgorithm.ED25519 and size is not None:
            raise errors.PKIError(
                "privateKey.size", f"Ed25519 keys have no size; remove size {size}"
            )
        return KeySpec(algorithm, size)


def generate_private_key(spec: KeySpec) -> PrivateKey:
    """Generate a fresh private key.

    Args:
        spec: Algorithm and size; the default size is used when none is given.

    Returns:
        The new private key.

    Raises:
        PKIError: The spec names an unsupported combination.
    """
    spec = spec.normalized()
    match spec.algorithm, spec.size:
        case KeyAlgorithm.ECDSA, int(size):
            return ec.generate_private_key(_CURVES[size])
        case KeyAlgorithm.RSA, int(size):
            return rsa.generate_private_key(public_exponent=_RSA_PUBLIC_EXPONENT, key_size=size)
        case _:
            return ed25519.Ed25519PrivateKey.generate()


def private_key_to_pem(key: PrivateKey) -> bytes:
    """Encode a private key as unencrypted PKCS#8 PEM (the Secret's ``tls.key``)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def private_key_to_der(key: PrivateKey) -> bytes:
    """Encode a private key as unencrypted PKCS#8 DER (the Secret's ``key.der``)."""
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key_pem(key_pem: bytes, field: str = "tls.key") -> PrivateKey:
    """Parse an unencrypted PEM private key (PKCS#8, or the traditional RSA/EC forms).

    Args:
        key_pem: The PEM text.
        field: Where the key came from, for the error.

    Returns:
        The private key.

    Raises:
        PKIError: The data is not a PEM private key, is encrypted, or is not ECDSA
            P-256/P-384, RSA of at least 2048 bits or Ed25519. The message never
            contains key material.
    """
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise errors.PKIError(
            field, "the private key is encrypted; certmint needs it unencrypted"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise errors.PKIError(field, "not a PEM-encoded private key certmint can read") from None
    if not isinstance(
        key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise errors.PKIError(field, f"unsupported private key type {type(key).__name__}")
    # Surface unsupported curves and weak sizes here rather than at signing time. Any
    # RSA size from 2048 up is accepted: a CA brought by the user may be RSA 8192.
    try:
        spec = key_spec_of(key)
    except errors.PKIError as err:
        raise errors.PKIError(field, err.message) from None
    if spec.algorithm is KeyAlgorithm.RSA and (spec.size or 0) < MIN_RSA_SIZE:
        raise errors.PKIError(field, f"RSA keys need at least {MIN_RSA_SIZE} bits, not {spec.size}")
    return key


def key_spec_of(key: PrivateKey | PublicKey) -> KeySpec:
    """Describe a key as the spec that would generate it.

    Args:
        key: A private or public key.

    Returns:
        The algorithm and size of the key. The size may be one certmint would not
        generate (e.g. RSA 1024); call `KeySpec.normalized` to check it.

    Raises:
        PKIError: ``privateKey`` when the key type is not ECDSA, RSA or Ed25519, or the
            curve is not P-256/P-384.
    """
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        size = _CURVE_SIZES.get(key.curve.name)
        if size is None:
            raise errors.PKIError("privateKey", f"unsupported elliptic curve {key.curve.name}")
        return KeySpec(KeyAlgorithm.ECDSA, size)
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return KeySpec(KeyAlgorithm.RSA, key.key_size)
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return KeySpec(KeyAlgorithm.ED25519, None)
    raise errors.PKIError("privateKey", f"unsupported key type {type(key).__name__}")


def describe_key(key: PrivateKey | PublicKey) -> str:
    """A short human name for a key, e.g. ``"ECDSA P-256"``, ``"RSA 2048"``, ``"Ed25519"``."""
    spec = key_spec_of(key)
    if spec.algorithm is KeyAlgorithm.ECDSA:
        return f"ECDSA P-{spec.size}"
    if spec.algorithm is KeyAlgorithm.RSA:
        return f"RSA {spec.size}"
    return "Ed25519"


def signature_hash(signer: PrivateKey) -> hashes.SHA256 | hashes.SHA384 | None:
    """The hash to sign with: SHA-384 for P-384 keys, none for Ed25519, else SHA-256."""
    if isinstance(signer, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(signer, ec.EllipticCurvePrivateKey) and signer.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def certificate_public_key(certificate: x509.Certificate, field: str = "tls.crt") -> PublicKey:
    """The public key of a certificate, narrowed to the types certmint handles.

    Args:
        certificate: Any certificate.
        field: Where the certificate came from, for the error.

    Returns:
        The ECDSA, RSA or Ed25519 public key.

    Raises:
        PKIError: The certificate holds another kind of key (DSA, Ed448, X25519...).
    """
    public_key = certificate.public_key()
    if isinstance(
        public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
    ):
        return public_key
    raise errors.PKIError(field, f"unsupported public key type {type(public_key).__name__}")
