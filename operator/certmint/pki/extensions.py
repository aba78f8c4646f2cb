"""Raw custom extensions: OID checks and value encoding.

A Certificate may carry extensions the issuer's policy allows by OID. certmint never
lets a raw extension stand in for a standard one: any OID in the arcs below is refused,
because a user-supplied value there could widen what the certificate may do (a second
SAN, a CA flag, a forged SCT...).

=============================  ==============================================
Reserved arc                   Why
=============================  ==============================================
2.5.29                         id-ce: every RFC 5280 certificate extension
1.3.6.1.5.5.7.1                id-pe: authorityInfoAccess, TLS feature, ...
1.3.6.1.5.5.7.48.1             OCSP extensions (ocsp-nocheck, nonce, ...)
1.3.6.1.4.1.11129.2.4          Certificate Transparency (SCT list, poison)
2.16.840.1.113730.1            Netscape certificate extensions
1.3.6.1.4.1.311.20.2           Microsoft certificate template name
1.3.6.1.4.1.311.21             Microsoft CA / template extensions
1.2.840.113556.1.8000.2554...  certmint's own arc (the claims extension)
2.25.2550375993...1960         certmint's legacy arc (claims, read only)
=============================  ==============================================
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import re

from cryptography import x509
from pyasn1.codec.der import decoder as der_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import char, univ

from certmint.pki import claims, errors

VALUE_KINDS = ("utf8String", "integer", "boolean", "der")

RESERVED_ARCS: dict[str, str] = {
    "2.5.29": "standard certificate extensions (id-ce)",
    "1.3.6.1.5.5.7.1": "PKIX private extensions such as authorityInfoAccess (id-pe)",
    "1.3.6.1.5.5.7.48.1": "OCSP extensions",
    "1.3.6.1.4.1.11129.2.4": "Certificate Transparency (SCTs, precertificate poison)",
    "2.16.840.1.113730.1": "Netscape certificate extensions",
    "1.3.6.1.4.1.311.20.2": "the Microsoft certificate template name",
    "1.3.6.1.4.1.311.21": "Microsoft CA and template extensions",
    claims.PROJECT_OID_ARC: "certmint's own extensions, such as the claims extension",
    claims.LEGACY_OID_ARC: "certmint's own extensions (the first claims OID, still read)",
}
_CERTMINT_ARCS = (claims.PROJECT_OID_ARC, claims.LEGACY_OID_ARC)

#: Go's asn1.ObjectIdentifier is an []int that refuses arcs above this (golang/go#30757).
MAX_PORTABLE_ARC = 2**31 - 1

_OID_SYNTAX = re.compile(r"[012](\.(0|[1-9][0-9]*))+")


@dataclasses.dataclass(frozen=True)
class RawExtension:
    """A custom extension ready to be added to a certificate.

    Attributes:
        oid: Dotted-decimal OID, checked with `check_oid`.
        critical: The critical flag. Peers reject certificates with critical
            extensions they do not understand; keep it False unless every peer knows it.
        value_der: The ``extnValue`` contents: exactly one DER element.
    """

    oid: str
    critical: bool
    value_der: bytes

    def to_x509(self) -> x509.UnrecognizedExtension:
        """The extension value for cryptography's certificate builder."""
        return x509.UnrecognizedExtension(x509.ObjectIdentifier(self.oid), self.value_der)


def check_oid(oid: str, field: str) -> x509.ObjectIdentifier:
    """Check that an OID is well formed and free for custom use.

    Args:
        oid: Dotted-decimal text, e.g. ``"1.3.6.1.4.1.55555.1.7"``.
        field: The spec field to name in an error, e.g. ``"extensions[0].oid"``.

    Returns:
        The OID object.

    Raises:
        PKIError: The text is not a dotted-decimal OID (at least two arcs, first arc
            0-2, second arc below 40 under 0 and 1, no leading zeros), or the OID lies
            in a reserved arc (see the module docstring).
    """
    _check_syntax(oid, field)
    for arc, why in RESERVED_ARCS.items():
        if oid == arc or oid.startswith(arc + "."):
            raise errors.PKIError(
                field, f"{oid} is reserved for {why} and cannot be set as a raw extension"
            )
    try:
        return x509.ObjectIdentifier(oid)
    except ValueError:
        raise errors.PKIError(
            field, f"{oid!r} is not an object identifier cryptography accepts"
        ) from None


def _check_syntax(oid: str, field: str) -> list[int]:
    if not isinstance(oid, str) or not _OID_SYNTAX.fullmatch(oid):
        raise errors.PKIError(field, f"{oid!r} is not a dotted-decimal object identifier")
    arcs = [int(arc) for arc in oid.split(".")]
    if arcs[0] in {0, 1} and arcs[1] >= 40:
        raise errors.PKIError(
            field, f"{oid!r}: under arc {arcs[0]} the second arc must be below 40"
        )
    return arcs


