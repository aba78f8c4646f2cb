"""The one place certificates are built and signed, for CAs and leaves alike.

Callers decide the profile (names, validity, extensions); this module turns it into a
single fluent `CertificateBuilder` chain with a fresh random serial and the right hash
for the signing key.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence

from cryptography import x509

from certmint.pki import keys

# How far notBefore is set before the moment of issuance. Peers whose clocks run a
# little behind the operator's would otherwise reject a brand-new certificate as "not
# yet valid". 30 s covers NTP-synced nodes with room to spare (SPIRE uses 10 s), and is
# small next to the shortest lifetime certmint issues (1 minute by default).
NOT_BEFORE_BACKDATE = datetime.timedelta(seconds=30)
#: How far in the future a notBefore may lie and still count as valid now: the clock
#: skew tolerated between certmint and whoever made a CA (docs/operations.md).
CLOCK_SKEW_ALLOWANCE = datetime.timedelta(seconds=30)


@dataclasses.dataclass(frozen=True)
class Extension:
    """One extension to add, with its critical flag."""

    value: x509.ExtensionType
    critical: bool


@dataclasses.dataclass(frozen=True)
class Blueprint:
    """Everything a certificate says, short of the serial number and signature.

    Attributes:
        subject: Subject name (may be empty for SPIFFE leaves).
        issuer: Issuer name: the signer's subject, or ``subject`` when self-signed.
        public_key: The key being certified.
        not_before: Start of validity (whole seconds).
        not_after: End of validity (whole seconds).
        extensions: Extensions in the order they appear in the certificate.
    """

    subject: x509.Name
    issuer: x509.Name
    public_key: keys.PublicKey
    not_before: datetime.datetime
    not_after: datetime.datetime
    extensions: Sequence[Extension]


def sign(blueprint: Blueprint, signer: keys.PrivateKey) -> x509.Certificate:
    """Build and sign a certificate.

    Args:
        blueprint: The certificate contents.
        signer: The issuer's private key.

    Returns:
        The signed certificate, with a random positive serial of up to 159 bits
        (cryptography's `random_serial_number`, well above the 64 bits required).
    """
    builder = (
        x509.CertificateBuilder()
        .subject_name(blueprint.subject)
        .issuer_name(blueprint.issuer)
        .public_key(blueprint.public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(blueprint.not_before)
        .not_valid_after(blueprint.not_after)
    )
    for extension in blueprint.extensions:
        builder = builder.add_extension(extension.value, critical=extension.critical)
    return builder.sign(signer, keys.signature_hash(signer))


def whole_seconds(moment: datetime.datetime) -> datetime.datetime:
    """Drop sub-second precision: certificates carry whole seconds only."""
    return moment.replace(microsecond=0)


def key_usage(
    *,
    digital_signature: bool = False,
    content_commitment: bool = False,
    key_encipherment: bool = False,
    data_encipherment: bool = False,
    key_agreement: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
    encipher_only: bool = False,
    decipher_only: bool = False,
) -> x509.KeyUsage:
    """A KeyUsage value where only the named bits are set."""
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,
        key_encipherment=key_encipherment,
        data_encipherment=data_encipherment,
        key_agreement=key_agreement,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=encipher_only,
        decipher_only=decipher_only,
    )


def key_identifiers(
    public_key: keys.PublicKey, issuer: x509.Certificate | None
) -> tuple[Extension, Extension]:
    """SubjectKeyIdentifier and AuthorityKeyIdentifier extensions.

    Args:
        public_key: The key being certified.
        issuer: The issuing CA certificate, or None when self-signed.

    Returns:
        (SKI, AKI), both non-critical as RFC 5280 requires. The AKI repeats the issuer's
        own SKI when it has one, so chains built by other tools still link up.
    """
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    if issuer is None:
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    else:
        try:
            issuer_ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
            aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski.value)
        except x509.ExtensionNotFound:
            aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(
                keys.certificate_public_key(issuer)
            )
    return Extension(ski, critical=False), Extension(aki, critical=False)
