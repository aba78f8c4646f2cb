"""Who is on the other end of a verified TLS connection.

`peer` reads the peer's leaf certificate from an `ssl.SSLSocket` or `ssl.SSLObject`
after the handshake and returns a `Peer`: its SPIFFE ID, trust domain, claims, DNS
names and expiry. The chain itself was verified by OpenSSL during the handshake
against ``ca.crt``; `peer` refuses connections whose context did not verify peers.
"""

from __future__ import annotations

import dataclasses
import datetime
import ssl

from cryptography import x509

from certmint.pki import claims as pki_claims
from certmint.pki import errors as pki_errors
from certmint.pki import extensions, spiffe
from certmint.workload import errors


@dataclasses.dataclass(frozen=True)
class Peer:
    """The authenticated identity of a TLS peer.

    Attributes:
        identity: The SPIFFE ID, e.g. ``"spiffe://cluster.local/ns/web/sa/api"``.
        trust_domain: The identity's trust domain, e.g. ``"cluster.local"``.
        path: The identity's path, e.g. ``"/ns/web/sa/api"``.
        claims: Claim key to its values, from the certmint claims extension; empty
            when the certificate carries none. A fresh dict per `Peer`.
        dns_names: The DNS SANs, in certificate order.
        not_after: When the certificate expires (timezone-aware, UTC).
        serial_number: The certificate's serial number.
        certificate: The parsed leaf certificate, for anything not covered above.
    """

    identity: str
    trust_domain: str
    path: str
    claims: dict[str, list[str]] = dataclasses.field(hash=False)
    dns_names: tuple[str, ...]
    not_after: datetime.datetime
    serial_number: int
    certificate: x509.Certificate = dataclasses.field(repr=False, compare=False, hash=False)

    def has_claim(self, key: str, value: str) -> bool:
        """Whether the claim ``key`` contains ``value``."""
        return value in self.claims.get(key, ())


def spiffe_id_of(certificate: x509.Certificate) -> spiffe.SpiffeId:
    """The certificate's SPIFFE ID, by the X509-SVID rule of exactly one.

    Args:
        certificate: A leaf certificate.

    Returns:
        The parsed ID.

    Raises:
        PeerError: ``NoIdentity`` without a ``spiffe://`` URI SAN, ``SeveralIdentities``
            with more than one, ``InvalidIdentity`` when it breaks the SPIFFE-ID rules.
    """
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        uris = names.value.get_values_for_type(x509.UniformResourceIdentifier)
    except x509.ExtensionNotFound:
        uris = []
    candidates = [uri for uri in uris if spiffe.is_spiffe_uri(uri)]
    if not candidates:
        raise errors.PeerError("NoIdentity", "the certificate has no spiffe:// URI SAN")
    if len(candidates) > 1:
        raise errors.PeerError(
            "SeveralIdentities",
            f"the certificate has {len(candidates)} spiffe:// URI SANs; "
            "an identity needs exactly one",
        )
    try:
        return spiffe.parse_spiffe_id(candidates[0])
    except pki_errors.PKIError as err:
        raise errors.PeerError("InvalidIdentity", err.message) from None


def peer_from_certificate(
    certificate: x509.Certificate,
    *,
    trust_domain: str | None = None,
    claims_oid: str | None = None,
) -> Peer:
    """Describe a peer from its (already verified) leaf certificate.

    Does not verify the certificate's signature, chain or validity period: call it
    only with a certificate that a TLS handshake verified.

    Args:
        certificate: The peer's leaf certificate.
        trust_domain: The trust domain the identity must belong to; ``None`` accepts
            any trust domain the CA vouches for.
        claims_oid: Your organization's claims OID (the operator's ``--claims-oid``),
            read instead of certmint's; ``None`` reads certmint's current and legacy OIDs.

    Returns:
        The peer.

    Raises:
        PeerError: No single valid SPIFFE ID (see `spiffe_id_of`),
            ``TrustDomainMismatch``, or ``InvalidClaims`` for a malformed claims extension.
        PKIError: ``claims_oid`` is not an OID certmint accepts.
    """
    oids = extensions.claims_oids(claims_oid, "claims_oid")
    spiffe_id = spiffe_id_of(certificate)
    if trust_domain is not None and not spiffe_id.member_of(trust_domain):
        raise errors.PeerError(
            "TrustDomainMismatch",
            f"{spiffe_id} is not in the trust domain {trust_domain!r}",
        )
    try:
        claims = pki_claims.claims_of(certificate, oids)
    except pki_errors.PKIError as err:
        raise errors.PeerError("InvalidClaims", err.message) from None
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        dns_names = tuple(names.value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        dns_names = ()
    return Peer(
        identity=str(spiffe_id),
        trust_domain=spiffe_id.trust_domain,
        path=spiffe_id.path,
        claims={key: list(values) for key, values in claims.items()},
        dns_names=dns_names,
        not_after=certificate.not_valid_after_utc,
        serial_number=certificate.serial_number,
        certificate=certificate,
    )


def peer(
    connection: ssl.SSLSocket | ssl.SSLObject,
    *,
    trust_domain: str | None = None,
    claims_oid: str | None = None,
) -> Peer:
    """Identify the peer of a TLS connection whose handshake has completed.

    Checks that the connection's context verifies peers (``CERT_REQUIRED``, or
    ``CERT_OPTIONAL`` with a certificate presented), that the peer presented a
    certificate with exactly one valid SPIFFE ID, and that the ID is in
    ``trust_domain``. Does not check revocation, and does not re-check what the
    handshake verified (chain, validity period, key usage).

    Args:
        connection: The TLS socket, or the ``ssl_object`` of an asyncio transport.
        trust_domain: The trust domain the peer must belong to; ``None`` accepts any
            the CA vouches for (`Credentials.peer` passes the workload's own).
        claims_oid: Your organization's claims OID; ``None`` reads certmint's (see
            `peer_from_certificate`).

    Returns:
        The peer.

    Raises:
        PeerError: ``NoCertificate``, ``NotVerified``, ``CertificateUnreadable``, or
            anything `peer_from_certificate` raises.
        PKIError: ``claims_oid`` is not an OID certmint accepts.
    """
    extensions.claims_oids(claims_oid, "claims_oid")  # a bad OID fails before any I/O
    if connection.context.verify_mode == ssl.CERT_NONE:
        raise errors.PeerError(
            "NotVerified", "the connection's TLS context does not verify peer certificates"
        )
    try:
        der = connection.getpeercert(binary_form=True)
    except ValueError:
        raise errors.PeerError("NoCertificate", "the TLS handshake has not completed") from None
    if not der:
        raise errors.PeerError("NoCertificate", "the peer presented no certificate")
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError:
        raise errors.PeerError(
            "CertificateUnreadable", "the peer certificate is not valid DER"
        ) from None
    return peer_from_certificate(certificate, trust_domain=trust_domain, claims_oid=claims_oid)
