"""Checks for the names a certificate can carry: DNS names, IPs, emails, URIs, subject.

Each check raises a `PKIError` naming the field, so a bad entry is reported as, e.g.,
``dnsNames[2]: 'a..b' has an empty label``.
"""

from __future__ import annotations

import ipaddress
import re
import string
import unicodedata
import urllib.parse

import idna

from certmint.pki import errors

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_DNS_NAME_LENGTH = 253
MAX_LABEL_LENGTH = 63
# X.520 upper bounds (RFC 5280 appendix A): commonName, organizationName and
# organizationalUnitName 64, localityName and stateOrProvinceName 128.
MAX_COMMON_NAME_LENGTH = 64

_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_EMAIL_LOCAL_CHARS = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~.")
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")


def check_dns_name(name: str, field: str, *, allow_wildcard: bool = True) -> str:
    """Check a DNS name for a SAN (RFC 1123 host names, ASCII or xn-- A-labels).

    A wildcard is allowed only as the whole leftmost label (``*.example.com``), and
    never on a single-label name.

    Args:
        name: The name, without a trailing dot.
        field: The spec field to name in an error, e.g. ``"dnsNames[0]"``.
        allow_wildcard: Whether ``*.`` may start the name.

    Returns:
        The name, unchanged.

    Raises:
        PKIError: The name is empty, too long, or has a malformed label.
    """
    if not isinstance(name, str) or not name:
        raise errors.PKIError(field, "a DNS name must be a non-empty string")
    if len(name) > MAX_DNS_NAME_LENGTH:
        raise errors.PKIError(field, f"{name!r} is longer than {MAX_DNS_NAME_LENGTH} characters")
    if _is_ip_literal(name):
        raise errors.PKIError(field, f"{name!r} is an IP address; list it under ipAddresses")
    if name.endswith("."):
        raise errors.PKIError(field, f"{name!r} ends with a dot; write it without the trailing dot")
    labels = name.split(".")
    if labels[0] == "*":
        if not allow_wildcard:
            raise errors.PKIError(field, f"{name!r}: a wildcard is not allowed here")
        if len(labels) < 2:
            raise errors.PKIError(field, f"{name!r}: a wildcard needs a parent domain")
        labels = labels[1:]
    for label in labels:
        if not label:
            raise errors.PKIError(field, f"{name!r} has an empty label")
        if "*" in label:
            raise errors.PKIError(field, f"{name!r}: '*' may only be the whole leftmost label")
        if len(label) > MAX_LABEL_LENGTH:
            raise errors.PKIError(
                field, f"{name!r} has a label longer than {MAX_LABEL_LENGTH} characters"
            )
        if not _LABEL.fullmatch(label):
            raise errors.PKIError(
                field,
                f"{name!r}: label {label!r} must be letters, digits and inner hyphens "
                "(use the xn-- form for international names)",
            )
    return name


