"""Custom resources, parsed once at the edge into frozen dataclasses.

Handlers call `CertificateSpec.from_body` and `IssuerSpec.from_body` on the raw
object and hand the result down; nothing below them sees a raw dict. The CRD schema
already refuses most malformed input, but these parsers assume nothing about it:
any missing field, wrong type or contradiction becomes one `SpecError` naming the
field path (``spec.claims.role[0]``), which the operator reports as ``InvalidSpec``.

This module also owns the pattern language issuer policies are written in (see
`compile_glob` and docs/policy.md); `certmint.core.policy` applies it.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import decimal
import functools
import ipaddress
import json
import re
import types
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, ClassVar, Final, Literal, TypeAlias, cast

from certmint.pki import claims as pki_claims
from certmint.pki import errors as pki_errors
from certmint.pki import extensions as pki_extensions
from certmint.pki import names as pki_names

IssuerKind: TypeAlias = Literal["Issuer", "ClusterIssuer"]
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
GlobKind: TypeAlias = Literal["namespace", "dns", "uri", "email", "subject"]

#: No issuer may let certificates live shorter than this, whatever its policy says.
MIN_DURATION_FLOOR: Final = timedelta(minutes=1)
DEFAULT_DURATION: Final = timedelta(hours=24)
DEFAULT_MAX_DURATION: Final = timedelta(hours=168)
DEFAULT_CA_DURATION: Final = timedelta(hours=87600)
DEFAULT_PREPARE_BEFORE_PERCENTAGE: Final = 50
DEFAULT_ACTIVATE_BEFORE_PERCENTAGE: Final = 17
#: Parsed durations longer than this are refused as typos.
MAX_PARSED_DURATION: Final = timedelta(days=36500)
DEFAULT_TRUST_DOMAIN: Final = "cluster.local"
DEFAULT_TRUST_CONFIG_MAP: Final = "certmint-trust"
DEFAULT_ALLOWED_DNS_NAMES: Final = ("*.{namespace}.svc", "*.{namespace}.svc.cluster.local")
PLACEHOLDERS: Final = ("{namespace}", "{serviceAccount}")

#: Key sizes per algorithm; the first is the default. Ed25519 has no size.
KEY_SIZES: Final[Mapping[str, tuple[int, ...]]] = types.MappingProxyType(
    {"ECDSA": (256, 384), "RSA": (2048, 3072, 4096), "Ed25519": ()}
)
KEY_USAGES: Final = frozenset(
    {
        "digital signature",
        "content commitment",
        "key encipherment",
        "data encipherment",
        "key agreement",
        "cert sign",
        "crl sign",
        "encipher only",
        "decipher only",
    }
)
EXTENDED_KEY_USAGES: Final = frozenset(
    {
        "server auth",
        "client auth",
        "code signing",
        "email protection",
        "timestamping",
        "ocsp signing",
        "any",
    }
)
DEFAULT_USAGES: Final = ("digital signature", "key encipherment", "server auth", "client auth")
OUTPUT_FORMATS: Final = frozenset({"CombinedPEM", "DER"})
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
#: Trust ConfigMap names Kubernetes or OpenShift publish in every namespace themselves,
#: and the prefixes they keep for their own objects: never a trust ConfigMap's name.
RESERVED_CONFIG_MAP_NAMES: Final = frozenset({"kube-root-ca.crt", "openshift-service-ca.crt"})
RESERVED_CONFIG_MAP_PREFIXES: Final = ("kube-", "openshift-")
#: Subject attributes besides the common name: (spec key, SubjectSpec attribute).
SUBJECT_FIELDS: Final = (
    ("organizations", "organizations"),
    ("organizationalUnits", "organizational_units"),
    ("countries", "countries"),
    ("provinces", "provinces"),
    ("localities", "localities"),
)

_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_K8S_SUBDOMAIN = re.compile(
    r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*"
)
_K8S_LABEL_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?")
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]{1,253}")
_TRUST_DOMAIN = re.compile(r"[a-z0-9._-]{1,255}")
_CLAIM_KEY = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._/-]{0,251}[A-Za-z0-9])?")
_OID = re.compile(r"[0-2](?:\.(?:0|[1-9][0-9]*))+")
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}")
_COUNTRY = re.compile(r"[A-Za-z]{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DURATION = re.compile(r"\+?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[hms])+")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)([hms])")
_DURATION_UNITS: Final = {"h": 3_600_000_000, "m": 60_000_000, "s": 1_000_000}
_GLOB_TOKEN = re.compile(r"\*\*|\*|\{[^{}]*\}|[^*{}]+|[{}]")
_MAX_CLAIM_VALUE = 1024
_MAX_SUBJECT_VALUE = 64

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


def _describe(value: object) -> str:
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
        raise SpecError(field, f'must be a duration such as "24h", not {_describe(text)}')
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


# ---------------------------------------------------------------------------
# The policy pattern language


def tokenize_glob(pattern: str) -> tuple[str, ...]:
    """Split a policy pattern into literal text, ``*``, ``**`` and placeholders.

    Args:
        pattern: A pattern such as ``"*.{namespace}.svc"``.

    Returns:
        The tokens in order; joined they give the pattern back.

    Raises:
        ValueError: An unknown placeholder, a stray brace, or three stars in a row.
    """
    parts = tuple(_GLOB_TOKEN.findall(pattern))
    for index, part in enumerate(parts):
        if part in {"{", "}"}:
            raise ValueError(f'has an unmatched "{part}"')
        if part.startswith("{") and part not in PLACEHOLDERS:
            raise ValueError(
                f"has the unknown placeholder {part}; use {{namespace}} or {{serviceAccount}}"
            )
        if part.startswith("*") and index and parts[index - 1].startswith("*"):
            raise ValueError('has more than two "*" in a row')
    return parts


@functools.lru_cache(maxsize=4096)
def compile_glob(
    pattern: str, kind: GlobKind, namespace: str = "", service_account: str | None = None
) -> re.Pattern[str] | None:
    """Turn a validated policy pattern into a regular expression for one requester.

    Placeholders are replaced by the escaped namespace and ServiceAccount name first,
    so those values only ever match themselves. What ``*`` may cross depends on kind:

    - ``dns``: ``*`` stays inside one label (never a "."), like a wildcard certificate;
      matching ignores case.
    - ``uri``: ``*`` never crosses ``/ ? # @ :``; ``**`` matches anything.
    - ``email``: ``*`` never crosses "@", and after the "@" never a "." either;
      matching ignores case.
    - ``namespace``: ``*`` matches anything.

    Args:
        pattern: A pattern accepted by `IssuerSpec.from_body`.
        kind: Which kind of name the pattern is for.
        namespace: The requesting Certificate's namespace.
        service_account: Its ServiceAccount name, if it asks for an identity.

    Returns:
        The compiled expression, or None when the pattern uses ``{serviceAccount}``
        and there is none (such a pattern matches nothing).

    Raises:
        ValueError: The pattern does not tokenize (see `tokenize_glob`).
    """
    expression: list[str] = []
    after_at = False
    for part in tokenize_glob(pattern):
        if part == PLACEHOLDERS[0]:
            expression.append(re.escape(namespace))
        elif part == PLACEHOLDERS[1]:
            if service_account is None:
                return None
            expression.append(re.escape(service_account))
        elif part.startswith("**"):
            expression.append(".*")
        elif part.startswith("*"):
            expression.append(_star(kind, after_at=after_at))
        else:
            after_at = after_at or "@" in part
            expression.append(re.escape(part))
    flags = re.IGNORECASE if kind in {"dns", "email"} else 0
    return re.compile("".join(expression), flags | re.DOTALL)


def _star(kind: GlobKind, *, after_at: bool) -> str:
    if kind == "dns":
        return r"[^.]*"
    if kind == "uri":
        return r"[^/?#@:]*"
    if kind == "email":
        return r"[^@.]*" if after_at else r"[^@]*"
    return ".*"


def glob_matches(
    patterns: Sequence[str],
    kind: GlobKind,
    text: str,
    *,
    namespace: str = "",
    service_account: str | None = None,
) -> bool:
    """Whether any of the patterns matches the whole text.

    Args:
        patterns: Validated policy patterns.
        kind: Which kind of name they are for (see `compile_glob`).
        text: The requested name.
        namespace: The requesting namespace, for ``{namespace}``.
        service_account: The requesting ServiceAccount, for ``{serviceAccount}``.

    Returns:
        True when one pattern matches.
    """
    for pattern in patterns:
        compiled = compile_glob(pattern, kind, namespace, service_account)
        if compiled is not None and compiled.fullmatch(text):
            return True
    return False


def render_glob(pattern: str, namespace: str, service_account: str | None = None) -> str:
    """Show a pattern as it applies to one requester, placeholders filled in.

    Args:
        pattern: A validated policy pattern.
        namespace: The requesting namespace.
        service_account: The requesting ServiceAccount; without one,
            ``{serviceAccount}`` stays as written.

    Returns:
        The pattern text with placeholders substituted.
    """
    text = pattern.replace("{namespace}", namespace)
    if service_account is not None:
        text = text.replace("{serviceAccount}", service_account)
    return text


def _check_glob(pattern: str, kind: GlobKind | Literal["claim"], field: str) -> None:
    """Refuse a policy pattern that is malformed for its kind."""
    try:
        parts = tokenize_glob(pattern)
    except ValueError as error:
        raise SpecError(field, f"{quote(pattern)} {error}") from None
    if not parts:
        raise SpecError(field, "must not be empty")
    if "**" in parts and kind != "uri":
        raise SpecError(field, f'{quote(pattern)}: "**" is only for URI patterns; use "*"')
    problem = _GLOB_PROBLEMS[kind](pattern, parts)
    if problem is not None:
        raise SpecError(field, f"{quote(pattern)} {problem}")


def _literal(parts: tuple[str, ...]) -> str:
    return "".join(part for part in parts if not part.startswith(("*", "{")))


def _namespace_glob_problem(_: str, parts: tuple[str, ...]) -> str | None:
    if any(part.startswith("{") for part in parts) or not re.fullmatch(
        r"[a-z0-9-]*", _literal(parts)
    ):
        return 'is not a namespace pattern; use lowercase letters, digits, "-" and "*"'
    return None


def _dns_glob_problem(_: str, parts: tuple[str, ...]) -> str | None:
    sample = "".join("x" if part.startswith(("*", "{")) else part for part in parts)
    if not re.fullmatch(r"[a-z0-9.-]*", _literal(parts)) or not is_dns_name(sample):
        return (
            'is not a DNS name pattern; use lowercase labels separated by ".", '
            'with "*", {namespace} or {serviceAccount} inside a label'
        )
    return None


def _uri_glob_problem(pattern: str, parts: tuple[str, ...]) -> str | None:
    scheme, colon, _ = parts[0].partition(":")
    if not colon or not _URI_SCHEME.fullmatch(scheme) or _has_bad_uri_chars(pattern):
        return 'is not a URI pattern; it must start with a literal scheme such as "https:"'
    if scheme.lower() == "spiffe":
        return (
            "is a SPIFFE ID pattern; identities are derived from the namespace and "
            "ServiceAccount and cannot be allowed as extra URIs"
        )
    return None


def _email_glob_problem(pattern: str, parts: tuple[str, ...]) -> str | None:
    if _literal(parts).count("@") != 1 or _has_bad_uri_chars(pattern):
        return 'is not an email pattern; write "local@domain"'
    return None


def _subject_glob_problem(pattern: str, _: tuple[str, ...]) -> str | None:
    if not pattern.strip():
        return "is blank"
    character = pki_names.unprintable_character(pattern)
    if character is not None:
        return f"contains the unprintable character {character}"
    return None


def _claim_value_problem(_: str, parts: tuple[str, ...]) -> str | None:
    if "*" in parts and parts != ("*",):
        return 'uses "*" inside a value; "*" only stands alone, meaning any value'
    return None


_GLOB_PROBLEMS: Final[Mapping[str, Callable[[str, tuple[str, ...]], str | None]]] = {
    "namespace": _namespace_glob_problem,
    "dns": _dns_glob_problem,
    "uri": _uri_glob_problem,
    "email": _email_glob_problem,
    "subject": _subject_glob_problem,
    "claim": _claim_value_problem,
}


def _has_bad_uri_chars(text: str) -> bool:
    return not text.isascii() or any(char.isspace() or not char.isprintable() for char in text)


# ---------------------------------------------------------------------------
# Reading raw values


def _mapping(value: object, field: str) -> Mapping[str, Any]:
    if value is None:
        return types.MappingProxyType({})
    if not isinstance(value, Mapping):
        raise SpecError(field, f"must be an object, not {_describe(value)}")
    for key in value:
        if not isinstance(key, str):
            raise SpecError(field, f"has a key that is {_describe(key)}, not a string")
    return value


def _list(value: object, field: str) -> Sequence[Any]:
    if value is None:
        return ()
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise SpecError(field, f"must be a list, not {_describe(value)}")
    return value


def _optional_string(value: object, field: str) -> str | None:
    """A string field where absent and empty mean the same: not set."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise SpecError(field, f"must be a string, not {_describe(value)}")
    if _CONTROL.search(value):
        raise SpecError(field, f"{quote(value)} contains control characters")
    return value or None


