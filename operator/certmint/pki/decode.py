"""Reading certificates: PEM in and out, and a plain summary of what one says."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from certmint.pki import claims, errors, keys, spiffe


@dataclasses.dataclass(frozen=True)
class CertificateView:
    """What a certificate says, in plain values (for ``certmint inspect`` and status).

    Attributes:
        subject: RFC 4514 subject (``""`` when empty).
        issuer: RFC 4514 issuer.
        serial_number_hex: Serial number, lowercase hex without separators.
        not_before: Start of validity (UTC).
        not_after: End of validity (UTC).
        identity: The SPIFFE ID when the certificate carries exactly one valid one.
        claims: Decoded claims (empty when none).
        dns_names: DNS SANs.
        ip_addresses: IP SANs as text.
        uris: All URI SANs, the SPIFFE ID included.
        email_addresses: rfc822Name SANs.
        key: e.g. ``"ECDSA P-256"``.
        fingerprint_sha256: SHA-256 of the DER, lowercase hex.
        is_ca: BasicConstraints cA.
        signature_algorithm: e.g. ``"ecdsa-with-SHA256"``.
        other_extensions: (OID, critical) of extensions cryptography does not know,
            other than the claims extension.
    """

    subject: str
    issuer: str
    serial_number_hex: str
    not_before: datetime.datetime
    not_after: datetime.datetime
    identity: str | None
    claims: dict[str, tuple[str, ...]]
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    uris: tuple[str, ...]
    email_addresses: tuple[str, ...]
    key: str
    fingerprint_sha256: str
    is_ca: bool
    signature_algorithm: str
    other_extensions: tuple[tuple[str, bool], ...] = ()

    def to_json_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with camelCase keys and RFC 3339 times."""
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "serialNumber": self.serial_number_hex,
            "notBefore": _rfc3339(self.not_before),
            "notAfter": _rfc3339(self.not_after),
            "identity": self.identity,
            "claims": {key: list(values) for key, values in self.claims.items()},
            "dnsNames": list(self.dns_names),
            "ipAddresses": list(self.ip_addresses),
            "uris": list(self.uris),
            "emailAddresses": list(self.email_addresses),
            "key": self.key,
            "fingerprintSHA256": self.fingerprint_sha256,
            "isCA": self.is_ca,
            "signatureAlgorithm": self.signature_algorithm,
            "otherExtensions": [
                {"oid": oid, "critical": critical} for oid, critical in self.other_extensions
            ],
        }


def _rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def serial_hex(certificate: x509.Certificate) -> str:
    """The serial number as lowercase hex without separators."""
    return format(certificate.serial_number, "x")


def fingerprint_sha256(certificate: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER, lowercase hex without separators."""
    return certificate.fingerprint(hashes.SHA256()).hex()


def _sans(certificate: x509.Certificate) -> x509.SubjectAlternativeName | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None


def spiffe_uris(certificate: x509.Certificate) -> list[str]:
    """Every URI SAN whose scheme is ``spiffe`` (valid or not)."""
    sans = _sans(certificate)
    if sans is None:
        return []
    return [
        uri
        for uri in sans.get_values_for_type(x509.UniformResourceIdentifier)
        if spiffe.is_spiffe_uri(uri)
    ]


def identity_of(certificate: x509.Certificate) -> spiffe.SpiffeId | None:
    """The certificate's SPIFFE ID, or None unless it has exactly one valid one."""
    candidates = spiffe_uris(certificate)
    if len(candidates) != 1:
        return None
    try:
        return spiffe.parse_spiffe_id(candidates[0])
    except errors.PKIError:
        return None


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def describe(
    certificate: x509.Certificate,
    *,
    strict: bool = True,
    claims_oids: claims.ClaimsOids = claims.DEFAULT_OIDS,
) -> CertificateView:
    """Summarize a certificate.

    Args:
        certificate: Any certificate.
        strict: Raise on a malformed claims extension; when False, show no claims.
        claims_oids: The OIDs to read the claims extension under.

    Returns:
        The summary.

    Raises:
        PKIError: ``claims`` when the claims extension is present but malformed and
            ``strict`` is True.
    """
    sans = _sans(certificate)
    identity = identity_of(certificate)
    try:
        certificate_claims = claims.claims_of(certificate, claims_oids)
    except errors.PKIError:
        if strict:
            raise
        certificate_claims = {}
    try:
        key = keys.describe_key(keys.certificate_public_key(certificate))
    except errors.PKIError:
        key = type(certificate.public_key()).__name__
    other = tuple(
        (extension.oid.dotted_string, extension.critical)
        for extension in certificate.extensions
        if isinstance(extension.value, x509.UnrecognizedExtension)
        and extension.oid not in claims_oids.read
    )
    return CertificateView(
        subject=certificate.subject.rfc4514_string(),
        issuer=certificate.issuer.rfc4514_string(),
        serial_number_hex=serial_hex(certificate),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        identity=str(identity) if identity else None,
        claims=certificate_claims,
        dns_names=_san_values(sans, x509.DNSName),
        ip_addresses=tuple(str(ip) for ip in _san_values(sans, x509.IPAddress)),
        uris=_san_values(sans, x509.UniformResourceIdentifier),
        email_addresses=_san_values(sans, x509.RFC822Name),
        key=key,
        fingerprint_sha256=fingerprint_sha256(certificate),
        is_ca=_is_ca(certificate),
        signature_algorithm=_signature_algorithm_name(certificate),
        other_extensions=other,
    )


def _san_values(sans: x509.SubjectAlternativeName | None, kind: type[Any]) -> tuple[Any, ...]:
    """The values of one kind of SAN; none when the certificate has no SAN extension."""
    return () if sans is None else tuple(sans.get_values_for_type(kind))


def _signature_algorithm_name(certificate: x509.Certificate) -> str:
    oid = certificate.signature_algorithm_oid
    name = oid._name  # cryptography's registered short name
    return name if name and name != "Unknown OID" else oid.dotted_string


def load_pem_certificates(data: bytes) -> list[x509.Certificate]:
    """Read every PEM certificate in ``data``, ignoring other PEM blocks (keys...).

    Args:
        data: PEM text, e.g. a ``tls.crt`` or a combined PEM file.

    Returns:
        The certificates in order.

    Raises:
        PKIError: ``tls.crt`` when there is no certificate or one cannot be parsed.
    """
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise errors.PKIError("tls.crt", "no readable PEM certificate found") from None


def certificates_to_pem(certificates: Iterable[x509.Certificate]) -> bytes:
    """Concatenate certificates as PEM, in the order given."""
    return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certificates)
