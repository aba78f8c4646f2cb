"""The authorization claims extension: its OID, ASN.1 types, and strict DER codec.

The wire format (docs/claims.md has the full story)::

    WorkloadClaims ::= SEQUENCE {
        version  INTEGER,              -- 1
        claims   SEQUENCE OF Claim }   -- sorted by key, keys unique
    Claim ::= SEQUENCE {
        key      UTF8String,
        values   SEQUENCE OF UTF8String }   -- sorted, unique

"Sorted" means by the UTF-8 bytes, which is the same order as Python's ``str``
comparison (code point order), Go's ``sort.Strings`` and Java's ``compareTo`` on
strings without surrogate pairs. Encoding and decoding go through pyasn1.

The extension is written under `CLAIMS_OID` and read under it or `LEGACY_CLAIMS_OID`
(the first contract's OID, which Go cannot parse); `ClaimsOids` replaces both with an
organization's own OID.
"""

from __future__ import annotations

import dataclasses
import functools
import unicodedata
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeAlias

from cryptography import x509
from pyasn1.codec.der import decoder as der_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import char, namedtype, univ

from certmint.pki import errors

#: certmint's UUID, from which both of its OID arcs derive.
PROJECT_UUID = uuid.UUID("bfde7477-bd01-431a-9af1-9180fe2f21e8")
#: The arc Microsoft delegated for registration-free OIDs derived from a GUID.
GUID_ARC = "1.2.840.113556.1.8000.2554"
#: certmint's arc: `PROJECT_UUID` under `GUID_ARC` (see `guid_arc`); every arc < 2**31.
PROJECT_OID_ARC = "1.2.840.113556.1.8000.2554.49118.29815.48385.17178.39665.9535742.3088872"
CLAIMS_OID = x509.ObjectIdentifier(f"{PROJECT_OID_ARC}.1")
#: The first contract's arc, ``2.25.<PROJECT_UUID as an integer>`` (X.667). Go refuses
#: its 128-bit arc, so certmint reads claims under it but never writes them there.
LEGACY_OID_ARC = "2.25.255037599343673218920774665946782441960"
LEGACY_CLAIMS_OID = x509.ObjectIdentifier(f"{LEGACY_OID_ARC}.1")
CLAIMS_VERSION = 1

# The GUID's 32 hex digits split 4,4,4,4,4,6,6: arcs of 16,16,16,16,16,24,24 bits.
_GUID_ARC_DIGITS = (4, 4, 4, 4, 4, 6, 6)

Claims: TypeAlias = Mapping[str, Sequence[str]]


def guid_arc(guid: uuid.UUID) -> str:
    """The OID arc of a GUID under `GUID_ARC`, as Microsoft defines the mapping.

    Args:
        guid: Any UUID, e.g. `PROJECT_UUID`.

    Returns:
        Dotted-decimal text: `GUID_ARC`, then the GUID's hex digits split 4,4,4,4,4,6,6,
        each read as a hexadecimal integer.
    """
    digits, arcs = guid.hex, []
    for width in _GUID_ARC_DIGITS:
        arcs.append(str(int(digits[:width], 16)))
        digits = digits[width:]
    return ".".join((GUID_ARC, *arcs))


@dataclasses.dataclass(frozen=True)
class ClaimsOids:
    """Which OID the claims extension is written under, and which OIDs are read.

    The default writes `CLAIMS_OID` and reads it or `LEGACY_CLAIMS_OID`; an
    organization's own OID replaces both (`certmint.pki.extensions.claims_oids`).

    Attributes:
        write: The OID of the extensions certmint issues.
        read: The OIDs a reader accepts; a certificate must carry at most one of them.
    """

    write: x509.ObjectIdentifier = CLAIMS_OID
    read: tuple[x509.ObjectIdentifier, ...] = (CLAIMS_OID, LEGACY_CLAIMS_OID)


DEFAULT_OIDS = ClaimsOids()


