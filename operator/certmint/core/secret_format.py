"""The issued Secret: building its body, and reading back what one says.

Pure functions over dicts and certificates; the controller does the I/O. The format is
fixed by DESIGN.md: type ``kubernetes.io/tls`` with ``tls.crt`` (leaf then
intermediates), ``tls.key`` (PKCS#8), ``ca.crt`` (the issuer's trust bundle), the
``certmint.io/certificate-name`` label and the annotations below. Extra keys appear only
when a Certificate asks for them.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import sys
from collections.abc import Mapping
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certmint.api import certificate_types, fields, resources
from certmint.core import adoption
from certmint.pki import decode, errors, formats, issuing, keys

TLS_CRT: Final = "tls.crt"
TLS_KEY: Final = "tls.key"
CA_CRT: Final = "ca.crt"


def spec_hash(spec: Mapping[str, Any]) -> str:
    """A stable digest of the parts of a Certificate spec that shape the Secret.

    ``secretDeletionPolicy`` is left out: changing it must not re-issue.
    """
    relevant = {k: v for k, v in spec.items() if k != "secretDeletionPolicy"}
    canonical = json.dumps(relevant, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def bundle_digest(bundle_pem: bytes) -> str:
    """A digest of ``ca.crt`` content, to notice a changed trust bundle.

    Interned: the Secrets of an issuer all carry the same bundle, so the same digest.
    """
    return sys.intern(hashlib.sha256(bundle_pem).hexdigest()[:32])


@dataclasses.dataclass(frozen=True, slots=True)
class SecretState:
    """What the operator needs to know about a Secret, without its private key.

    Attributes:
        namespace: The Secret's namespace.
        name: The Secret's name.
        uid: Its UID.
        resource_version: For conditional replaces.
        owner: The ``certmint.io/certificate-name`` label, None when absent.
        annotations: Its ``certmint.io/*`` annotations.
        leaf_der: The first certificate of ``tls.crt`` as DER, None when missing or
            unparseable; read it as `leaf`.
        key_matches: ``tls.key`` parses and is the leaf's key.
        bundle_digest: Digest of ``ca.crt`` (see `bundle_digest`).
        cert_manager_name: Its ``cert-manager.io/certificate-name`` annotation, if any.
        kept_labels: Labels no issuer owns, kept on each write; only for a Secret that
            certmint does not own yet or adopted (see `certmint.core.adoption`), else empty.
        kept_annotations: The same for annotations.
    """

    namespace: str
    name: str
    uid: str
    resource_version: str
    owner: str | None
    annotations: Mapping[str, str]
    leaf_der: bytes | None
    key_matches: bool
    bundle_digest: str
    cert_manager_name: str | None = None
    kept_labels: Mapping[str, str] = dataclasses.field(default_factory=fields.empty_mapping)
    kept_annotations: Mapping[str, str] = dataclasses.field(default_factory=fields.empty_mapping)

    @property
    def leaf(self) -> x509.Certificate | None:
        """The leaf, parsed on each read.

        A fleet's store holds DER rather than parsed certificates: a parsed one costs about
        3.4 KB more per Secret (bench/memory_bench.py), a parse about 10 µs per read.
        """
        return None if self.leaf_der is None else x509.load_der_x509_certificate(self.leaf_der)

    @property
    def revision(self) -> int:
        try:
            return int(self.annotations.get(resources.ANNOTATION_REVISION, "0"))
        except ValueError:
            return 0


def _decoded(data: Mapping[str, str], key: str) -> bytes:
    try:
        return base64.b64decode(data.get(key, ""), validate=True)
    except (binascii.Error, ValueError):
        return b""


def read_secret(body: Mapping[str, Any]) -> SecretState:
    """Summarizes a Secret object as the API returned it (base64 ``data``).

    Never raises on malformed content: a broken Secret reads as one without a leaf or
    with a mismatched key, which the controller then repairs by re-issuing.
    """
    metadata = body.get("metadata") or {}
    data = body.get("data") or {}
    leaf: x509.Certificate | None = None
    key_matches = False
    try:
        certificates = decode.load_pem_certificates(_decoded(data, TLS_CRT))
        leaf = certificates[0] if certificates else None
    except (errors.PKIError, ValueError):
        leaf = None
    if leaf is not None:
        try:
            key = keys.load_private_key_pem(_decoded(data, TLS_KEY))
            key_matches = key.public_key() == leaf.public_key()
        except (errors.PKIError, ValueError, TypeError):
            key_matches = False
    return _summary(metadata, leaf, key_matches=key_matches, ca_pem=_decoded(data, CA_CRT))


def written_secret(body: Mapping[str, Any], content: SecretContent) -> SecretState:
    """Summarizes a Secret certmint just wrote from ``content``, without parsing it back.

    ``body`` is the API's answer to the write: its metadata (resourceVersion, uid) is new,
    its data is what `secret_body` made of ``content``.
    """
    return _summary(
        body.get("metadata") or {},
        content.issued.certificate,
        key_matches=True,
        ca_pem=content.bundle_pem,
    )


#: Annotations whose values few Secrets differ in (issuer, policy, revision, identity).
_SHARED_VALUES: Final = frozenset(
    {
        resources.ANNOTATION_ISSUER_NAME,
        resources.ANNOTATION_ISSUER_KIND,
        resources.ANNOTATION_DELETION_POLICY,
        resources.ANNOTATION_REVISION,
        resources.ANNOTATION_IDENTITY,
    }
)


def _own_annotations(annotations: Mapping[str, str]) -> dict[str, str]:
    """The ``certmint.io/*`` annotations, stored once per distinct string.

    Every Secret carries the same keys, and most carry the same issuer, policy and
    revision: interned, a fleet holds one copy of each instead of one per Secret.
    """
    return {
        sys.intern(key): sys.intern(value) if key in _SHARED_VALUES else value
        for key, value in annotations.items()
        if key.startswith("certmint.io/")
    }


def _summary(
    metadata: Mapping[str, Any], leaf: x509.Certificate | None, *, key_matches: bool, ca_pem: bytes
) -> SecretState:
    labels: Mapping[str, str] = metadata.get("labels") or {}
    annotations: Mapping[str, str] = metadata.get("annotations") or {}
    owner = labels.get(resources.LABEL_CERTIFICATE_NAME)
    # Foreign metadata is kept only where adoption may apply: memory stays flat for the
    # Secrets certmint created itself.
    keep = owner is None or resources.ANNOTATION_ADOPTED_FROM in annotations
    return SecretState(
        namespace=sys.intern(str(metadata.get("namespace", ""))),
        name=str(metadata.get("name", "")),
        uid=str(metadata.get("uid", "")),
        resource_version=str(metadata.get("resourceVersion", "")),
        owner=owner,
        annotations=_own_annotations(annotations),
        leaf_der=None if leaf is None else leaf.public_bytes(serialization.Encoding.DER),
        key_matches=key_matches,
        bundle_digest=bundle_digest(ca_pem),
        cert_manager_name=annotations.get(adoption.CERT_MANAGER_CERTIFICATE_NAME),
        kept_labels=adoption.foreign(labels) if keep else fields.EMPTY_MAPPING,
        kept_annotations=adoption.foreign(annotations) if keep else fields.EMPTY_MAPPING,
    )


def private_key_of(body: Mapping[str, Any]) -> keys.PrivateKey | None:
    """The Secret's private key, for ``rotationPolicy: Never``; None when unusable."""
    try:
        return keys.load_private_key_pem(_decoded(body.get("data") or {}, TLS_KEY))
    except (errors.PKIError, ValueError, TypeError):
        return None


@dataclasses.dataclass(frozen=True, slots=True)
class SecretContent:
    """Everything that goes into an issued Secret.

    Attributes:
        namespace: Where the Secret lives.
        certificate_name: The owning Certificate's name.
        certificate_uid: The owning Certificate's UID.
        spec: The owning Certificate's spec.
        spec_hash: `spec_hash` of its raw spec.
        issued: The signed certificate and its chain.
        private_key: The certificate's key.
        bundle_pem: ``ca.crt``: the trust bundle.
        identity: The SPIFFE ID, "" when none.
        revision: This issuance's revision number.
        renew_request: The renew request this issuance satisfies, "" when none.
        pkcs12_password: The keystore password, when a PKCS#12 keystore is asked for.
    """

    namespace: str
    certificate_name: str
    certificate_uid: str
    spec: certificate_types.CertificateSpec
    spec_hash: str
    issued: issuing.IssuedCertificate
    private_key: keys.PrivateKey = dataclasses.field(repr=False)
    bundle_pem: bytes
    identity: str
    revision: int
    renew_request: str
    pkcs12_password: bytes | None = dataclasses.field(default=None, repr=False)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def secret_data(content: SecretContent) -> dict[str, str]:
    """The Secret's ``data``, base64-encoded, with the extra formats asked for."""
    key_pem = keys.private_key_to_pem(content.private_key)
    chain_pem = content.issued.chain_pem
    data = {TLS_CRT: chain_pem, TLS_KEY: key_pem, CA_CRT: content.bundle_pem}
    formats_asked = content.spec.additional_output_formats
    if "CombinedPEM" in formats_asked:
        data["tls-combined.pem"] = key_pem + chain_pem
    if "DER" in formats_asked:
        data["tls.der"] = content.issued.certificate.public_bytes(serialization.Encoding.DER)
        data["key.der"] = keys.private_key_to_der(content.private_key)
    if content.pkcs12_password is not None:
        data["keystore.p12"] = formats.pkcs12(
            content.private_key,
            content.issued,
            content.pkcs12_password,
            friendly_name=content.certificate_name,
        )
    return {key: _b64(value) for key, value in data.items()}


def secret_body(
    content: SecretContent,
    resource_version: str | None = None,
    kept: SecretState | None = None,
) -> dict[str, Any]:
    """The whole Secret object to create, or to replace conditionally.

    Args:
        content: what was issued, and for which Certificate.
        resource_version: the replaced Secret's, for a conditional replace.
        kept: the replaced Secret, when it is adopted: its foreign labels and annotations
            stay (certmint's own keys win).

    Returns:
        The Secret object.
    """
    spec = content.spec
    adopted = (
        content.spec.adopt_cert_manager_certificate is not None
        and kept is not None
        and (kept.owner is None or resources.ANNOTATION_ADOPTED_FROM in kept.annotations)
    )
    kept_labels = kept.kept_labels if kept and adopted else {}
    kept_annotations = kept.kept_annotations if kept and adopted else {}
    labels = {**kept_labels, **spec.secret_labels}
    labels[resources.LABEL_CERTIFICATE_NAME] = content.certificate_name
    annotations = {
        **kept_annotations,
        **spec.secret_annotations,
        resources.ANNOTATION_CERTIFICATE_NAME: content.certificate_name,
        resources.ANNOTATION_CERTIFICATE_UID: content.certificate_uid,
        resources.ANNOTATION_ISSUER_NAME: spec.issuer_ref.name,
        resources.ANNOTATION_ISSUER_KIND: spec.issuer_ref.kind,
        resources.ANNOTATION_IDENTITY: content.identity,
        resources.ANNOTATION_SERIAL: decode.serial_hex(content.issued.certificate),
        resources.ANNOTATION_REVISION: str(content.revision),
        resources.ANNOTATION_SPEC_HASH: content.spec_hash,
        resources.ANNOTATION_DELETION_POLICY: spec.secret_deletion_policy,
    }
    if content.renew_request:
        annotations[resources.ANNOTATION_RENEW_REQUEST] = content.renew_request
    if adopted:
        annotations[resources.ANNOTATION_ADOPTED_FROM] = adoption.ADOPTED_FROM_CERT_MANAGER
    metadata: dict[str, Any] = {
        "name": spec.secret_name,
        "namespace": content.namespace,
        "labels": labels,
        "annotations": annotations,
    }
    if resource_version:
        metadata["resourceVersion"] = resource_version
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": metadata,
        "data": secret_data(content),
    }


def with_bundle(body: Mapping[str, Any], bundle_pem: bytes) -> dict[str, Any]:
    """A copy of an issued Secret whose ``ca.crt`` is replaced by a new trust bundle."""
    data = dict(body.get("data") or {})
    data[CA_CRT] = _b64(bundle_pem)
    return {**body, "data": data}
