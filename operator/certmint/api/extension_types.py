"""Raw X.509 extensions a Certificate requests (``spec.extensions``).

Standard extensions are built by certmint itself from dedicated fields; the OIDs under
`RESERVED_EXTENSION_ARCS` are refused, and every value goes through the signer's own
encoder once here, so a value the signer would refuse is an ``InvalidSpec``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import types
from collections.abc import Mapping
from typing import Final

from certmint.api import fields
from certmint.pki import errors as pki_errors
from certmint.pki import extensions as pki_extensions

EXTENSION_VALUE_KINDS: Final = ("utf8String", "integer", "boolean", "der")

#: OID arcs a Certificate may never set as raw extensions, with the field to use instead.
#: Standard extensions are built by certmint itself from dedicated fields; letting a
#: request override them (a SAN, BasicConstraints) would bypass the policy.
RESERVED_EXTENSION_ARCS: Final[Mapping[str, str]] = types.MappingProxyType(
    {
        "2.5.29": "it is a standard X.509 extension that certmint builds from the dedicated "
        "spec fields (dnsNames, usages, isCA, ...)",
        "1.3.6.1.5.5.7": "it is in the PKIX arc that certmint reserves for standard extensions",
        "1.3.6.1.4.1.11129.2.4": "it is a Certificate Transparency extension",
        "2.16.840.1.113730.1": "it is a Netscape certificate extension, which the signer refuses",
        "1.3.6.1.4.1.311.20.2": "it is the Microsoft certificate template name, which the "
        "signer refuses",
        "1.3.6.1.4.1.311.21": "it is a Microsoft CA or template extension, which the signer "
        "refuses",
        "2.25.255037599343673218920774665946782441960": "it is in certmint's own arc; "
        "use spec.claims for claims",
        "1.2.840.113556.1.8000.2554.49118.29815.48385.17178.39665.9535742.3088872": "it is in "
        "certmint's own arc; use spec.claims for claims",
    }
)


@dataclasses.dataclass(frozen=True, slots=True)
class ExtensionSpec:
    """A raw X.509 extension requested by a Certificate.

    Attributes:
        oid: Dotted OID, never one of `RESERVED_EXTENSION_ARCS`.
        critical: Whether verifiers must understand it (most reject unknown critical
            extensions; keep custom ones non-critical).
        kind: ``utf8String``, ``integer``, ``boolean`` or ``der``.
        value: The value; for ``der`` the base64 text of the DER bytes.
    """

    oid: str
    critical: bool
    kind: str
    value: str | int | bool


def reserved_extension_reason(oid: str) -> str | None:
    """Why an OID may not be requested as a raw extension, if it may not.

    Args:
        oid: A dotted OID.

    Returns:
        The explanation, or None when the OID is free for raw extensions.
    """
    for arc, reason in RESERVED_EXTENSION_ARCS.items():
        if oid == arc or oid.startswith(arc + "."):
            return reason
    return None


def parse_extensions(value: object) -> tuple[ExtensionSpec, ...]:
    """``spec.extensions``: unique, allowed OIDs with values the signer can encode."""
    extensions: list[ExtensionSpec] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(fields.sequence(value, "spec.extensions")):
        field = f"spec.extensions[{index}]"
        item = fields.mapping(raw, field)
        oid = extension_oid(item.get("oid"), f"{field}.oid", "requested")
        if oid in seen:
            raise fields.SpecError(f"{field}.oid", f"{oid} repeats extensions[{seen[oid]}]")
        seen[oid] = index
        kind, extension_value = _parse_extension_value(item.get("value"), f"{field}.value")
        try:
            # The signer's own encoder: a value it would refuse is refused here, once.
            pki_extensions.encode_value(kind, extension_value, f"{field}.value.{kind}")
        except pki_errors.PKIError as err:
            raise fields.SpecError(err.field, err.message) from None
        extensions.append(
            ExtensionSpec(
                oid=oid,
                critical=fields.boolean(item.get("critical"), f"{field}.critical", default=False),
                kind=kind,
                value=extension_value,
            )
        )
    return tuple(extensions)


def extension_oid(value: object, field: str, verb: str) -> str:
    """An extension OID that is well formed, not reserved, and that the signer accepts."""
    oid = fields.dotted_oid(value, field)
    reserved = reserved_extension_reason(oid)
    if reserved is not None:
        raise fields.SpecError(field, f"{oid} cannot be {verb}: {reserved}")
    try:
        pki_extensions.check_oid(oid, field)
    except pki_errors.PKIError as err:
        raise fields.SpecError(field, f"{oid} cannot be {verb}: {err.message}") from None
    return oid


def _parse_extension_value(value: object, field: str) -> tuple[str, str | int | bool]:
    raw = fields.mapping(value, field)
    given = [kind for kind in EXTENSION_VALUE_KINDS if raw.get(kind) is not None]
    if len(given) != 1:
        raise fields.SpecError(field, f"must set exactly one of {', '.join(EXTENSION_VALUE_KINDS)}")
    kind = given[0]
    item_field = f"{field}.{kind}"
    item = raw[kind]
    if kind == "utf8String":
        return kind, fields.string(item, item_field)
    if kind == "boolean":
        return kind, fields.boolean(item, item_field, default=False)
    if kind == "integer":
        if isinstance(item, bool) or not isinstance(item, int):
            raise fields.SpecError(
                item_field, f"must be a whole number, not {fields.describe(item)}"
            )
        return kind, item
    text = fields.string(item, item_field)
    try:
        der = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        der = b""
    if not der:
        raise fields.SpecError(item_field, "must be non-empty base64-encoded DER")
    return kind, text
