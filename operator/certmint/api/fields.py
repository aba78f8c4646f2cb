"""The building blocks every resource parser shares: one error, raw values, names.

The CRD schema already refuses most malformed input, but the parsers in `certmint.api`
assume nothing about it: any missing field, wrong type or contradiction becomes one
`SpecError` naming the field path (``spec.claims.role[0]``), which the operator reports
as ``InvalidSpec``. This module holds that error, the readers of raw JSON values
(`mapping`, `string`, `unique`, ...), Go-style durations and the syntax of names
(DNS names, IP addresses, URIs, emails, OIDs, Kubernetes names, label keys).
"""

from __future__ import annotations

import decimal
import ipaddress
import json
import re
import sys
import types
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, ClassVar, Final

from certmint.api import resources
from certmint.pki import names as pki_names

#: Parsed durations longer than this are refused as typos.
MAX_PARSED_DURATION: Final = timedelta(days=36500)

_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_K8S_SUBDOMAIN = re.compile(
    r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*"
)
_K8S_LABEL_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?")
#: A claim key, in a Certificate's claims and in an issuer's claim grants.
CLAIM_KEY = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._/-]{0,251}[A-Za-z0-9])?")
_OID = re.compile(r"[0-2](?:\.(?:0|[1-9][0-9]*))+")
#: The scheme of an absolute URI, in spec.uris and in URI policy patterns.
URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DURATION = re.compile(r"\+?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[hms])+")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)([hms])")
_DURATION_UNITS: Final = {"h": 3_600_000_000, "m": 60_000_000, "s": 1_000_000}

# ---------------------------------------------------------------------------
# The one error type


class SpecError(ValueError):
    """A custom resource field that cannot be used as written.

    Attributes:
        field: Path of the offending field, e.g. ``"spec.duration"`` or
            ``"spec.claims.role[0]"``.
        message: What is wrong and what to write instead, without the field path.
        reason: The condition reason the operator reports, always ``InvalidSpec``.
    """

    reason: ClassVar[str] = "InvalidSpec"
    field: str
    message: str

    def __init__(self, field: str, message: str) -> None:
        """Create the error.

        Args:
            field: Path of the offending field.
            message: What is wrong, in words a user can act on.
        """
        super().__init__(field, message)
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def quote(text: str, limit: int = 80) -> str:
    """Quote user-supplied text for a message, escaped and shortened.

    Args:
        text: The text to show.
        limit: Characters kept before the text is cut with an ellipsis.

    Returns:
        The text in double quotes, control characters escaped.
    """
    if len(text) > limit:
        text = text[:limit] + "…"
    return json.dumps(text, ensure_ascii=False)


def describe(value: object) -> str:
    """Name a JSON value's type the way YAML authors think of it."""
    if value is None:
        return "null"
    kinds: tuple[tuple[type | tuple[type, ...], str], ...] = (
        (bool, "a boolean"),
        ((int, float), "a number"),
        (str, "a string"),
        (Mapping, "an object"),
        ((list, tuple), "a list"),
    )
    return next((name for kind, name in kinds if isinstance(value, kind)), type(value).__name__)


# ---------------------------------------------------------------------------
# Durations


def parse_duration(text: str, field: str) -> timedelta:
    """Parse a positive Go-style duration such as ``"24h"``, ``"1h30m"`` or ``"1.5h"``.

    Units are ``h``, ``m`` and ``s``; numbers may have a fraction; parts add up
    (``"1h1h"`` is two hours). Precision is one microsecond, finer parts are dropped.

    Args:
        text: The duration as written in the resource.
        field: The field path, for the error.

    Returns:
        The duration.

    Raises:
        SpecError: The text is not a duration, is zero or negative, or is longer
            than `MAX_PARSED_DURATION`.
    """
    if not isinstance(text, str):
        raise SpecError(field, f'must be a duration such as "24h", not {describe(text)}')
    if text.startswith("-"):
        raise SpecError(field, f"{quote(text)} is negative; durations must be positive")
    if len(text) > 64 or not _DURATION.fullmatch(text):
        raise SpecError(
            field,
            f"{quote(text)} is not a duration; write hours, minutes and seconds "
            'such as "24h", "1h30m" or "90s"',
        )
    total = sum(
        (
            decimal.Decimal(number) * _DURATION_UNITS[unit]
            for number, unit in _DURATION_PART.findall(text)
        ),
        decimal.Decimal(0),
    )
    microseconds = int(total)
    if microseconds <= 0:
        raise SpecError(field, f"{quote(text)} is zero; durations must be positive")
    if microseconds > MAX_PARSED_DURATION // timedelta(microseconds=1):
        raise SpecError(
            field, f"{quote(text)} is longer than {format_duration(MAX_PARSED_DURATION)}"
        )
    return timedelta(microseconds=microseconds)


