"""A PodCertificateRequest, parsed once, and its public key checked again (pure).

The API server validates the request form and the proof of possession when the request is
created; certmint checks them again rather than trust that blindly (an API server with
the validation changed, an object restored from a backup). What is checked, in order:

1. exactly one form: ``stubPKCS10Request``, or ``pkixPublicKey`` + ``proofOfPossession``;
2. the PKCS#10 request parses, its signature verifies, and it is empty (no subject, no
   extension, no attribute): certmint takes nothing from it but the key, and a request
   carrying names a pod cannot have is refused rather than silently ignored;
   the deprecated form's proof is the key's signature over the pod UID (Ed25519 over the
   UID's bytes, ECDSA ASN.1 and RSA-PSS over their SHA-256);
3. the key is one of the types certmint can certify (`KEY_TYPES`).

This does not check that the pod, node or ServiceAccount exist or match (the API server's
NodeRestriction admission did, from the requesting node's identity), nor the issuer's
policy (`certmint.core.pod_certificates`).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from cryptography import exceptions, x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from certmint.pki import keys

TERMINAL_CONDITIONS: Final = ("Issued", "Denied", "Failed")
#: The API server's default when the request omits ``maxExpirationSeconds``.
DEFAULT_MAX_EXPIRATION: Final = timedelta(hours=24)
#: Key type name (a projection's ``keyType``) by (algorithm, size).
_KEY_TYPES: Final = {
    (keys.KeyAlgorithm.ECDSA, 256): "ECDSAP256",
    (keys.KeyAlgorithm.ECDSA, 384): "ECDSAP384",
    (keys.KeyAlgorithm.ED25519, None): "ED25519",
    (keys.KeyAlgorithm.RSA, 3072): "RSA3072",
    (keys.KeyAlgorithm.RSA, 4096): "RSA4096",
}


class RequestError(ValueError):
    """The request cannot be signed as it is; ``reason`` becomes the Denied reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclasses.dataclass(frozen=True)
class PodCertificateRequest:
    """The fields of a PodCertificateRequest certmint reads; spec fields are immutable."""

    namespace: str
    name: str
    uid: str
    resource_version: str
    signer_name: str
    pod_name: str
    pod_uid: str
    service_account_name: str
    node_name: str
    max_expiration: timedelta
    stub_csr_der: bytes = b""
    pkix_public_key_der: bytes = b""
    proof_of_possession: bytes = b""
    user_annotations: Mapping[str, str] = dataclasses.field(default_factory=dict, hash=False)
    created: datetime | None = None
    #: The terminal condition already set (Issued, Denied or Failed), "" while pending.
    answered: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> PodCertificateRequest:
        """Parse the object the API returned.

        Raises:
            RequestError: ``MalformedRequest`` for a field that is not base64.
        """
        metadata, spec = body.get("metadata") or {}, body.get("spec") or {}
        conditions = (body.get("status") or {}).get("conditions") or ()
        answered = next(
            (
                str(c["type"])
                for c in conditions
                if c.get("type") in TERMINAL_CONDITIONS and c.get("status") == "True"
            ),
            "",
        )
        created = metadata.get("creationTimestamp")
        max_seconds = spec.get("maxExpirationSeconds")
        return cls(
            namespace=str(metadata.get("namespace", "")),
            name=str(metadata.get("name", "")),
            uid=str(metadata.get("uid", "")),
            resource_version=str(metadata.get("resourceVersion", "")),
            signer_name=str(spec.get("signerName", "")),
            pod_name=str(spec.get("podName", "")),
            pod_uid=str(spec.get("podUID", "")),
            service_account_name=str(spec.get("serviceAccountName", "")),
            node_name=str(spec.get("nodeName", "")),
            max_expiration=(
                timedelta(seconds=int(max_seconds)) if max_seconds else DEFAULT_MAX_EXPIRATION
            ),
            stub_csr_der=_bytes(spec, "stubPKCS10Request"),
            pkix_public_key_der=_bytes(spec, "pkixPublicKey"),
            proof_of_possession=_bytes(spec, "proofOfPossession"),
            user_annotations=dict(spec.get("unverifiedUserAnnotations") or {}),
            created=datetime.fromisoformat(created.replace("Z", "+00:00")) if created else None,
            answered=answered,
        )


def _bytes(spec: Mapping[str, Any], field: str) -> bytes:
    try:
        return base64.b64decode(spec.get(field) or "", validate=True)
    except (binascii.Error, ValueError):
        raise RequestError("MalformedRequest", f"spec.{field} is not base64") from None


def key_type(public_key: keys.PublicKey) -> str:
    """The projection ``keyType`` of a key (``ECDSAP256``), else a description of it."""
    if isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.key_size > 384:
        return f"ECDSA P-{public_key.curve.key_size}"  # valid in the API, not in the PKI core
    spec = keys.key_spec_of(public_key)
    return _KEY_TYPES.get((spec.algorithm, spec.size), keys.describe_key(public_key))


def public_key(request: PodCertificateRequest) -> keys.PublicKey:
    """The key to certify, after checking the request form and the key's proof.

    Raises:
        RequestError: ``MalformedRequest`` (form, an unreadable or non-empty PKCS#10
            request, an unreadable key), ``InvalidProofOfPossession`` (a signature that does
            not verify) or ``UnsupportedKeyType``.
    """
    stub = bool(request.stub_csr_der)
    deprecated = bool(request.pkix_public_key_der or request.proof_of_possession)
    if stub == deprecated or (
        deprecated and not (request.pkix_public_key_der and request.proof_of_possession)
    ):
        raise RequestError(
            "MalformedRequest",
            "exactly one of stubPKCS10Request or (pkixPublicKey and proofOfPossession) must be set",
        )
    key = _from_stub(request.stub_csr_der) if stub else _from_proof(request)
    if isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        name = key_type(key)
        if name in _KEY_TYPES.values():
            return key
        raise RequestError(
            "UnsupportedKeyType", f"the key is {name}, which certmint cannot certify"
        )
    raise RequestError("UnsupportedKeyType", f"the key is a {type(key).__name__}")


def _from_stub(der: bytes) -> Any:
    try:
        csr = x509.load_der_x509_csr(der)
        key = csr.public_key()
    except (ValueError, exceptions.UnsupportedAlgorithm):
        raise RequestError(
            "MalformedRequest", "stubPKCS10Request is not a PKCS#10 request"
        ) from None
    if not csr.is_signature_valid:
        raise RequestError(
            "InvalidProofOfPossession", "the signature of stubPKCS10Request does not verify"
        )
    if len(csr.subject) or len(csr.extensions) or list(csr.attributes):
        raise RequestError(
            "MalformedRequest",
            "stubPKCS10Request must be empty (no subject, extension or attribute): the "
            "certificate's names come from the pod, never from the request",
        )
    return key


def _from_proof(request: PodCertificateRequest) -> Any:
    try:
        key = serialization.load_der_public_key(request.pkix_public_key_der)
    except (ValueError, exceptions.UnsupportedAlgorithm):
        raise RequestError("MalformedRequest", "pkixPublicKey is not a PKIX public key") from None
    data, proof = request.pod_uid.encode(), request.proof_of_possession
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(proof, data)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(proof, data, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
            key.verify(proof, data, pss, hashes.SHA256())
        else:
            return key  # refused as an unsupported key type
    except exceptions.InvalidSignature:
        raise RequestError(
            "InvalidProofOfPossession",
            "proofOfPossession is not the key's signature over the pod UID",
        ) from None
    return key
