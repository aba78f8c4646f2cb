"""Issuing leaf certificates (and CA certificates asked for with ``isCA``).

The leaf profile follows the SPIFFE X509-SVID rules whenever an identity is present:

* exactly one ``spiffe://`` URI SAN; other URIs may follow it;
* BasicConstraints cA=false, critical;
* KeyUsage critical: digitalSignature always; keyEncipherment only for RSA keys (the
  default usages ask for it, and it is dropped for ECDSA and Ed25519 keys, where it
  means nothing); never keyCertSign or cRLSign;
* ExtendedKeyUsage serverAuth + clientAuth by default (from ``usages``); omitted when
  ``usages`` names no extended usage;
* SubjectAltName critical when the subject is empty;
* a random serial (`building.sign`), notBefore backdated by
  `building.NOT_BEFORE_BACKDATE` (never before the CA's notBefore), notAfter clamped
  to the CA's (and its chain's) notAfter;
* SKI, AKI; the claims extension, non-critical, only when there are claims; then the
  raw extensions in the order given.

Everything is checked before anything is signed.
"""

from __future__ import annotations

import dataclasses
import datetime
import types
from collections.abc import Mapping

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certmint.pki import building, ca, claims, decode, errors, extensions, keys, names, spiffe

DEFAULT_USAGES = ("digital signature", "key encipherment", "server auth", "client auth")

# cert-manager's usage names, mapped to KeyUsage bits ...
KEY_USAGE_BITS: Mapping[str, str] = types.MappingProxyType(
    {
        "signing": "digital_signature",
        "digital signature": "digital_signature",
        "content commitment": "content_commitment",
        "key encipherment": "key_encipherment",
        "key agreement": "key_agreement",
        "data encipherment": "data_encipherment",
        "cert sign": "key_cert_sign",
        "crl sign": "crl_sign",
        "encipher only": "encipher_only",
        "decipher only": "decipher_only",
    }
)
# ... and to ExtendedKeyUsage purposes.
EXTENDED_USAGES: Mapping[str, x509.ObjectIdentifier] = types.MappingProxyType(
    {
        "any": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
        "server auth": ExtendedKeyUsageOID.SERVER_AUTH,
        "client auth": ExtendedKeyUsageOID.CLIENT_AUTH,
        "code signing": ExtendedKeyUsageOID.CODE_SIGNING,
        "email protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
        "s/mime": ExtendedKeyUsageOID.EMAIL_PROTECTION,
        "ipsec end system": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.5"),
        "ipsec tunnel": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.6"),
        "ipsec user": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.7"),
        "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
        "ocsp signing": ExtendedKeyUsageOID.OCSP_SIGNING,
        "microsoft sgc": x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.3"),
        "netscape sgc": x509.ObjectIdentifier("2.16.840.1.113730.4.1"),
    }
)
_CA_ONLY_BITS = frozenset({"key_cert_sign", "crl_sign"})
_EMPTY_CLAIMS: Mapping[str, tuple[str, ...]] = types.MappingProxyType({})
_DEFAULT_CLAIMS_OID = claims.CLAIMS_OID  # the dataclass below has a field named claims


@dataclasses.dataclass(frozen=True)
class Subject:
    """Subject attributes beyond the common name (each a tuple of values)."""

    organizations: tuple[str, ...] = ()
    organizational_units: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    provinces: tuple[str, ...] = ()
    localities: tuple[str, ...] = ()


# (spec field, attribute OID, X.520 upper bound) in the order they appear in the name.
_SUBJECT_FIELDS: tuple[tuple[str, str, x509.ObjectIdentifier, int], ...] = (
    ("countries", "countries", NameOID.COUNTRY_NAME, 2),
    ("provinces", "provinces", NameOID.STATE_OR_PROVINCE_NAME, 128),
    ("localities", "localities", NameOID.LOCALITY_NAME, 128),
    ("organizations", "organizations", NameOID.ORGANIZATION_NAME, 64),
    ("organizational_units", "organizationalUnits", NameOID.ORGANIZATIONAL_UNIT_NAME, 64),
)