def format_duration(duration: timedelta) -> str:
    """Spell a positive duration the way `parse_duration` reads it, e.g. ``"1h30m"``.

    Args:
        duration: A positive duration.

    Returns:
        Hours, minutes and seconds with zero parts left out (``"168h"``, ``"1m30.5s"``).

    Raises:
        ValueError: The duration is zero or negative.
    """
    microseconds = duration // timedelta(microseconds=1)
    if microseconds <= 0:
        raise ValueError("only positive durations have a spelling")
    hours, rest = divmod(microseconds, _DURATION_UNITS["h"])
    minutes, rest = divmod(rest, _DURATION_UNITS["m"])
    seconds, fraction = divmod(rest, _DURATION_UNITS["s"])
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    if fraction:
        parts.append(f"{seconds}.{fraction:06d}".rstrip("0") + "s")
    elif seconds:
        parts.append(f"{seconds}s")
    return "".join(parts)


def has_bad_uri_chars(text: str) -> bool:
    """Whether text has anything but printable ASCII without spaces."""
    return not text.isascii() or any(char.isspace() or not char.isprintable() for char in text)


# ---------------------------------------------------------------------------
# Reading raw values


def mapping(value: object, field: str) -> Mapping[str, Any]:
    """A JSON object with string keys; absent (None) reads as empty."""
    if value is None:
        return types.MappingProxyType({})
    if not isinstance(value, Mapping):
        raise SpecError(field, f"must be an object, not {describe(value)}")
    for key in value:
        if not isinstance(key, str):
            raise SpecError(field, f"has a key that is {describe(key)}, not a string")
    return value


def sequence(value: object, field: str) -> Sequence[Any]:
    """A JSON list; absent (None) reads as empty, a string is refused."""
    if value is None:
        return ()
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise SpecError(field, f"must be a list, not {describe(value)}")
    return value


def optional_string(value: object, field: str) -> str | None:
    """A string field where absent and empty mean the same: not set."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise SpecError(field, f"must be a string, not {describe(value)}")
    if _CONTROL.search(value):
        raise SpecError(field, f"{quote(value)} contains control characters")
    return value or None


def string(value: object, field: str) -> str:
    """A required, non-empty string without control characters."""
    text = optional_string(value, field)
    if text is None:
        raise SpecError(field, "is required" if value is None else "must not be empty")
    return text


def boolean(value: object, field: str, *, default: bool) -> bool:
    """true or false; absent gives the default."""
    if value is None:
        return default
    if not isinstance(value, bool):
        raise SpecError(field, f"must be true or false, not {describe(value)}")
    return value


def integer(value: object, field: str) -> int | None:
    """A whole number (not a boolean), or None when absent."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(field, f"must be a whole number, not {describe(value)}")
    return value


def optional_duration(value: object, field: str) -> timedelta | None:
    """A Go-style duration (see `parse_duration`), or None when absent."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise SpecError(field, f'must be a duration such as "24h", not {describe(value)}')
    return parse_duration(value, field)


def choice(value: object, field: str, choices: Sequence[str], *, default: str) -> str:
    """One of a fixed set of strings; absent or empty gives the default."""
    text = optional_string(value, field)
    if text is None:
        return default
    if text not in choices:
        raise SpecError(field, f"{quote(text)} is not one of {', '.join(choices)}")
    return text


def strings(value: object, field: str) -> list[tuple[str, str]]:
    """A list of non-empty strings, each with its own field path."""
    items = []
    for index, item in enumerate(sequence(value, field)):
        item_field = f"{field}[{index}]"
        items.append((item_field, string(item, item_field)))
    return items


def unique(
    value: object, field: str, canonical: Callable[[str, str], str] = lambda text, _: text
) -> tuple[str, ...]:
    """A list of strings, each made canonical, refusing repeats (after canonicalizing)."""
    seen: dict[str, str] = {}
    short = field.rpartition(".")[2]
    for index, (item_field, text) in enumerate(strings(value, field)):
        canonical_text = canonical(text, item_field)
        if canonical_text in seen:
            raise SpecError(item_field, f"{quote(text)} repeats {seen[canonical_text]}")
        seen[canonical_text] = f"{short}[{index}]"
    return tuple(seen)


def frozen_mapping(items: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only copy of a mapping, for frozen dataclasses."""
    return types.MappingProxyType(dict(items))


#: The one read-only empty mapping parsed values share.
EMPTY_MAPPING: Final[Mapping[str, Any]] = types.MappingProxyType({})


def empty_mapping() -> Mapping[str, Any]:
    """A read-only empty mapping, the default of mapping fields."""
    return EMPTY_MAPPING


# ---------------------------------------------------------------------------
# Syntax of names