def _string(value: object, field: str) -> str:
    text = _optional_string(value, field)
    if text is None:
        raise SpecError(field, "is required" if value is None else "must not be empty")
    return text


def _boolean(value: object, field: str, *, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise SpecError(field, f"must be true or false, not {_describe(value)}")
    return value


def _integer(value: object, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(field, f"must be a whole number, not {_describe(value)}")
    return value


def _duration(value: object, field: str) -> timedelta | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise SpecError(field, f'must be a duration such as "24h", not {_describe(value)}')
    return parse_duration(value, field)


def _choice(value: object, field: str, choices: Sequence[str], *, default: str) -> str:
    text = _optional_string(value, field)
    if text is None:
        return default
    if text not in choices:
        raise SpecError(field, f"{quote(text)} is not one of {', '.join(choices)}")
    return text


def _strings(value: object, field: str) -> list[tuple[str, str]]:
    """A list of non-empty strings, each with its own field path."""
    items = []
    for index, item in enumerate(_list(value, field)):
        item_field = f"{field}[{index}]"
        items.append((item_field, _string(item, item_field)))
    return items


def _unique(
    value: object, field: str, canonical: Callable[[str, str], str] = lambda text, _: text
) -> tuple[str, ...]:
    """A list of strings, each made canonical, refusing repeats (after canonicalizing)."""
    seen: dict[str, str] = {}
    short = field.rpartition(".")[2]
    for index, (item_field, text) in enumerate(_strings(value, field)):
        canonical_text = canonical(text, item_field)
        if canonical_text in seen:
            raise SpecError(item_field, f"{quote(text)} repeats {seen[canonical_text]}")
        seen[canonical_text] = f"{short}[{index}]"
    return tuple(seen)


def _frozen_mapping(items: Mapping[str, Any]) -> Mapping[str, Any]:
    return types.MappingProxyType(dict(items))


def _empty_mapping() -> Mapping[str, Any]:
    return types.MappingProxyType({})


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


def _kubernetes_name(value: object, field: str) -> str:
    text = _string(value, field)
    if len(text) > 253 or not _K8S_SUBDOMAIN.fullmatch(text):
        raise SpecError(
            field,
            f"{quote(text)} is not a Kubernetes object name; use lowercase letters, "
            'digits, "-" and "."',
        )
    return text


def _dns_name(text: str, field: str) -> str:
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


def _ip_address(text: str, field: str) -> str:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        address = None
    # A scoped IPv6 address ("fe80::1%eth0") has no meaning in a certificate.
    if address is None or "%" in text:
        raise SpecError(field, f"{quote(text)} is not an IPv4 or IPv6 address")
    return str(address)


def _uri(text: str, field: str) -> str:
    scheme, colon, rest = text.partition(":")
    if (
        not colon
        or not rest
        or not _URI_SCHEME.fullmatch(scheme)
        or len(text) > 2048
        or _has_bad_uri_chars(text)
    ):
        raise SpecError(
            field, f'{quote(text)} is not an absolute URI such as "https://api.example.com/"'
        )
    try:
        urllib.parse.urlsplit(text)
    except ValueError:
        raise SpecError(field, f"{quote(text)} is not a well-formed URI") from None
    return text


def _email(text: str, field: str) -> str:
    local, at, domain = text.rpartition("@")
    problem = pki_names.non_ascii_dns_problem(domain)
    if problem is not None:
        raise SpecError(field, f"the domain of {quote(text)} {problem}")
    if not at or not _EMAIL_LOCAL.fullmatch(local) or not is_dns_name(domain.lower()):
        raise SpecError(field, f'{quote(text)} is not an email address such as "ops@example.com"')
    return f"{local}@{domain.lower()}"


def _oid(value: object, field: str) -> str:
    text = _string(value, field)
    arcs = text.split(".")
    if len(text) > 256 or not _OID.fullmatch(text) or (arcs[0] != "2" and int(arcs[1]) >= 40):
        raise SpecError(field, f'{quote(text)} is not a dotted OID such as "1.3.6.1.4.1.55555.1"')
    return text


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


def _label_key(key: str, field: str, *, ours: bool = True) -> str:
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
    if ours and (prefix == "certmint.io" or prefix.endswith(".certmint.io")):
        raise SpecError(field, f"{quote(key)} is reserved for the operator")
    return key


def _string_map(value: object, field: str, *, labels: bool, ours: bool = True) -> Mapping[str, str]:
    """Labels or annotations to write (ours) or to select on."""
    result: dict[str, str] = {}
    for key, item in _mapping(value, field).items():
        item_field = f"{field}[{quote(key)}]"
        _label_key(key, item_field, ours=ours)
        if not isinstance(item, str):
            raise SpecError(item_field, f"must be a string, not {_describe(item)}")
        if labels and item and not _K8S_LABEL_NAME.fullmatch(item):
            raise SpecError(
                item_field,
                f"{quote(item)} is not a label value; use at most 63 letters, digits, "
                '"-", "_" or ".", starting and ending with a letter or digit',
            )
        result[key] = item
    return types.MappingProxyType(result)


# ---------------------------------------------------------------------------
# Certificate


@dataclasses.dataclass(frozen=True)
class IssuerRef:
    """Which issuer signs a Certificate."""

    name: str
    kind: IssuerKind = "Issuer"

    @property
    def label(self) -> str:
        """The issuer as people write it in messages: ``ClusterIssuer "workloads"``."""
        return f"{self.kind} {quote(self.name)}"


@dataclasses.dataclass(frozen=True)
class SubjectSpec:
    """Distinguished-name attributes besides the common name."""

    organizations: tuple[str, ...] = ()
    organizational_units: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    provinces: tuple[str, ...] = ()
    localities: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class ExtensionSpec:
    """A raw X.509 extension requested by a Certificate.

    Attributes:
        oid: Dotted OID, never one of `RESERVED_EXTENSION_ARCS`.
        critical: Whether verifiers must understand it (most reject unknown critical
            extensions; keep custom ones non-critical).
        kind: ``utf8String``, ``integer``, ``boolean`` or ``der``.
        value: The value; for ``der`` the base64 text, see `der_value`.
    """

    oid: str
    critical: bool
    kind: str
    value: str | int | bool

    def der_value(self) -> bytes:
        """The DER bytes of a ``der`` extension.

        Returns:
            The decoded bytes.

        Raises:
            ValueError: The extension is not of kind ``der``.
        """
        if self.kind != "der" or not isinstance(self.value, str):
            raise ValueError(f"extension {self.oid} has a {self.kind} value, not DER")
        return base64.b64decode(self.value, validate=True)


@dataclasses.dataclass(frozen=True)
class PrivateKeySpec:
    """The key a certificate is issued for.

    Attributes:
        algorithm: ``ECDSA``, ``RSA`` or ``Ed25519``.
        size: Curve or modulus size; None picks the algorithm's default
            (ECDSA 256, RSA 2048) and stays None for Ed25519.
        rotation_policy: ``Always`` makes a new key for every issuance, ``Never``
            reuses the key in the Secret.
    """

    algorithm: str = "ECDSA"
    size: int | None = None
    rotation_policy: Literal["Always", "Never"] = "Always"

    def __post_init__(self) -> None:
        if self.size is None and KEY_SIZES.get(self.algorithm):
            # A frozen dataclass can only fill a derived default this way.
            object.__setattr__(self, "size", KEY_SIZES[self.algorithm][0])


@dataclasses.dataclass(frozen=True)
class PKCS12Spec:
    """Where the password of the PKCS#12 keystore comes from (a Secret in the same namespace)."""

    password_secret_name: str
    password_secret_key: str


@dataclasses.dataclass(frozen=True)
class CertificateSpec:
    """A Certificate's spec, validated and normalized.

    Lists of names keep the order written (messages refer to ``dnsNames[1]``);
    DNS names and email domains are lowercased, IP addresses are in canonical form.
    Claims have sorted keys and sorted unique values, the order of the wire format.
    ``duration`` None means the issuer's default; ``renew_before`` and
    ``renew_before_percentage`` both None mean one third of the lifetime.
    """

    secret_name: str
    issuer_ref: IssuerRef
    service_account_name: str | None = None
    common_name: str | None = None
    subject: SubjectSpec = SubjectSpec()
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    uris: tuple[str, ...] = ()
    email_addresses: tuple[str, ...] = ()
    claims: Mapping[str, tuple[str, ...]] = dataclasses.field(
        default_factory=_empty_mapping, hash=False
    )
    extensions: tuple[ExtensionSpec, ...] = ()
    duration: timedelta | None = None
    renew_before: timedelta | None = None
    renew_before_percentage: int | None = None
    private_key: PrivateKeySpec = PrivateKeySpec()
    usages: tuple[str, ...] = DEFAULT_USAGES
    is_ca: bool = False
    secret_labels: Mapping[str, str] = dataclasses.field(default_factory=_empty_mapping, hash=False)
    secret_annotations: Mapping[str, str] = dataclasses.field(
        default_factory=_empty_mapping, hash=False
    )
    additional_output_formats: frozenset[str] = frozenset()
    pkcs12: PKCS12Spec | None = None
    secret_deletion_policy: Literal["Retain", "Delete"] = "Retain"  # noqa: S105 -- not a secret
    #: spec.secretAdoption.certManagerCertificateName: whose cert-manager Secret to take over.
    adopt_cert_manager_certificate: str | None = None

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> CertificateSpec:
        """Parse a Certificate object.

        Args:
            body: The whole object as the API server returned it.

        Returns:
            The validated spec.

        Raises:
            SpecError: The first field that cannot be used, with its path.
        """
        spec = _mapping(_mapping(body, "body").get("spec"), "spec")
        secret_name = _kubernetes_name(spec.get("secretName"), "spec.secretName")
        issuer_ref = _parse_issuer_ref(spec.get("issuerRef"))
        service_account = _optional_string(
            spec.get("serviceAccountName"), "spec.serviceAccountName"
        )
        if service_account is not None:
            service_account = _kubernetes_name(service_account, "spec.serviceAccountName")
        common_name = _parse_common_name(spec.get("commonName"))
        subject = _parse_subject(spec.get("subject"))
        dns_names = _unique(spec.get("dnsNames"), "spec.dnsNames", _dns_name)
        ip_addresses = _unique(spec.get("ipAddresses"), "spec.ipAddresses", _ip_address)
        uris = _unique(spec.get("uris"), "spec.uris", _uri)
        email_addresses = _unique(spec.get("emailAddresses"), "spec.emailAddresses", _email)
        claims = _parse_claims(spec.get("claims"))
        extensions = _parse_extensions(spec.get("extensions"))
        duration = _duration(spec.get("duration"), "spec.duration")
        renew_before, percentage = _parse_renewal(spec, duration)
        private_key = _parse_private_key(spec.get("privateKey"), "spec.privateKey")
        is_ca = _boolean(spec.get("isCA"), "spec.isCA", default=False)
        usages = _parse_usages(spec.get("usages"), is_ca=is_ca)
        if is_ca and service_account is not None:
            raise SpecError(
                "spec.isCA",
                "a CA certificate cannot carry a workload identity; "
                "remove spec.serviceAccountName or set isCA to false",
            )
        template = _mapping(spec.get("secretTemplate"), "spec.secretTemplate")
        labels = _string_map(template.get("labels"), "spec.secretTemplate.labels", labels=True)
        annotations = _string_map(
            template.get("annotations"), "spec.secretTemplate.annotations", labels=False
        )
        output_formats = _parse_output_formats(spec.get("additionalOutputFormats"))
        pkcs12 = _parse_pkcs12(spec.get("keystores"))
        deletion_policy = _choice(
            spec.get("secretDeletionPolicy"),
            "spec.secretDeletionPolicy",
            ("Retain", "Delete"),
            default="Retain",
        )
        return cls(
            secret_name=secret_name,
            issuer_ref=issuer_ref,
            service_account_name=service_account,
            common_name=common_name,
            subject=subject,
            dns_names=dns_names,
            ip_addresses=ip_addresses,
            uris=uris,
            email_addresses=email_addresses,
            claims=claims,
            extensions=extensions,
            duration=duration,
            renew_before=renew_before,
            renew_before_percentage=percentage,
            private_key=private_key,
            usages=usages,
            is_ca=is_ca,
            secret_labels=labels,
            secret_annotations=annotations,
            additional_output_formats=output_formats,
            pkcs12=pkcs12,
            secret_deletion_policy=cast(Literal["Retain", "Delete"], deletion_policy),
            adopt_cert_manager_certificate=_parse_adoption(spec.get("secretAdoption")),
        )


def _parse_adoption(value: object) -> str | None:
    field = "spec.secretAdoption"
    if value is None:
        return None
    name = _mapping(value, field).get("certManagerCertificateName")
    return _optional_string(name, f"{field}.certManagerCertificateName") or None


def _parse_issuer_ref(value: object) -> IssuerRef:
    field = "spec.issuerRef"
    if value is None:
        raise SpecError(field, "is required")
    ref = _mapping(value, field)
    kind = _choice(ref.get("kind"), f"{field}.kind", ("Issuer", "ClusterIssuer"), default="Issuer")
    return IssuerRef(
        name=_kubernetes_name(ref.get("name"), f"{field}.name"), kind=cast(IssuerKind, kind)
    )


def _subject_value(text: str, field: str) -> str:
    """A subject attribute value the signer will accept (printable, not blank, bounded)."""
    if not text.strip():
        raise SpecError(field, "must not be blank")
    if len(text) > _MAX_SUBJECT_VALUE:
        raise SpecError(field, f"{quote(text)} is longer than {_MAX_SUBJECT_VALUE} characters")
    character = pki_names.unprintable_character(text)
    if character is not None:
        raise SpecError(
            field,
            f"{json.dumps(text)} contains the unprintable character {character}; subject "
            "values are printable text",
        )
    return text


def _parse_common_name(value: object) -> str | None:
    field = "spec.commonName"
    common_name = _optional_string(value, field)
    if common_name is None:
        return None
    _subject_value(common_name, field)
    if pki_names.is_idna_shaped(common_name):
        # A hostname for old clients: ASCII as for dnsNames, never converted silently.
        raise SpecError(
            field, f"{quote(common_name)} {pki_names.non_ascii_dns_problem(common_name)}"
        )
    return common_name


def _parse_subject(value: object) -> SubjectSpec:
    subject = _mapping(value, "spec.subject")

    def values(key: str) -> tuple[str, ...]:
        return _unique(subject.get(key), f"spec.subject.{key}", _subject_value)

    def country(text: str, field: str) -> str:
        if not _COUNTRY.fullmatch(text):
            raise SpecError(field, f'{quote(text)} is not a two-letter country code such as "DE"')
        return text.upper()

    return SubjectSpec(
        organizations=values("organizations"),
        organizational_units=values("organizationalUnits"),
        countries=_unique(subject.get("countries"), "spec.subject.countries", country),
        provinces=values("provinces"),
        localities=values("localities"),
    )


def _parse_claims(value: object) -> Mapping[str, tuple[str, ...]]:
    claims: dict[str, tuple[str, ...]] = {}
    for key, raw_values in sorted(_mapping(value, "spec.claims").items()):
        field = f"spec.claims.{key}"
        if not _CLAIM_KEY.fullmatch(key):
            raise SpecError(
                "spec.claims",
                f"key {quote(key)} is not a claim key; use letters, digits, "
                '".", "_", "-" and "/", starting and ending with a letter or digit',
            )
        texts = [text for _, text in _strings(raw_values, field)]
        if not texts:
            raise SpecError(field, "must list at least one value")
        for index, text in enumerate(texts):
            if len(text) > _MAX_CLAIM_VALUE:
                raise SpecError(
                    f"{field}[{index}]", f"is longer than {_MAX_CLAIM_VALUE} characters"
                )
        claims[key] = tuple(sorted(set(texts)))
    try:
        # The signer's own check: a claim it would refuse is refused here, once.
        pki_claims.normalize_claims(claims)
    except pki_errors.PKIError as err:
        raise SpecError(f"spec.{err.field}", err.message) from None
    return types.MappingProxyType(claims)


def _parse_extensions(value: object) -> tuple[ExtensionSpec, ...]:
    extensions: list[ExtensionSpec] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(_list(value, "spec.extensions")):
        field = f"spec.extensions[{index}]"
        item = _mapping(raw, field)
        oid = _extension_oid(item.get("oid"), f"{field}.oid", "requested")
        if oid in seen:
            raise SpecError(f"{field}.oid", f"{oid} repeats extensions[{seen[oid]}]")
        seen[oid] = index
        kind, extension_value = _parse_extension_value(item.get("value"), f"{field}.value")
        try:
            # The signer's own encoder: a value it would refuse is refused here, once.
            pki_extensions.encode_value(kind, extension_value, f"{field}.value.{kind}")
        except pki_errors.PKIError as err:
            raise SpecError(err.field, err.message) from None
        extensions.append(
            ExtensionSpec(
                oid=oid,
                critical=_boolean(item.get("critical"), f"{field}.critical", default=False),
                kind=kind,
                value=extension_value,
            )
        )
    return tuple(extensions)


def _extension_oid(value: object, field: str, verb: str) -> str:
    """An extension OID that is well formed, not reserved, and that the signer accepts."""
    oid = _oid(value, field)
    reserved = reserved_extension_reason(oid)
    if reserved is not None:
        raise SpecError(field, f"{oid} cannot be {verb}: {reserved}")
    try:
        pki_extensions.check_oid(oid, field)
    except pki_errors.PKIError as err:
        raise SpecError(field, f"{oid} cannot be {verb}: {err.message}") from None
    return oid


def _parse_extension_value(value: object, field: str) -> tuple[str, str | int | bool]:
    raw = _mapping(value, field)
    given = [kind for kind in EXTENSION_VALUE_KINDS if raw.get(kind) is not None]
    if len(given) != 1:
        raise SpecError(field, f"must set exactly one of {', '.join(EXTENSION_VALUE_KINDS)}")
    kind = given[0]
    item_field = f"{field}.{kind}"
    item = raw[kind]
    if kind == "utf8String":
        return kind, _string(item, item_field)
    if kind == "boolean":
        return kind, _boolean(item, item_field, default=False)
    if kind == "integer":
        if isinstance(item, bool) or not isinstance(item, int):
            raise SpecError(item_field, f"must be a whole number, not {_describe(item)}")
        return kind, item
    text = _string(item, item_field)
    try:
        der = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        der = b""
    if not der:
        raise SpecError(item_field, "must be non-empty base64-encoded DER")
    return kind, text


def _parse_renewal(
    spec: Mapping[str, Any], duration: timedelta | None
) -> tuple[timedelta | None, int | None]:
    renew_before = _duration(spec.get("renewBefore"), "spec.renewBefore")
    percentage = _integer(spec.get("renewBeforePercentage"), "spec.renewBeforePercentage")
    if renew_before is not None and percentage is not None:
        raise SpecError(
            "spec.renewBeforePercentage", "cannot be combined with spec.renewBefore; set one"
        )
    if percentage is not None and not 1 <= percentage <= 99:
        raise SpecError("spec.renewBeforePercentage", f"{percentage} is not between 1 and 99")
    if renew_before is not None and duration is not None and renew_before >= duration:
        raise SpecError(
            "spec.renewBefore",
            f"{format_duration(renew_before)} must be shorter than spec.duration "
            f"{format_duration(duration)}",
        )
    return renew_before, percentage


def _parse_private_key(value: object, field: str) -> PrivateKeySpec:
    raw = _mapping(value, field)
    algorithm = _choice(
        raw.get("algorithm"), f"{field}.algorithm", tuple(KEY_SIZES), default="ECDSA"
    )
    sizes = KEY_SIZES[algorithm]
    size = _integer(raw.get("size"), f"{field}.size")
    if size is not None and not sizes:
        raise SpecError(f"{field}.size", f"must be left out for {algorithm}, which has one size")
    if size is not None and size not in sizes:
        raise SpecError(
            f"{field}.size",
            f"{size} is not a {algorithm} size; use one of {', '.join(map(str, sizes))}",
        )
    policy = _choice(
        raw.get("rotationPolicy"), f"{field}.rotationPolicy", ("Always", "Never"), default="Always"
    )
    return PrivateKeySpec(
        algorithm=algorithm,
        size=size,
        rotation_policy=cast(Literal["Always", "Never"], policy),
    )


def _parse_usages(value: object, *, is_ca: bool) -> tuple[str, ...]:
    known = KEY_USAGES | EXTENDED_KEY_USAGES

    def usage(text: str, field: str) -> str:
        if text not in known:
            raise SpecError(
                field, f"{quote(text)} is not a usage; use one of {', '.join(sorted(known))}"
            )
        if text in {"cert sign", "crl sign"} and not is_ca:
            raise SpecError(field, f"{quote(text)} is only for CA certificates (spec.isCA: true)")
        return text

    usages = _unique(value, "spec.usages", usage)
    return usages or DEFAULT_USAGES


def _parse_output_formats(value: object) -> frozenset[str]:
    formats = set()
    for index, raw in enumerate(_list(value, "spec.additionalOutputFormats")):
        field = f"spec.additionalOutputFormats[{index}].type"
        output_format = _choice(
            _mapping(raw, field).get("type"), field, sorted(OUTPUT_FORMATS), default=""
        )
        if not output_format:
            raise SpecError(field, "is required")
        formats.add(output_format)
    return frozenset(formats)


def _parse_pkcs12(value: object) -> PKCS12Spec | None:
    field = "spec.keystores.pkcs12"
    raw = _mapping(_mapping(value, "spec.keystores").get("pkcs12"), field)
    if not _boolean(raw.get("create"), f"{field}.create", default=False):
        return None
    ref_field = f"{field}.passwordSecretRef"
    if raw.get("passwordSecretRef") is None:
        raise SpecError(ref_field, "is required when create is true")
    ref = _mapping(raw.get("passwordSecretRef"), ref_field)
    key = _string(ref.get("key"), f"{ref_field}.key")
    if not _SECRET_KEY.fullmatch(key):
        raise SpecError(f"{ref_field}.key", f"{quote(key)} is not a Secret data key")
    return PKCS12Spec(
        password_secret_name=_kubernetes_name(ref.get("name"), f"{ref_field}.name"),
        password_secret_key=key,
    )


# ---------------------------------------------------------------------------
# Issuer


@dataclasses.dataclass(frozen=True)
class ClaimGrant:
    """Claim values an issuer lets Certificates carry.

    Attributes:
        key: The claim key.
        values: Allowed values; ``"*"`` allows any value, and ``{namespace}`` or
            ``{serviceAccount}`` stand for the requester's own.
        namespaces: Namespace globs the grant is limited to; None for every namespace.
    """

    key: str
    values: tuple[str, ...]
    namespaces: tuple[str, ...] | None = None


@dataclasses.dataclass(frozen=True)
class SubjectPolicy:
    """Patterns for the subject attributes besides the common name (``allowedSubject``).

    Each is a tuple of subject patterns (``*`` matches anything, ``{namespace}`` and
    ``{serviceAccount}`` expand; case-sensitive, countries upper case). An empty tuple
    allows no value for that attribute; that is also the default for every attribute.
    """

    organizations: tuple[str, ...] = ()
    organizational_units: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    provinces: tuple[str, ...] = ()
    localities: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class IssuancePolicy:
    """What Certificates using one issuer may ask for; the defaults are documented in
    docs/policy.md.

    Attributes:
        issuer_label: The issuer as messages name it, e.g. ``ClusterIssuer "workloads"``.
    """

    allowed_namespaces: tuple[str, ...] = ("*",)
    default_duration: timedelta = DEFAULT_DURATION
    min_duration: timedelta = MIN_DURATION_FLOOR
    max_duration: timedelta = DEFAULT_MAX_DURATION
    allowed_dns_names: tuple[str, ...] = DEFAULT_ALLOWED_DNS_NAMES
    allowed_ip_addresses: tuple[IPNetwork, ...] = ()
    allowed_uris: tuple[str, ...] = ()
    allowed_email_addresses: tuple[str, ...] = ()
    allow_ca: bool = False
    claims: tuple[ClaimGrant, ...] = ()
    allowed_extension_oids: frozenset[str] = frozenset()
    allowed_subject: SubjectPolicy = SubjectPolicy()
    issuer_label: str = "the issuer"


@dataclasses.dataclass(frozen=True)
class GenerateSpec:
    """A root CA keypair the operator creates when the CA Secret is missing."""

    common_name: str
    duration: timedelta = DEFAULT_CA_DURATION
    private_key: PrivateKeySpec = PrivateKeySpec()
    #: Prepare the next root when this share of the CA's lifetime remains.
    prepare_before_percentage: int = 50
    #: Sign with the next root when this share remains (and the longest leaf lifetime
    #: has passed since prepare).
    activate_before_percentage: int = 17


@dataclasses.dataclass(frozen=True)
class CASpec:
    """The CA an issuer signs with: a ``kubernetes.io/tls`` Secret, optionally generated."""

    secret_name: str
    generate: GenerateSpec | None = None


@dataclasses.dataclass(frozen=True)
class TrustDistributionSpec:
    """Namespaces that receive the issuer's trust bundle.

    A namespace receives it when its name matches one of ``namespaces`` or its labels
    match ``namespace_selector`` (see `selects`).

    Attributes:
        namespaces: Namespace globs.
        namespace_selector: A Kubernetes label selector with ``matchLabels`` (a
            mapping) and ``matchExpressions`` (a tuple of mappings with ``key``,
            ``operator`` and ``values``); None when not given. ``{}`` selects every
            namespace, as in Kubernetes.
        config_map_name: The ConfigMap written in each namespace.
        cluster_trust_bundle: Also publish a ClusterTrustBundle.
    """

    namespaces: tuple[str, ...] = ("*",)
    namespace_selector: Mapping[str, Any] | None = dataclasses.field(default=None, hash=False)
    config_map_name: str = DEFAULT_TRUST_CONFIG_MAP
    cluster_trust_bundle: bool = False

    def label_selector(self) -> str | None:
        """The selector in the API's query syntax (``team=a,env in (x,y),!legacy``).

        Returns:
            The selector string ("" selects everything), or None without a selector.
        """
        if self.namespace_selector is None:
            return None
        terms = [f"{key}={value}" for key, value in self.namespace_selector["matchLabels"].items()]
        for requirement in self.namespace_selector["matchExpressions"]:
            key, operator, values = (
                requirement["key"],
                requirement["operator"],
                requirement["values"],
            )
            terms.append(
                {
                    "In": f"{key} in ({','.join(values)})",
                    "NotIn": f"{key} notin ({','.join(values)})",
                    "Exists": key,
                    "DoesNotExist": f"!{key}",
                }[operator]
            )
        return ",".join(terms)

    def selects(self, namespace: str, labels: Mapping[str, str]) -> bool:
        """Whether a namespace should receive the trust bundle.

        Args:
            namespace: The namespace's name.
            labels: Its labels.

        Returns:
            True when the name matches a glob or the labels match the selector.
        """
        if glob_matches(self.namespaces, "namespace", namespace):
            return True
        if self.namespace_selector is None:
            return False
        if any(labels.get(k) != v for k, v in self.namespace_selector["matchLabels"].items()):
            return False
        for requirement in self.namespace_selector["matchExpressions"]:
            key, operator, values = (
                requirement["key"],
                requirement["operator"],
                requirement["values"],
            )
            present = key in labels
            if (
                (operator == "In" and labels.get(key) not in values)
                or (operator == "NotIn" and present and labels[key] in values)
                or (operator == "Exists" and not present)
                or (operator == "DoesNotExist" and present)
            ):
                return False
        return True


@dataclasses.dataclass(frozen=True)
class IssuerSpec:
    """An Issuer's or ClusterIssuer's spec, validated.

    Exactly one of ``ca`` and ``self_signed`` is set. ``namespace`` is None for a
    ClusterIssuer, whose CA Secret lives in the operator's own namespace.
    """

    kind: IssuerKind
    name: str
    namespace: str | None
    ca: CASpec | None
    self_signed: bool
    trust_domain: str = DEFAULT_TRUST_DOMAIN
    policy: IssuancePolicy = IssuancePolicy()
    trust_distribution: TrustDistributionSpec | None = None

    @property
    def ref(self) -> IssuerRef:
        """The reference a Certificate uses to name this issuer."""
        return IssuerRef(name=self.name, kind=self.kind)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> IssuerSpec:
        """Parse an Issuer or ClusterIssuer object.

        Args:
            body: The whole object; ``kind`` and ``metadata`` are read too.

        Returns:
            The validated spec.

        Raises:
            SpecError: The first field that cannot be used, with its path.
        """
        body = _mapping(body, "body")
        kind = _choice(body.get("kind"), "kind", ("Issuer", "ClusterIssuer"), default="")
        if not kind:
            raise SpecError("kind", "is required")
        metadata = _mapping(body.get("metadata"), "metadata")
        name = _kubernetes_name(metadata.get("name"), "metadata.name")
        namespace = (
            _kubernetes_name(metadata.get("namespace"), "metadata.namespace")
            if kind == "Issuer"
            else None
        )
        spec = _mapping(body.get("spec"), "spec")
        has_ca = spec.get("ca") is not None
        self_signed = spec.get("selfSigned") is not None
        if has_ca == self_signed:
            raise SpecError("spec", "must set exactly one of ca and selfSigned")
        if self_signed:
            _mapping(spec.get("selfSigned"), "spec.selfSigned")
        if self_signed and spec.get("trustDistribution") is not None:
            raise SpecError(
                "spec.trustDistribution",
                "a selfSigned issuer has no CA to distribute; remove trustDistribution",
            )
        label = f"{kind} {quote(name)}"
        return cls(
            kind=cast(IssuerKind, kind),
            name=name,
            namespace=namespace,
            ca=_parse_ca(spec.get("ca"), name) if has_ca else None,
            self_signed=self_signed,
            trust_domain=_parse_trust_domain(spec.get("trustDomain")),
            policy=_parse_policy(spec.get("policy"), label),
            trust_distribution=_parse_trust_distribution(spec.get("trustDistribution"), namespace),
        )


def _parse_ca(value: object, issuer_name: str) -> CASpec:
    field = "spec.ca"
    raw = _mapping(value, field)
    generate = None
    if raw.get("generate") is not None:
        generate_field = f"{field}.generate"
        generate_raw = _mapping(raw.get("generate"), generate_field)
        common_name = _optional_string(
            generate_raw.get("commonName"), f"{generate_field}.commonName"
        )
        if common_name is not None and len(common_name) > 64:
            raise SpecError(
                f"{generate_field}.commonName", f"{quote(common_name)} is longer than 64 characters"
            )
        generate = GenerateSpec(
            common_name=common_name or f"{issuer_name} root CA"[:64],
            duration=(
                _duration(generate_raw.get("duration"), f"{generate_field}.duration")
                or DEFAULT_CA_DURATION
            ),
            private_key=_parse_private_key(
                generate_raw.get("privateKey"), f"{generate_field}.privateKey"
            ),
            **_parse_rotation(generate_raw.get("rotation"), f"{generate_field}.rotation"),
        )
    return CASpec(
        secret_name=_kubernetes_name(raw.get("secretName"), f"{field}.secretName"),
        generate=generate,
    )


def _parse_rotation(value: object, field: str) -> dict[str, int]:
    raw = _mapping(value or {}, field)
    percentages = {
        "prepare_before_percentage": _integer(
            raw.get("prepareBeforePercentage"), f"{field}.prepareBeforePercentage"
        )
        or DEFAULT_PREPARE_BEFORE_PERCENTAGE,
        "activate_before_percentage": _integer(
            raw.get("activateBeforePercentage"), f"{field}.activateBeforePercentage"
        )
        or DEFAULT_ACTIVATE_BEFORE_PERCENTAGE,
    }
    for name, percentage in percentages.items():
        if not 1 <= percentage <= 99:
            camel = "".join(w.title() if i else w for i, w in enumerate(name.split("_")))
            raise SpecError(f"{field}.{camel}", f"{percentage} is not between 1 and 99")
    if percentages["activate_before_percentage"] >= percentages["prepare_before_percentage"]:
        raise SpecError(
            f"{field}.activateBeforePercentage", "must be below prepareBeforePercentage"
        )
    return percentages


def _parse_trust_domain(value: object) -> str:
    field = "spec.trustDomain"
    trust_domain = _optional_string(value, field) or DEFAULT_TRUST_DOMAIN
    if not _TRUST_DOMAIN.fullmatch(trust_domain):
        raise SpecError(
            field,
            f"{quote(trust_domain)} is not a SPIFFE trust domain; use at most 255 lowercase "
            'letters, digits, ".", "_" and "-", without scheme or port',
        )
    return trust_domain


def _globs(
    value: object, field: str, kind: GlobKind | Literal["claim"], default: tuple[str, ...]
) -> tuple[str, ...]:
    if value is None:
        return default
    patterns = _unique(value, field)
    for index, pattern in enumerate(patterns):
        _check_glob(pattern, kind, f"{field}[{index}]")
    return patterns


def _parse_policy(value: object, issuer_label: str) -> IssuancePolicy:
    field = "spec.policy"
    raw = _mapping(value, field)
    minimum = _duration(raw.get("minDuration"), f"{field}.minDuration") or MIN_DURATION_FLOOR
    maximum = _duration(raw.get("maxDuration"), f"{field}.maxDuration") or DEFAULT_MAX_DURATION
    if minimum < MIN_DURATION_FLOOR:
        raise SpecError(
            f"{field}.minDuration",
            f"{format_duration(minimum)} is below certmint's floor of "
            f"{format_duration(MIN_DURATION_FLOOR)}",
        )
    if maximum < minimum:
        raise SpecError(
            f"{field}.maxDuration",
            f"{format_duration(maximum)} is shorter than minDuration {format_duration(minimum)}",
        )
    default = _duration(raw.get("defaultDuration"), f"{field}.defaultDuration")
    if default is None:
        default = min(max(DEFAULT_DURATION, minimum), maximum)
    elif not minimum <= default <= maximum:
        raise SpecError(
            f"{field}.defaultDuration",
            f"{format_duration(default)} is outside minDuration {format_duration(minimum)} "
            f"to maxDuration {format_duration(maximum)}",
        )
    return IssuancePolicy(
        allowed_namespaces=_globs(
            raw.get("allowedNamespaces"), f"{field}.allowedNamespaces", "namespace", ("*",)
        ),
        default_duration=default,
        min_duration=minimum,
        max_duration=maximum,
        allowed_dns_names=_globs(
            raw.get("allowedDNSNames"), f"{field}.allowedDNSNames", "dns", DEFAULT_ALLOWED_DNS_NAMES
        ),
        allowed_ip_addresses=_parse_networks(raw.get("allowedIPAddresses")),
        allowed_uris=_globs(raw.get("allowedURIs"), f"{field}.allowedURIs", "uri", ()),
        allowed_email_addresses=_globs(
            raw.get("allowedEmailAddresses"), f"{field}.allowedEmailAddresses", "email", ()
        ),
        allow_ca=_boolean(raw.get("allowCA"), f"{field}.allowCA", default=False),
        claims=_parse_grants(raw.get("claims")),
        allowed_extension_oids=_parse_allowed_extensions(raw.get("extensions")),
        allowed_subject=_parse_allowed_subject(raw.get("allowedSubject")),
        issuer_label=issuer_label,
    )


def _parse_allowed_subject(value: object) -> SubjectPolicy:
    """``policy.allowedSubject``: absent, like an absent attribute, allows nothing."""
    field = "spec.policy.allowedSubject"
    raw = _mapping(value, field)
    patterns: dict[str, tuple[str, ...]] = {}
    for key, attribute in SUBJECT_FIELDS:
        found = _globs(raw.get(key), f"{field}.{key}", "subject", ())
        if key == "countries":
            found = tuple(dict.fromkeys(pattern.upper() for pattern in found))
        patterns[attribute] = found
    return SubjectPolicy(**patterns)


def _parse_networks(value: object) -> tuple[IPNetwork, ...]:
    field = "spec.policy.allowedIPAddresses"
    networks: list[IPNetwork] = []
    for item_field, text in _strings(value, field):
        try:
            networks.append(ipaddress.ip_network(text, strict=True))
        except ValueError as error:
            raise SpecError(
                item_field, f'{quote(text)} is not a CIDR such as "10.0.0.0/8": {error}'
            ) from None
    return tuple(networks)


def _parse_grants(value: object) -> tuple[ClaimGrant, ...]:
    grants: list[ClaimGrant] = []
    for index, raw in enumerate(_list(value, "spec.policy.claims")):
        field = f"spec.policy.claims[{index}]"
        item = _mapping(raw, field)
        key = _string(item.get("key"), f"{field}.key")
        if not _CLAIM_KEY.fullmatch(key):
            raise SpecError(f"{field}.key", f"{quote(key)} is not a claim key")
        values = _globs(item.get("values"), f"{field}.values", "claim", ())
        if not values:
            raise SpecError(f"{field}.values", 'must list at least one value ("*" for any)')
        namespaces = None
        if item.get("namespaces") is not None:
            namespaces = _globs(item.get("namespaces"), f"{field}.namespaces", "namespace", ())
            if not namespaces:
                raise SpecError(
                    f"{field}.namespaces",
                    "must list at least one namespace; leave it out to grant to every namespace",
                )
        grants.append(ClaimGrant(key=key, values=values, namespaces=namespaces))
    return tuple(grants)


def _parse_allowed_extensions(value: object) -> frozenset[str]:
    oids = set()
    for index, raw in enumerate(_list(value, "spec.policy.extensions")):
        field = f"spec.policy.extensions[{index}]"
        oids.add(_extension_oid(_mapping(raw, field).get("oid"), f"{field}.oid", "allowed"))
    return frozenset(oids)


def _parse_trust_distribution(
    value: object, issuer_namespace: str | None
) -> TrustDistributionSpec | None:
    """Where the trust bundle goes; a namespaced Issuer publishes only into its own namespace."""
    field = "spec.trustDistribution"
    if value is None:
        return None
    raw = _mapping(value, field)
    if issuer_namespace is not None:
        if (
            raw.get("namespaces") is not None
            or raw.get("namespaceSelector") is not None
            or raw.get("clusterTrustBundle") is True
        ):
            raise SpecError(
                field,
                "an Issuer publishes its trust bundle only into its own namespace; "
                "namespaces, namespaceSelector and clusterTrustBundle need a ClusterIssuer",
            )
        raw = {**raw, "namespaces": [issuer_namespace]}
    selector = _parse_selector(raw.get("namespaceSelector"), f"{field}.namespaceSelector")
    default: tuple[str, ...] = ("*",) if selector is None else ()
    namespaces = _globs(raw.get("namespaces"), f"{field}.namespaces", "namespace", default)
    if not namespaces and selector is None:
        raise SpecError(field, "selects no namespace; set namespaces or namespaceSelector")
    config_map = raw.get("configMapName")
    return TrustDistributionSpec(
        namespaces=namespaces,
        namespace_selector=selector,
        config_map_name=(
            DEFAULT_TRUST_CONFIG_MAP
            if config_map is None
            else _trust_config_map_name(config_map, f"{field}.configMapName")
        ),
        cluster_trust_bundle=_boolean(
            raw.get("clusterTrustBundle"), f"{field}.clusterTrustBundle", default=False
        ),
    )


def _trust_config_map_name(value: object, field: str) -> str:
    """A ConfigMap name that is not one Kubernetes or OpenShift publishes itself."""
    name = _kubernetes_name(value, field)
    if name in RESERVED_CONFIG_MAP_NAMES or name.startswith(RESERVED_CONFIG_MAP_PREFIXES):
        raise SpecError(
            field,
            f"{quote(name)} is a name Kubernetes or OpenShift publish themselves "
            "(kube-root-ca.crt, openshift-service-ca.crt, kube-*, openshift-*); choose another",
        )
    return name


def _parse_selector(value: object, field: str) -> Mapping[str, Any] | None:
    if value is None:
        return None
    raw = _mapping(value, field)
    match_labels = _string_map(
        raw.get("matchLabels"), f"{field}.matchLabels", labels=True, ours=False
    )
    expressions = []
    for index, item in enumerate(_list(raw.get("matchExpressions"), f"{field}.matchExpressions")):
        item_field = f"{field}.matchExpressions[{index}]"
        requirement = _mapping(item, item_field)
        key = _label_key(
            _string(requirement.get("key"), f"{item_field}.key"), f"{item_field}.key", ours=False
        )
        operator = _choice(
            requirement.get("operator"),
            f"{item_field}.operator",
            ("In", "NotIn", "Exists", "DoesNotExist"),
            default="",
        )
        if not operator:
            raise SpecError(f"{item_field}.operator", "is required")
        values = tuple(
            text for _, text in _strings(requirement.get("values"), f"{item_field}.values")
        )
        if (operator in {"In", "NotIn"}) != bool(values):
            raise SpecError(
                f"{item_field}.values",
                f"must be {'set' if operator in {'In', 'NotIn'} else 'empty'} for {operator}",
            )
        expressions.append(_frozen_mapping({"key": key, "operator": operator, "values": values}))
    return _frozen_mapping({"matchLabels": match_labels, "matchExpressions": tuple(expressions)})