@dataclasses.dataclass(frozen=True)
class LeafRequest:
    """What a certificate should say; the operator builds it from a Certificate spec.

    Attributes:
        public_key: The key to certify.
        duration: Requested lifetime from issuance; must be positive. A CA that
            expires sooner shortens it (see `IssuedCertificate.clamped`).
        spiffe_id: The workload identity, the first URI SAN.
        common_name: Optional subject CN; ``""`` counts as absent.
        subject: Other subject attributes.
        dns_names: DNS SANs (``*.example.com`` wildcards allowed).
        ip_addresses: IP SANs, as `ipaddress` objects.
        uris: More URI SANs (a second ``spiffe://`` URI is refused).
        email_addresses: rfc822Name SANs.
        claims: Authorization claims for the claims extension.
        claims_oid: The claims extension's OID (`claims.ClaimsOids.write`).
        extensions: Raw custom extensions.
        usages: cert-manager usage names (see `KEY_USAGE_BITS`, `EXTENDED_USAGES`).
        is_ca: Issue a CA certificate instead of a leaf.
    """

    public_key: keys.PublicKey
    duration: datetime.timedelta
    spiffe_id: spiffe.SpiffeId | None = None
    common_name: str | None = None
    subject: Subject = Subject()
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[names.IPAddress, ...] = ()
    uris: tuple[str, ...] = ()
    email_addresses: tuple[str, ...] = ()
    claims: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=lambda: _EMPTY_CLAIMS)
    claims_oid: x509.ObjectIdentifier = _DEFAULT_CLAIMS_OID
    extensions: tuple[extensions.RawExtension, ...] = ()
    usages: tuple[str, ...] = DEFAULT_USAGES
    is_ca: bool = False


@dataclasses.dataclass(frozen=True)
class IssuedCertificate:
    """A freshly signed certificate and the chain a peer needs to verify it.

    Attributes:
        certificate: The new certificate.
        chain: Intermediates between it and the root, nearest first, without the root
            (empty when a root or the key itself signed it).
        clamped: True when the CA's expiry cut the requested duration short.
    """

    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()
    clamped: bool = False

    @property
    def chain_pem(self) -> bytes:
        """``tls.crt``: the certificate, then the intermediates, PEM."""
        return decode.certificates_to_pem((self.certificate, *self.chain))

    @property
    def certificate_pem(self) -> bytes:
        """The certificate alone, PEM."""
        return decode.certificates_to_pem((self.certificate,))


@dataclasses.dataclass(frozen=True)
class _Usages:
    key_usage: x509.KeyUsage
    extended: tuple[x509.ObjectIdentifier, ...]


def validate(request: LeafRequest) -> None:
    """Check every part of a request; the first problem found is raised.

    Args:
        request: The request.

    Raises:
        PKIError: Naming the field: ``duration``, ``subject`` (nothing named at all),
            ``commonName``, ``subject.<attr>[i]``, ``dnsNames[i]``, ``ipAddresses[i]``,
            ``uris[i]``, ``emailAddresses[i]``, ``claims.<key>``, ``extensions[i].oid``,
            ``extensions[i].value``, ``usages[i]`` or ``privateKey``.
    """
    _prepare(request)


@dataclasses.dataclass(frozen=True)
class _Prepared:
    subject: x509.Name
    sans: list[x509.GeneralName]
    usages: _Usages


def _prepare(request: LeafRequest) -> _Prepared:
    subject, sans = _build_subject(request), _build_sans(request)
    if not subject and not sans:
        raise errors.PKIError(
            "subject",
            "the certificate would name nothing: give it an identity (serviceAccountName), "
            "a commonName, or dnsNames, ipAddresses, uris or emailAddresses",
        )
    usages = _usages_for(request)
    _check_duration(request.duration)
    keys.key_spec_of(request.public_key).normalized()
    claims.normalize_claims(request.claims)
    _check_raw_extensions(request.extensions, request.claims_oid)
    return _Prepared(subject, sans, usages)


def _check_duration(duration: datetime.timedelta) -> None:
    if not isinstance(duration, datetime.timedelta) or duration <= datetime.timedelta(0):
        raise errors.PKIError("duration", f"must be a positive duration, not {duration}")


def _build_subject(request: LeafRequest) -> x509.Name:
    attributes: list[x509.NameAttribute[str]] = []
    for attr, spec_name, oid, max_length in _SUBJECT_FIELDS:
        for index, value in enumerate(getattr(request.subject, attr)):
            field = f"subject.{spec_name}[{index}]"
            if oid == NameOID.COUNTRY_NAME:
                names.check_country(value, field)
            else:
                names.check_subject_value(value, field, max_length=max_length)
            attributes.append(x509.NameAttribute(oid, value))
    if request.common_name:
        names.check_subject_value(
            request.common_name, "commonName", max_length=names.MAX_COMMON_NAME_LENGTH
        )
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, request.common_name))
    return x509.Name(attributes)