def _is_ip_literal(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def check_ip_address(address: object, field: str) -> IPAddress:
    """Check that a value is an IP address object (not a network or a string).

    Raises:
        PKIError: The value is not an `IPv4Address` or `IPv6Address`.
    """
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        raise errors.PKIError(field, f"{address} has a zone; certificates cannot carry one")
    if isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return address
    raise errors.PKIError(field, f"{address!r} is not a single IP address")


def check_email(address: str, field: str) -> str:
    """Check an email address for an rfc822Name SAN (ASCII ``local@domain``).

    Args:
        address: e.g. ``"ops@example.com"``.
        field: The spec field to name in an error.

    Returns:
        The address, unchanged.

    Raises:
        PKIError: Not exactly one ``@``, an empty or non-ASCII local part, or a bad domain.
    """
    if not isinstance(address, str) or address.count("@") != 1:
        raise errors.PKIError(field, f"{address!r} is not an email address (local@domain)")
    local, domain = address.split("@")
    if not local or len(local) > 64:
        raise errors.PKIError(field, f"{address!r}: the local part must be 1 to 64 characters")
    if (
        not set(local) <= _EMAIL_LOCAL_CHARS
        or local.startswith(".")
        or local.endswith(".")
        or ".." in local
    ):
        raise errors.PKIError(
            field, f"{address!r}: the local part has characters a certificate cannot carry"
        )
    try:
        check_dns_name(domain, field, allow_wildcard=False)
    except errors.PKIError as err:
        raise errors.PKIError(field, f"{address!r}: bad domain: {err.message}") from None
    return address


def check_uri(uri: str, field: str) -> str:
    """Check a URI for a SAN: absolute (has a scheme), printable ASCII, no spaces.

    This does not apply the SPIFFE rules; see `certmint.pki.spiffe` for those.

    Args:
        uri: e.g. ``"https://api.example.com/"``.
        field: The spec field to name in an error.

    Returns:
        The URI, unchanged.

    Raises:
        PKIError: The URI is not absolute, or contains characters outside printable ASCII.
    """
    if not isinstance(uri, str) or not uri:
        raise errors.PKIError(field, "a URI must be a non-empty string")
    if not uri.isascii() or not uri.isprintable() or " " in uri:
        raise errors.PKIError(
            field, f"{uri!r} must be printable ASCII without spaces (percent-encode the rest)"
        )
    scheme, separator, rest = uri.partition(":")
    if not separator or not _URI_SCHEME.fullmatch(scheme) or not rest:
        raise errors.PKIError(field, f"{uri!r} is not an absolute URI (scheme:...)")
    try:
        urllib.parse.urlsplit(uri)
    except ValueError as err:
        raise errors.PKIError(field, f"{uri!r} is not a valid URI ({err})") from None
    return uri


def unprintable_character(value: str) -> str | None:
    """The first character of ``value`` a certificate's text should not carry, described.

    Everything `str.isprintable` refuses counts: control (Cc, U+0085 included), format
    (Cf, such as the zero-width space U+200B), surrogate, private-use and unassigned
    code points, and separators other than the plain space (U+00A0, U+2028...).

    Args:
        value: The text.

    Returns:
        E.g. ``"U+200B (ZERO WIDTH SPACE)"``, or None when every character is printable.
    """
    for char in value:
        if not char.isprintable():
            return f"U+{ord(char):04X} ({unicodedata.name(char, unicodedata.category(char))})"
    return None


def check_subject_value(value: str, field: str, *, max_length: int = 64) -> str:
    """Check one subject attribute value (organization, locality...).

    Args:
        value: The value.
        field: The spec field to name in an error, e.g. ``"subject.organizations[0]"``.
        max_length: The X.520 upper bound for the attribute.

    Returns:
        The value, unchanged.

    Raises:
        PKIError: The value is empty or blank, too long, or has a character that is
            not printable (see `unprintable_character`).
    """
    if not isinstance(value, str) or not value.strip():
        raise errors.PKIError(field, "the value must be a non-empty string, not only blanks")
    if len(value) > max_length:
        raise errors.PKIError(field, f"{value!r} is longer than {max_length} characters")
    character = unprintable_character(value)
    if character is not None:
        raise errors.PKIError(field, f"{value!r} contains the unprintable character {character}")
    return value


def non_ascii_dns_problem(name: str) -> str | None:
    """Why a DNS name (or a DNS-shaped common name) that is not ASCII cannot be used.

    Certificates carry DNS names as ASCII, international names as IDNA A-labels
    (``xn--``). certmint never converts a name silently, since a verifier compares the
    bytes: it refuses the name and says what to write instead (IDNA 2008 with the UTS
    46 mapping, as browsers do, so ``\u212aube`` with a Kelvin sign gives ``kube``).

    Args:
        name: The name as written, possibly with a leading ``*.``.

    Returns:
        None for an ASCII name; otherwise the problem, naming the A-label form when
        there is one.
    """
    if name.isascii():
        return None
    wildcard, rest = ("*.", name[2:]) if name.startswith("*.") else ("", name)
    try:
        a_label = wildcard + idna.encode(rest, uts46=True).decode("ascii")
    except idna.IDNAError:
        return (
            "is not ASCII and not an internationalized domain name; write DNS names in "
            "ASCII, international ones as xn-- A-labels"
        )
    return f'is not ASCII; write the IDNA A-label form "{a_label}"'


def is_idna_shaped(text: str) -> bool:
    """Whether non-ASCII text would pass as a domain name once IDNA-mapped.

    Args:
        text: e.g. a common name.

    Returns:
        True when ``text`` is not ASCII and IDNA (UTS 46) turns it into a host name.
    """
    if text.isascii():
        return False
    rest = text[2:] if text.startswith("*.") else text
    try:
        idna.encode(rest, uts46=True)
    except idna.IDNAError:
        return False
    return True


def check_country(code: str, field: str) -> str:
    """Check an ISO 3166 two-letter country code (``"DE"``, ``"US"``).

    Raises:
        PKIError: The code is not two ASCII letters.
    """
    if not isinstance(code, str) or len(code) != 2 or not code.isascii() or not code.isalpha():
        raise errors.PKIError(field, f"{code!r} is not a two-letter country code")
    return code
