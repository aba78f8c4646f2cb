"""Certificate authorities: generate a root, issue an intermediate, load one from a Secret."""

from __future__ import annotations

import dataclasses
import datetime
import functools
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from certmint.pki import building, errors, keys, names


@dataclasses.dataclass(frozen=True)
class CertificateAuthority:
    """A CA certificate with its private key and the chain above it.

    Attributes:
        certificate: The CA certificate that signs.
        private_key: Its private key (never shown in the repr).
        chain: The CA certificate's own issuers, nearest first, root last; empty when
            ``certificate`` is itself the root.
    """

    certificate: x509.Certificate
    # Compared through the certificate: a CA's key is the one its certificate names.
    private_key: keys.PrivateKey = dataclasses.field(repr=False, compare=False)
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def root(self) -> x509.Certificate:
        """The trust anchor: the last certificate of the chain, or the CA itself."""
        return self.chain[-1] if self.chain else self.certificate

    @property
    def not_before(self) -> datetime.datetime:
        """Start of the CA certificate's validity (UTC)."""
        return self.certificate.not_valid_before_utc

    @property
    def not_after(self) -> datetime.datetime:
        """End of the CA's usable life (UTC): the earliest notAfter along its chain."""
        return min(cert.not_valid_after_utc for cert in (self.certificate, *self.chain))

    @functools.cached_property
    def fingerprint_sha256(self) -> str:
        """SHA-256 of the CA certificate's DER, lowercase hex without separators."""
        return self.certificate.fingerprint(hashes.SHA256()).hex()

    @property
    def subject(self) -> str:
        """The CA certificate's subject in RFC 4514 form."""
        return self.certificate.subject.rfc4514_string()

    @property
    def path_length(self) -> int | None:
        """The CA's pathLenConstraint (None when unlimited)."""
        return _basic_constraints(self.certificate).path_length


def _basic_constraints(certificate: x509.Certificate) -> x509.BasicConstraints:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return x509.BasicConstraints(ca=False, path_length=None)


def _ca_name(common_name: str) -> x509.Name:
    if not isinstance(common_name, str) or not common_name.strip():
        raise errors.PKIError("commonName", "a CA needs a non-empty common name")
    if len(common_name) > names.MAX_COMMON_NAME_LENGTH:
        raise errors.PKIError(
            "commonName", f"longer than {names.MAX_COMMON_NAME_LENGTH} characters"
        )
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _check_duration(duration: datetime.timedelta) -> None:
    if duration <= datetime.timedelta(0):
        raise errors.PKIError("duration", f"must be positive, not {duration}")


def _check_path_length(path_length: int | None) -> None:
    if path_length is not None and (isinstance(path_length, bool) or path_length < 0):
        raise errors.PKIError("pathLength", f"must be a non-negative integer, not {path_length!r}")


def _ca_extensions(
    public_key: keys.PublicKey,
    issuer: x509.Certificate | None,
    path_length: int | None,
    permitted_dns_domains: Sequence[str],
) -> list[building.Extension]:
    ski, aki = building.key_identifiers(public_key, issuer)
    extensions = [
        building.Extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True),
        building.Extension(
            building.key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True),
            critical=True,
        ),
        ski,
        aki,
    ]
    if permitted_dns_domains:
        subtrees: list[x509.GeneralName] = [x509.DNSName(d) for d in permitted_dns_domains]
        extensions.append(
            building.Extension(
                x509.NameConstraints(permitted_subtrees=subtrees, excluded_subtrees=None),
                critical=True,
            )
        )
    return extensions