def _build_sans(request: LeafRequest) -> list[x509.GeneralName]:
    sans: list[x509.GeneralName] = []
    if request.spiffe_id is not None:
        if not isinstance(request.spiffe_id, spiffe.SpiffeId):
            raise errors.PKIError("serviceAccountName", "the identity must be a SpiffeId")
        if not request.spiffe_id.path and not request.is_ca:
            raise errors.PKIError(
                "serviceAccountName", "a workload identity needs a path after the trust domain"
            )
        sans.append(x509.UniformResourceIdentifier(str(request.spiffe_id)))
    spiffe_count = len(sans)
    for index, uri in enumerate(request.uris):
        field = f"uris[{index}]"
        names.check_uri(uri, field)
        if spiffe.is_spiffe_uri(uri):
            spiffe_count += 1
            if spiffe_count > 1:
                raise errors.PKIError(
                    field, f"{uri!r} would be a second SPIFFE ID; a certificate carries exactly one"
                )
            spiffe.parse_spiffe_id(uri, field)
        sans.append(x509.UniformResourceIdentifier(uri))
    for index, name in enumerate(request.dns_names):
        names.check_dns_name(name, f"dnsNames[{index}]")
        sans.append(x509.DNSName(name))
    for index, address in enumerate(request.ip_addresses):
        sans.append(x509.IPAddress(names.check_ip_address(address, f"ipAddresses[{index}]")))
    for index, email in enumerate(request.email_addresses):
        names.check_email(email, f"emailAddresses[{index}]")
        sans.append(x509.RFC822Name(email))
    _require_unique(sans)
    return sans


def _require_unique(sans: list[x509.GeneralName]) -> None:
    seen: set[x509.GeneralName] = set()
    for name in sans:
        if name in seen:
            raise errors.PKIError(_san_field(name), f"{name.value} is listed twice")
        seen.add(name)


def _san_field(name: x509.GeneralName) -> str:
    if isinstance(name, x509.DNSName):
        return "dnsNames"
    if isinstance(name, x509.IPAddress):
        return "ipAddresses"
    if isinstance(name, x509.RFC822Name):
        return "emailAddresses"
    return "uris"


def _usages_for(request: LeafRequest) -> _Usages:
    bits = {"digital_signature"}
    extended: list[x509.ObjectIdentifier] = []
    for index, usage in enumerate(request.usages):
        field = f"usages[{index}]"
        if usage in KEY_USAGE_BITS:
            bit = KEY_USAGE_BITS[usage]
            if bit in _CA_ONLY_BITS and not request.is_ca:
                raise errors.PKIError(field, f"{usage!r} is only for CA certificates (isCA: true)")
            bits.add(bit)
        elif usage in EXTENDED_USAGES:
            if EXTENDED_USAGES[usage] not in extended:
                extended.append(EXTENDED_USAGES[usage])
        else:
            raise errors.PKIError(field, f"unknown usage {usage!r}")
    if not isinstance(request.public_key, rsa.RSAPublicKey):
        bits.discard("key_encipherment")
    if {"encipher_only", "decipher_only"} & bits and "key_agreement" not in bits:
        raise errors.PKIError("usages", "'encipher only' and 'decipher only' need 'key agreement'")
    if {"encipher_only", "decipher_only"} <= bits:
        raise errors.PKIError("usages", "'encipher only' and 'decipher only' exclude each other")
    if request.is_ca:
        bits |= _CA_ONLY_BITS
    return _Usages(building.key_usage(**dict.fromkeys(bits, True)), tuple(extended))


def _check_raw_extensions(
    raw: tuple[extensions.RawExtension, ...], claims_oid: x509.ObjectIdentifier
) -> None:
    seen: set[str] = set()
    for index, extension in enumerate(raw):
        field = f"extensions[{index}]"
        extensions.check_oid(extension.oid, f"{field}.oid")
        if extension.oid == claims_oid.dotted_string:
            raise errors.PKIError(
                f"{field}.oid", f"{extension.oid} is the claims extension; use spec.claims"
            )
        if extension.oid in seen:
            raise errors.PKIError(f"{field}.oid", f"{extension.oid} is listed twice")
        seen.add(extension.oid)
        extensions.check_der_element(extension.value_der, f"{field}.value")