@functools.lru_cache(maxsize=16)
def claims_oids(oid: str | None, field: str = "--claims-oid") -> claims.ClaimsOids:
    """The OIDs to write and read the claims extension under.

    Args:
        oid: An organization's own OID (e.g. under its Private Enterprise Number), which
            then replaces certmint's for writing *and* reading; ``None`` for certmint's
            default (write `claims.CLAIMS_OID`, read it or `claims.LEGACY_CLAIMS_OID`).
        field: What to name in an error: a flag or parameter name.

    Returns:
        The OIDs.

    Raises:
        PKIError: ``oid`` is not a dotted-decimal OID, has an arc above 2**31 - 1 (Go,
            and so most TLS peers in a cluster, could not parse such certificates), or
            lies in an arc reserved for standard extensions.
    """
    if oid is None:
        return claims.DEFAULT_OIDS
    arcs = _check_syntax(oid, field)
    if max(arcs) > MAX_PORTABLE_ARC:
        raise errors.PKIError(
            field, f"{oid}: an arc above 2**31 - 1 makes certificates unparseable in Go"
        )
    for arc, why in RESERVED_ARCS.items():
        if arc not in _CERTMINT_ARCS and (oid == arc or oid.startswith(arc + ".")):
            raise errors.PKIError(field, f"{oid} is reserved for {why}")
    chosen = x509.ObjectIdentifier(oid)
    return claims.ClaimsOids(write=chosen, read=(chosen,))


def encode_value(kind: str, value: object, field: str = "extensions.value") -> bytes:
    """DER-encode a spec extension value.

    Args:
        kind: ``"utf8String"`` (a str), ``"integer"`` (an int), ``"boolean"`` (a bool) or
            ``"der"`` (base64 text of one DER element, checked and passed through).
        value: The value from the spec.
        field: The spec field to name in an error, e.g. ``"extensions[0].value"``.

    Returns:
        The DER bytes for ``extnValue``.

    Raises:
        PKIError: Unknown kind, a value of the wrong type, or ``der`` text that is not
            base64 of exactly one canonical DER element.
    """
    if kind == "utf8String":
        if not isinstance(value, str):
            raise errors.PKIError(field, f"utf8String needs text, not {type(value).__name__}")
        try:
            value.encode()
        except UnicodeEncodeError:
            raise errors.PKIError(field, "utf8String is not valid Unicode") from None
        return _der(char.UTF8String(value))
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise errors.PKIError(
                field, f"integer needs a whole number, not {type(value).__name__}"
            )
        return _der(univ.Integer(value))
    if kind == "boolean":
        if not isinstance(value, bool):
            raise errors.PKIError(field, f"boolean needs true or false, not {type(value).__name__}")
        return _der(univ.Boolean(value))
    if kind == "der":
        if not isinstance(value, str):
            raise errors.PKIError(field, f"der needs base64 text, not {type(value).__name__}")
        try:
            value_der = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise errors.PKIError(field, "der is not valid base64") from None
        check_der_element(value_der, field)
        return value_der
    raise errors.PKIError(
        field, f"unknown value kind {kind!r}; use one of {', '.join(VALUE_KINDS)}"
    )


def _der(value: object) -> bytes:
    encoded: bytes = der_encoder.encode(value)
    return encoded


def check_der_element(value_der: bytes, field: str) -> None:
    """Check that bytes are exactly one element in canonical DER.

    pyasn1 decodes the element without a schema and re-encodes it; the bytes must come
    back unchanged. Universal types are checked deeply; a context-specific tag must be
    constructed (``[n] EXPLICIT`` style), since its contents cannot be decoded without
    a schema otherwise.

    Args:
        value_der: The candidate bytes.
        field: The spec field to name in an error.

    Raises:
        PKIError: The bytes are empty, not DER, not canonical, or followed by more bytes.
    """
    if not value_der:
        raise errors.PKIError(field, "the DER value is empty")
    try:
        element, rest = der_decoder.decode(value_der)
        reencoded = der_encoder.encode(element)
    except PyAsn1Error as err:
        raise errors.PKIError(field, f"not one well-formed DER element ({err})") from None
    if rest:
        raise errors.PKIError(field, f"{len(rest)} bytes follow the DER element; give exactly one")
    if reencoded != value_der:
        raise errors.PKIError(field, "the value is BER but not canonical DER")


def raw_extension(
    oid: str, critical: bool, kind: str, value: object, *, field: str = "extensions[0]"
) -> RawExtension:
    """Build a checked `RawExtension` from the spec's fields.

    Args:
        oid: The extension OID.
        critical: The critical flag.
        kind: One of `VALUE_KINDS`.
        value: The value for that kind.
        field: The spec path of this extension entry, e.g. ``"extensions[2]"``.

    Returns:
        The extension.

    Raises:
        PKIError: ``<field>.oid`` or ``<field>.value`` naming what is wrong.
    """
    check_oid(oid, f"{field}.oid")
    return RawExtension(oid, bool(critical), encode_value(kind, value, f"{field}.value"))