def generate_root_ca(  # noqa: PLR0917  # positional signature fixed by the PKI API (issue #3)
    common_name: str,
    duration: datetime.timedelta,
    key_spec: keys.KeySpec,
    now: datetime.datetime,
    path_length: int | None = None,
    permitted_dns_domains: Sequence[str] = (),
) -> CertificateAuthority:
    """Generate a self-signed root CA with a fresh key.

    The root carries BasicConstraints cA=true (critical), KeyUsage keyCertSign, cRLSign
    and digitalSignature (critical), SKI/AKI, and optionally DNS name constraints.

    Args:
        common_name: Subject CN of the root.
        duration: Lifetime from ``now``.
        key_spec: Key algorithm and size.
        now: The current time (aware). notBefore is backdated by
            `building.NOT_BEFORE_BACKDATE`.
        path_length: pathLenConstraint; None for unlimited.
        permitted_dns_domains: DNS name constraints (``"example.com"``, or
            ``".example.com"`` for subdomains only). URI and IP SANs are not constrained.

    Returns:
        The new CA (empty chain).

    Raises:
        PKIError: A bad common name, duration, path length, key spec or domain; the
            field says which.
    """
    subject = _ca_name(common_name)
    _check_duration(duration)
    _check_path_length(path_length)
    for index, domain in enumerate(permitted_dns_domains):
        bare = domain[1:] if domain.startswith(".") else domain
        names.check_dns_name(bare, f"permittedDNSDomains[{index}]", allow_wildcard=False)
    private_key = keys.generate_private_key(key_spec)
    public_key = private_key.public_key()
    blueprint = building.Blueprint(
        subject=subject,
        issuer=subject,
        public_key=public_key,
        not_before=building.whole_seconds(now - building.NOT_BEFORE_BACKDATE),
        not_after=building.whole_seconds(now + duration),
        extensions=_ca_extensions(public_key, None, path_length, permitted_dns_domains),
    )
    return CertificateAuthority(building.sign(blueprint, private_key), private_key, ())


def check_usable(ca: CertificateAuthority, now: datetime.datetime) -> None:
    """Check that a CA may sign at ``now``.

    Raises:
        CAError: ``CAExpired`` when ``now`` is at or past the notAfter of the CA or of a
            certificate above it; ``CANotYetValid`` when one of their notBefore lies
            more than `building.CLOCK_SKEW_ALLOWANCE` after ``now``.
    """
    for certificate in (ca.certificate, *ca.chain):
        which = (
            "the CA certificate"
            if certificate is ca.certificate
            else (f"issuer {certificate.subject.rfc4514_string()!r} in its chain")
        )
        if certificate.not_valid_before_utc > now + building.CLOCK_SKEW_ALLOWANCE:
            raise errors.CAError(
                "tls.crt",
                f"{which} is not valid before "
                f"{certificate.not_valid_before_utc.isoformat()}; certificates it signed "
                "would not be valid yet, so it signs nothing until then",
                reason="CANotYetValid",
            )
        if now >= certificate.not_valid_after_utc:
            raise errors.CAError(
                "tls.crt",
                f"{which} expired at {certificate.not_valid_after_utc.isoformat()}",
                reason="CAExpired",
            )


def child_path_length(parent: CertificateAuthority, requested: int | None) -> int | None:
    """The pathLenConstraint for a CA issued by ``parent``.

    Args:
        parent: The issuing CA.
        requested: The constraint asked for, or None for "as much as the parent allows".

    Returns:
        The constraint to put in the new CA certificate.

    Raises:
        PKIError: ``isCA`` when the parent may not issue CAs (pathLen 0), or
            ``pathLength`` when the request exceeds what the parent allows.
    """
    _check_path_length(requested)
    limit = parent.path_length
    if limit is None:
        return requested
    if limit == 0:
        raise errors.PKIError(
            "isCA", f"the issuing CA {parent.subject!r} has pathLen 0 and cannot issue CAs"
        )
    if requested is None:
        return limit - 1
    if requested > limit - 1:
        raise errors.PKIError(
            "pathLength", f"at most {limit - 1} under the issuing CA, not {requested}"
        )
    return requested