class _Values(univ.SequenceOf):  # type: ignore[misc]  # pyasn1 ships no type hints
    componentType = char.UTF8String()  # noqa: N815  # pyasn1's name


class _Claim(univ.Sequence):  # type: ignore[misc]
    componentType = namedtype.NamedTypes(  # noqa: N815  # pyasn1's name
        namedtype.NamedType("key", char.UTF8String()),
        namedtype.NamedType("values", _Values()),
    )


class _ClaimList(univ.SequenceOf):  # type: ignore[misc]
    componentType = _Claim()  # noqa: N815  # pyasn1's name


class WorkloadClaims(univ.Sequence):  # type: ignore[misc]
    """The ASN.1 ``WorkloadClaims`` type (pyasn1 schema object)."""

    componentType = namedtype.NamedTypes(  # noqa: N815  # pyasn1's name
        namedtype.NamedType("version", univ.Integer()),
        namedtype.NamedType("claims", _ClaimList()),
    )


def _check_text(text: object, field: str, what: str) -> str:
    if not isinstance(text, str):
        raise errors.PKIError(field, f"{what} must be a string, not {type(text).__name__}")
    if not text:
        raise errors.PKIError(field, f"{what} is empty")
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cs":
            raise errors.PKIError(field, f"{what} is not valid Unicode (lone surrogate)")
        if category == "Cc":
            raise errors.PKIError(field, f"{what} contains a control character (U+{ord(ch):04X})")
    return text


def normalize_claims(claims: Claims) -> dict[str, tuple[str, ...]]:
    """Check claims and put them in canonical order.

    Keys and values must be non-empty strings without control characters; every key
    needs at least one value. Duplicate values collapse into one.

    Args:
        claims: Claim key to its values.

    Returns:
        A new dict with keys sorted and each value tuple sorted and without duplicates.

    Raises:
        PKIError: ``claims`` for an empty or malformed key, ``claims.<key>`` for a
            malformed value or an empty value list.
    """
    result: dict[str, tuple[str, ...]] = {}
    for key in sorted(claims, key=_sort_key_of_key):
        _check_text(key, "claims", "a claim key")
        field = f"claims.{key}"
        values = claims[key]
        if isinstance(values, str | bytes):
            raise errors.PKIError(field, "values must be a list of strings, not a single string")
        checked = {_check_text(value, field, "a claim value") for value in values}
        if not checked:
            raise errors.PKIError(field, "a claim needs at least one value")
        result[key] = tuple(sorted(checked))
    return result


def _sort_key_of_key(key: object) -> str:
    # Non-string keys fail validation in order, not with a TypeError from sorted().
    return key if isinstance(key, str) else ""


def encode_claims(claims: Claims) -> bytes:
    """DER-encode claims as a ``WorkloadClaims`` value (version 1).

    Args:
        claims: Claim key to its values; normalized first, so any order is accepted.

    Returns:
        The DER bytes, i.e. the extension's ``extnValue`` contents.

    Raises:
        PKIError: The claims are malformed (see `normalize_claims`).
    """
    return _encode_normalized(tuple(normalize_claims(claims).items()))


# Certificates of one workload carry the same claims again and again; pyasn1 encoding is
# most of the cost of issuing a leaf, so remember recent encodings.
@functools.lru_cache(maxsize=1024)
def _encode_normalized(pairs: tuple[tuple[str, tuple[str, ...]], ...]) -> bytes:
    encoded: bytes = der_encoder.encode(to_asn1(pairs))
    return encoded


def to_asn1(
    pairs: Iterable[tuple[str, Sequence[str]]], version: int = CLAIMS_VERSION
) -> WorkloadClaims:
    """Build the pyasn1 ``WorkloadClaims`` object for pairs exactly as given.

    No checks and no sorting: `encode_claims` normalizes first. Tests use this to build
    values a conforming encoder would never produce.

    Args:
        pairs: (key, values) in the order they should appear.
        version: The version field.

    Returns:
        The ASN.1 value, ready for pyasn1's DER encoder.
    """
    claim_list = _ClaimList()
    for index, (key, values) in enumerate(pairs):
        claim = _Claim()
        claim["key"] = key
        value_list = _Values()
        value_list.extend(values)
        claim["values"] = value_list
        claim_list[index] = claim
    document = WorkloadClaims()
    document["version"] = version
    document["claims"] = claim_list
    return document