def issue(
    request: LeafRequest,
    signer: ca.CertificateAuthority | keys.PrivateKey,
    now: datetime.datetime,
) -> IssuedCertificate:
    """Sign a certificate for a request.

    Args:
        request: What the certificate should say.
        signer: The issuing CA, or the certificate's own private key for a self-signed
            certificate (whose subject must then be non-empty, since it is also the
            issuer name).
        now: The current time (aware).

    Returns:
        The certificate and its chain.

    Raises:
        PKIError: A bad request (see `validate`), a self-signing key that does not match
            ``request.public_key`` (``privateKey``), or a self-signed request without a
            subject (``commonName``).
        CAError: ``CAExpired`` when the CA cannot sign at ``now``; ``CAInvalid`` when the
            CA only becomes valid after the certificate would end (clock trouble).
    """
    prepared = _prepare(request)
    issuer = _issuer_for(signer, request, prepared.subject, now)
    requested_not_after = building.whole_seconds(now + request.duration)
    not_after = min(requested_not_after, issuer.latest_not_after or requested_not_after)
    not_before = building.whole_seconds(now - building.NOT_BEFORE_BACKDATE)
    if issuer.earliest_not_before is not None:
        not_before = max(not_before, issuer.earliest_not_before)
    if not_after <= not_before:
        raise errors.CAError(
            "tls.crt",
            f"the CA is only valid from {not_before.isoformat()}, after this certificate "
            f"would end ({not_after.isoformat()}); check the clocks",
        )
    blueprint = building.Blueprint(
        subject=prepared.subject,
        issuer=issuer.name,
        public_key=request.public_key,
        not_before=not_before,
        not_after=not_after,
        extensions=_leaf_extensions(
            request,
            subject=prepared.subject,
            sans=prepared.sans,
            usages=prepared.usages,
            issuer_certificate=issuer.certificate,
            path_length=issuer.child_path_length,
        ),
    )
    return IssuedCertificate(
        building.sign(blueprint, issuer.key), issuer.chain, not_after < requested_not_after
    )


@dataclasses.dataclass(frozen=True)
class _Issuer:
    """What the signing side contributes to a certificate."""

    name: x509.Name
    certificate: x509.Certificate | None
    key: keys.PrivateKey
    chain: tuple[x509.Certificate, ...]
    child_path_length: int | None
    earliest_not_before: datetime.datetime | None
    latest_not_after: datetime.datetime | None


def _issuer_for(
    signer: ca.CertificateAuthority | keys.PrivateKey,
    request: LeafRequest,
    subject: x509.Name,
    now: datetime.datetime,
) -> _Issuer:
    if isinstance(signer, ca.CertificateAuthority):
        ca.check_usable(signer, now)
        return _Issuer(
            name=signer.certificate.subject,
            certificate=signer.certificate,
            key=signer.private_key,
            chain=_intermediates(signer),
            child_path_length=ca.child_path_length(signer, None) if request.is_ca else None,
            earliest_not_before=signer.not_before,
            latest_not_after=signer.not_after,
        )
    if signer.public_key() != request.public_key:
        raise errors.PKIError(
            "privateKey", "a self-signed certificate must be signed by its own key"
        )
    if not subject:
        raise errors.PKIError(
            "commonName",
            "a self-signed certificate needs a subject (commonName or subject), "
            "because its issuer name is its subject",
        )
    return _Issuer(subject, None, signer, (), None, None, None)


def _intermediates(signer: ca.CertificateAuthority) -> tuple[x509.Certificate, ...]:
    """The CA certificate and its issuers, minus the root (which peers already trust)."""
    path = (signer.certificate, *signer.chain)
    return path[:-1]


def _leaf_extensions(
    request: LeafRequest,
    *,
    subject: x509.Name,
    sans: list[x509.GeneralName],
    usages: _Usages,
    issuer_certificate: x509.Certificate | None,
    path_length: int | None,
) -> list[building.Extension]:
    ski, aki = building.key_identifiers(request.public_key, issuer_certificate)
    result = [
        building.Extension(
            x509.BasicConstraints(ca=request.is_ca, path_length=path_length), critical=True
        ),
        building.Extension(usages.key_usage, critical=True),
    ]
    if usages.extended:
        result.append(
            building.Extension(x509.ExtendedKeyUsage(list(usages.extended)), critical=False)
        )
    if sans:
        result.append(building.Extension(x509.SubjectAlternativeName(sans), critical=not subject))
    result += [ski, aki]
    if request.claims:
        claims_extension = claims.claims_extension(request.claims, request.claims_oid)
        result.append(building.Extension(claims_extension, critical=False))
    result += [building.Extension(raw.to_x509(), raw.critical) for raw in request.extensions]
    return result