def issue_intermediate_ca(  # noqa: PLR0917  # positional signature fixed by the PKI API
    parent: CertificateAuthority,
    common_name: str,
    duration: datetime.timedelta,
    key_spec: keys.KeySpec,
    now: datetime.datetime,
    path_length: int | None = None,
) -> CertificateAuthority:
    """Issue an intermediate CA with a fresh key under ``parent``.

    Args:
        parent: The signing CA.
        common_name: Subject CN of the intermediate.
        duration: Requested lifetime; clamped to the parent's notAfter.
        key_spec: Key algorithm and size.
        now: The current time (aware).
        path_length: pathLenConstraint; None means one less than the parent's, or
            unlimited under an unlimited parent.

    Returns:
        The new CA; its chain is the parent followed by the parent's chain.

    Raises:
        PKIError: Bad arguments (field named), or a parent that may not issue CAs.
        CAError: ``CAExpired`` when the parent has expired.
    """
    subject = _ca_name(common_name)
    _check_duration(duration)
    check_usable(parent, now)
    child_limit = child_path_length(parent, path_length)
    private_key = keys.generate_private_key(key_spec)
    public_key = private_key.public_key()
    blueprint = building.Blueprint(
        subject=subject,
        issuer=parent.certificate.subject,
        public_key=public_key,
        not_before=max(
            building.whole_seconds(now - building.NOT_BEFORE_BACKDATE), parent.not_before
        ),
        not_after=min(building.whole_seconds(now + duration), parent.not_after),
        extensions=_ca_extensions(public_key, parent.certificate, child_limit, ()),
    )
    certificate = building.sign(blueprint, parent.private_key)
    return CertificateAuthority(certificate, private_key, (parent.certificate, *parent.chain))


def load_ca(cert_chain_pem: bytes, key_pem: bytes, now: datetime.datetime) -> CertificateAuthority:
    """Load a CA from PEM (a ``kubernetes.io/tls`` Secret's ``tls.crt`` and ``tls.key``).

    ``tls.crt`` holds the CA certificate first, then optionally its issuers in order. A
    CA certificate must have BasicConstraints cA=true and a KeyUsage with keyCertSign
    (X.509 verifiers, cryptography's included, refuse CAs without one).

    Args:
        cert_chain_pem: The CA certificate followed by its chain, PEM.
        key_pem: The CA private key, unencrypted PEM.
        now: The current time (aware).

    Returns:
        The CA.

    Raises:
        CAError: ``CAInvalid`` for unreadable PEM, a chain that does not link up or an
            unsupported key; ``CANotACA`` when a certificate is not a CA;
            ``CAKeyMismatch`` when the key does not belong to the certificate;
            ``CAExpired`` when ``now`` is at or past a notAfter in the chain;
            ``CANotYetValid`` when a notBefore in the chain is still ahead (beyond
            `building.CLOCK_SKEW_ALLOWANCE`).
    """
    try:
        certificates = x509.load_pem_x509_certificates(cert_chain_pem)
    except ValueError:
        raise errors.CAError("tls.crt", "no PEM certificate could be read") from None
    try:
        private_key = keys.load_private_key_pem(key_pem, "tls.key")
        public_key = keys.certificate_public_key(certificates[0])
    except errors.PKIError as err:
        raise errors.CAError(err.field, err.message, reason="CAInvalid") from None
    for index, certificate in enumerate(certificates):
        _require_ca(certificate, index)
    if public_key != private_key.public_key():
        raise errors.CAError(
            "tls.key",
            "the private key does not belong to the CA certificate",
            reason="CAKeyMismatch",
        )
    for index in range(len(certificates) - 1):
        _require_issued_by(certificates[index], certificates[index + 1], index)
    ca = CertificateAuthority(certificates[0], private_key, tuple(certificates[1:]))
    check_usable(ca, now)
    return ca


def _require_ca(certificate: x509.Certificate, index: int) -> None:
    where = f"certificate {index} ({certificate.subject.rfc4514_string()!r})"
    if not _basic_constraints(certificate).ca:
        raise errors.CAError(
            "tls.crt", f"{where} is not a CA (BasicConstraints cA is not true)", reason="CANotACA"
        )
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise errors.CAError(
            "tls.crt",
            f"{where} has no KeyUsage extension; a CA needs keyCertSign",
            reason="CANotACA",
        ) from None
    if not usage.key_cert_sign:
        raise errors.CAError(
            "tls.crt", f"{where} lacks the keyCertSign key usage", reason="CANotACA"
        )


def _require_issued_by(child: x509.Certificate, parent: x509.Certificate, index: int) -> None:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        raise errors.CAError(
            "tls.crt",
            f"certificate {index} is not signed by certificate {index + 1}; "
            "order it CA first, root last",
        ) from None