def decode_claims(der: bytes) -> dict[str, tuple[str, ...]]:
    """Decode a claims extension value, strictly.

    Rejects anything a conforming encoder would not produce: another version, keys or
    values out of order or repeated, empty strings or lists, non-DER encodings, and
    trailing bytes.

    Args:
        der: The extension's ``extnValue`` contents.

    Returns:
        Claim key to its sorted values, keys in sorted order.

    Raises:
        PKIError: ``claims`` when the bytes are not a canonical version-1 value.
    """
    try:
        document, rest = der_decoder.decode(der, asn1Spec=WorkloadClaims())
    except PyAsn1Error as err:
        raise errors.PKIError("claims", f"not a DER WorkloadClaims value ({err})") from None
    if rest:
        raise errors.PKIError(
            "claims", f"{len(rest)} trailing bytes after the WorkloadClaims value"
        )
    version = int(document["version"])
    if version != CLAIMS_VERSION:
        raise errors.PKIError(
            "claims", f"unsupported claims version {version}; this decoder knows 1"
        )
    pairs = [
        (str(claim["key"]), [str(value) for value in claim["values"]])
        for claim in document["claims"]
    ]
    keys = [key for key, _ in pairs]
    _require_strictly_sorted(keys, "claim keys")
    for key, values in pairs:
        _require_strictly_sorted(values, f"the values of claim {key!r}")
    try:
        decoded = normalize_claims(dict(pairs))
    except errors.PKIError as err:
        raise errors.PKIError("claims", str(err)) from None
    # BER-isms that decode fine (long-form lengths...) must not pass as DER.
    if der_encoder.encode(document) != der:
        raise errors.PKIError("claims", "the value is not in canonical DER form")
    return decoded


def _require_strictly_sorted(items: Iterable[str], what: str) -> None:
    previous: str | None = None
    for item in items:
        if previous is not None and item <= previous:
            problem = "repeated" if item == previous else "out of order"
            raise errors.PKIError("claims", f"{what} are {problem} at {item!r}")
        previous = item


def claims_extension(
    claims: Claims, oid: x509.ObjectIdentifier = CLAIMS_OID
) -> x509.UnrecognizedExtension:
    """The claims as an X.509 extension value (mark it non-critical when adding it).

    Args:
        claims: Claim key to its values.
        oid: The extension's OID (`ClaimsOids.write`).

    Returns:
        An extension object carrying ``oid`` and the DER value.

    Raises:
        PKIError: The claims are malformed.
    """
    return x509.UnrecognizedExtension(oid, encode_claims(claims))


def claims_of(
    certificate: x509.Certificate, oids: ClaimsOids = DEFAULT_OIDS
) -> dict[str, tuple[str, ...]]:
    """The claims a certificate carries; empty when it has no claims extension.

    Args:
        certificate: Any certificate.
        oids: The OIDs to read the extension under (``oids.read``).

    Returns:
        Claim key to its values.

    Raises:
        PKIError: ``claims`` when the extension is present but malformed, or present
            under more than one of the OIDs read (which one would be meant is unclear).
    """
    found = [extension for extension in certificate.extensions if extension.oid in oids.read]
    if not found:
        return {}
    if len(found) > 1:
        raise errors.PKIError(
            "claims",
            "the certificate carries claims under several OIDs "
            f"({', '.join(extension.oid.dotted_string for extension in found)})",
        )
    value = found[0].value
    if not isinstance(value, x509.UnrecognizedExtension):  # pragma: no cover - cryptography
        raise errors.PKIError("claims", "the claims extension was parsed as a known type")
    return decode_claims(value.value)