def is_dns_name(name: str, *, wildcard: bool = False) -> bool:
    """Whether the text is a lowercase DNS name (optionally with a leading ``*`` label).

    Args:
        name: The candidate.
        wildcard: Accept ``*`` as the whole first label.

    Returns:
        True for names such as ``api.web.svc`` (and ``*.web.svc`` with wildcard).
    """
    labels = name.split(".")
    if wildcard and len(labels) > 1 and labels[0] == "*":
        labels = labels[1:]
    return len(name) <= 253 and all(_DNS_LABEL.fullmatch(label) for label in labels)


def kubernetes_name(value: object, field: str) -> str:
    """A Kubernetes object name (a lowercase DNS subdomain)."""
    text = string(value, field)
    if len(text) > 253 or not _K8S_SUBDOMAIN.fullmatch(text):
        raise SpecError(
            field,
            f"{quote(text)} is not a Kubernetes object name; use lowercase letters, "
            'digits, "-" and "."',
        )
    return text


def dns_name(text: str, field: str) -> str:
    """A DNS SAN in ASCII, lowercased; a leading ``*.`` wildcard is allowed."""
    problem = pki_names.non_ascii_dns_problem(text)
    if problem is not None:
        raise SpecError(field, f"{quote(text)} {problem}")
    name = text.lower()
    if not is_dns_name(name, wildcard=True):
        raise SpecError(
            field,
            f'{quote(text)} is not a DNS name; use labels of letters, digits and "-" '
            'separated by ".", with at most a leading "*." wildcard',
        )
    return name


def ip_address(text: str, field: str) -> str:
    """An IPv4 or IPv6 address without zone, in canonical form."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        address = None
    # A scoped IPv6 address ("fe80::1%eth0") has no meaning in a certificate.
    if address is None or "%" in text:
        raise SpecError(field, f"{quote(text)} is not an IPv4 or IPv6 address")
    return str(address)


def uri(text: str, field: str) -> str:
    """An absolute URI of printable ASCII, at most 2048 characters."""
    scheme, colon, rest = text.partition(":")
    if (
        not colon
        or not rest
        or not URI_SCHEME.fullmatch(scheme)
        or len(text) > 2048
        or has_bad_uri_chars(text)
    ):
        raise SpecError(
            field, f'{quote(text)} is not an absolute URI such as "https://api.example.com/"'
        )
    try:
        urllib.parse.urlsplit(text)
    except ValueError:
        raise SpecError(field, f"{quote(text)} is not a well-formed URI") from None
    return text


def email(text: str, field: str) -> str:
    """An email address; its domain is lowercased."""
    local, at, domain = text.rpartition("@")
    problem = pki_names.non_ascii_dns_problem(domain)
    if problem is not None:
        raise SpecError(field, f"the domain of {quote(text)} {problem}")
    if not at or not _EMAIL_LOCAL.fullmatch(local) or not is_dns_name(domain.lower()):
        raise SpecError(field, f'{quote(text)} is not an email address such as "ops@example.com"')
    return f"{local}@{domain.lower()}"


def dotted_oid(value: object, field: str) -> str:
    """A dotted OID such as ``1.3.6.1.4.1.55555.1``."""
    text = string(value, field)
    arcs = text.split(".")
    if len(text) > 256 or not _OID.fullmatch(text) or (arcs[0] != "2" and int(arcs[1]) >= 40):
        raise SpecError(field, f'{quote(text)} is not a dotted OID such as "1.3.6.1.4.1.55555.1"')
    return text


def label_key(key: str, field: str, *, ours: bool = True) -> str:
    """Check a label or annotation key; with ours, refuse the operator's own prefix."""
    prefix, slash, name = key.rpartition("/")
    if (
        not _K8S_LABEL_NAME.fullmatch(name)
        or (slash and (len(prefix) > 253 or not _K8S_SUBDOMAIN.fullmatch(prefix)))
        or "/" in prefix
    ):
        raise SpecError(
            field, f"{quote(key)} is not a valid key; write name or prefix/name, e.g. team"
        )
    if ours and (prefix == resources.GROUP or prefix.endswith(f".{resources.GROUP}")):
        raise SpecError(field, f"{quote(key)} is reserved for the operator")
    return key


def string_map(value: object, field: str, *, labels: bool, ours: bool = True) -> Mapping[str, str]:
    """Labels or annotations to write (ours) or to select on."""
    result: dict[str, str] = {}
    for key, item in mapping(value, field).items():
        item_field = f"{field}[{quote(key)}]"
        label_key(key, item_field, ours=ours)
        if not isinstance(item, str):
            raise SpecError(item_field, f"must be a string, not {describe(item)}")
        if labels and item and not _K8S_LABEL_NAME.fullmatch(item):
            raise SpecError(
                item_field,
                f"{quote(item)} is not a label value; use at most 63 letters, digits, "
                '"-", "_" or ".", starting and ending with a letter or digit',
            )
        result[sys.intern(key)] = item
    return types.MappingProxyType(result) if result else EMPTY_MAPPING
