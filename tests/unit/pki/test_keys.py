"""Key specs, generation, encodings and descriptions."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa

from certmint.pki import errors, keys

from .support import Pki

ECDSA, RSA, ED25519 = keys.KeyAlgorithm.ECDSA, keys.KeyAlgorithm.RSA, keys.KeyAlgorithm.ED25519


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(keys.KeySpec(), keys.KeySpec(ECDSA, 256), id="the default is ECDSA P-256"),
        pytest.param(keys.KeySpec(ECDSA), keys.KeySpec(ECDSA, 256), id="ECDSA defaults to 256"),
        pytest.param(keys.KeySpec(ECDSA, 384), keys.KeySpec(ECDSA, 384), id="ECDSA 384 is kept"),
        pytest.param(keys.KeySpec(RSA), keys.KeySpec(RSA, 2048), id="RSA defaults to 2048"),
        pytest.param(keys.KeySpec(RSA, 3072), keys.KeySpec(RSA, 3072), id="RSA 3072 is kept"),
        pytest.param(keys.KeySpec(RSA, 4096), keys.KeySpec(RSA, 4096), id="RSA 4096 is kept"),
        pytest.param(keys.KeySpec(ED25519), keys.KeySpec(ED25519, None), id="Ed25519 has no size"),
    ],
)
def test_normalized_fills_in_the_default_size(spec: keys.KeySpec, expected: keys.KeySpec) -> None:
    assert spec.normalized() == expected


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        pytest.param(
            keys.KeySpec(ECDSA, 521),
            "privateKey.size",
            "ECDSA supports sizes 256 and 384, not 521",
            id="ECDSA P-521 is refused",
        ),
        pytest.param(
            keys.KeySpec(RSA, 1024),
            "privateKey.size",
            "RSA supports sizes 2048, 3072 and 4096, not 1024",
            id="RSA 1024 is refused",
        ),
        pytest.param(
            keys.KeySpec(ED25519, 256),
            "privateKey.size",
            "Ed25519 keys have no size; remove size 256",
            id="Ed25519 with a size is refused",
        ),
        pytest.param(
            keys.KeySpec("DSA", None),  # type: ignore[arg-type]
            "privateKey.algorithm",
            "unsupported algorithm 'DSA'; use one of ECDSA, RSA, Ed25519",
            id="an unknown algorithm is refused",
        ),
    ],
)
def test_normalized_refuses_unsupported_combinations(
    spec: keys.KeySpec, field: str, message: str
) -> None:
    with pytest.raises(errors.PKIError) as caught:
        spec.normalized()
    assert (caught.value.field, caught.value.message, caught.value.reason) == (
        field,
        message,
        "InvalidSpec",
    )
    assert str(caught.value) == f"{field}: {message}"


def test_generated_keys_match_their_spec_and_description(pki: Pki, algorithm: str) -> None:
    key = pki.key(algorithm)
    assert keys.describe_key(key) == algorithm
    assert keys.describe_key(key.public_key()) == algorithm
    assert keys.key_spec_of(key) == keys.key_spec_of(key.public_key())


def test_pem_and_der_encodings_are_unencrypted_pkcs8_that_load_back(
    pki: Pki, algorithm: str
) -> None:
    key = pki.key(algorithm)
    key_pem = keys.private_key_to_pem(key)
    assert key_pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    loaded = keys.load_private_key_pem(key_pem)
    assert loaded.public_key() == key.public_key()
    from_der = serialization.load_der_private_key(keys.private_key_to_der(key), password=None)
    assert from_der.public_key() == key.public_key()


def test_traditional_ec_pem_is_accepted(pki: Pki) -> None:
    key = pki.key("ECDSA P-256")
    traditional = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert traditional.startswith(b"-----BEGIN EC PRIVATE KEY-----")
    assert keys.load_private_key_pem(traditional).public_key() == key.public_key()


def _encrypted(key: keys.PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )


def _unsupported_curve() -> bytes:
    return keys.private_key_to_pem(ec.generate_private_key(ec.SECP521R1()))


def _ed448() -> bytes:
    return ed448.Ed448PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.mark.parametrize(
    ("make_pem", "message"),
    [
        pytest.param(
            lambda pki: b"not a key",
            "not a PEM-encoded private key certmint can read",
            id="garbage",
        ),
        pytest.param(
            lambda pki: _encrypted(pki.key("ECDSA P-256")),
            "the private key is encrypted; certmint needs it unencrypted",
            id="an encrypted key",
        ),
        pytest.param(
            lambda pki: _unsupported_curve(),
            "unsupported elliptic curve secp521r1",
            id="a P-521 key",
        ),
        pytest.param(
            lambda pki: keys.private_key_to_pem(
                rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
            ),
            "RSA keys need at least 2048 bits, not 1024",
            id="an RSA 1024 key",
        ),
        pytest.param(
            lambda pki: _ed448(), "unsupported private key type Ed448PrivateKey", id="an Ed448 key"
        ),
    ],
)
def test_loading_a_bad_key_names_the_field_and_hides_the_material(
    pki: Pki, make_pem: object, message: str
) -> None:
    pem = make_pem(pki)  # type: ignore[operator]
    with pytest.raises(errors.PKIError) as caught:
        keys.load_private_key_pem(pem, field="tls.key")
    assert (caught.value.field, caught.value.message) == ("tls.key", message)
    body_lines = [line for line in pem.decode().splitlines() if len(line) > 20]
    assert not [line for line in body_lines if line in repr(caught.value)]


def test_signature_hash_follows_the_key(pki: Pki) -> None:
    observed = {
        name: getattr(keys.signature_hash(pki.key(name)), "name", None)
        for name in ("ECDSA P-256", "ECDSA P-384", "RSA 2048", "Ed25519")
    }
    assert observed == {
        "ECDSA P-256": "sha256",
        "ECDSA P-384": "sha384",
        "RSA 2048": "sha256",
        "Ed25519": None,
    }
