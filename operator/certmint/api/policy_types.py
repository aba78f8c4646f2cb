"""An issuer's ``spec.policy``: what Certificates using it may ask for.

`parse_policy` reads it into an `IssuancePolicy`, with the defaults docs/policy.md
documents; `certmint.core.policy` evaluates requests against it.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from datetime import timedelta
from typing import Final, TypeAlias

from certmint.api import certificate_types, extension_types, fields, globs

#: No issuer may let certificates live shorter than this, whatever its policy says.
MIN_DURATION_FLOOR: Final = timedelta(minutes=1)
DEFAULT_DURATION: Final = timedelta(hours=24)
DEFAULT_MAX_DURATION: Final = timedelta(hours=168)
DEFAULT_ALLOWED_DNS_NAMES: Final = ("*.{namespace}.svc", "*.{namespace}.svc.cluster.local")
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network


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


def parse_policy(value: object, issuer_label: str) -> IssuancePolicy:
    """An issuer's ``spec.policy``, with the documented defaults filled in."""
    field = "spec.policy"
    raw = fields.mapping(value, field)
    minimum = (
        fields.optional_duration(raw.get("minDuration"), f"{field}.minDuration")
        or MIN_DURATION_FLOOR
    )
    maximum = (
        fields.optional_duration(raw.get("maxDuration"), f"{field}.maxDuration")
        or DEFAULT_MAX_DURATION
    )
    if minimum < MIN_DURATION_FLOOR:
        raise fields.SpecError(
            f"{field}.minDuration",
            f"{fields.format_duration(minimum)} is below certmint's floor of "
            f"{fields.format_duration(MIN_DURATION_FLOOR)}",
        )
    if maximum < minimum:
        raise fields.SpecError(
            f"{field}.maxDuration",
            f"{fields.format_duration(maximum)} is shorter than minDuration "
            f"{fields.format_duration(minimum)}",
        )
    default = fields.optional_duration(raw.get("defaultDuration"), f"{field}.defaultDuration")
    if default is None:
        default = min(max(DEFAULT_DURATION, minimum), maximum)
    elif not minimum <= default <= maximum:
        raise fields.SpecError(
            f"{field}.defaultDuration",
            f"{fields.format_duration(default)} is outside minDuration "
            f"{fields.format_duration(minimum)} "
            f"to maxDuration {fields.format_duration(maximum)}",
        )
    return IssuancePolicy(
        allowed_namespaces=globs.parse_globs(
            raw.get("allowedNamespaces"), f"{field}.allowedNamespaces", "namespace", ("*",)
        ),
        default_duration=default,
        min_duration=minimum,
        max_duration=maximum,
        allowed_dns_names=globs.parse_globs(
            raw.get("allowedDNSNames"), f"{field}.allowedDNSNames", "dns", DEFAULT_ALLOWED_DNS_NAMES
        ),
        allowed_ip_addresses=_parse_networks(raw.get("allowedIPAddresses")),
        allowed_uris=globs.parse_globs(raw.get("allowedURIs"), f"{field}.allowedURIs", "uri", ()),
        allowed_email_addresses=globs.parse_globs(
            raw.get("allowedEmailAddresses"), f"{field}.allowedEmailAddresses", "email", ()
        ),
        allow_ca=fields.boolean(raw.get("allowCA"), f"{field}.allowCA", default=False),
        claims=_parse_grants(raw.get("claims")),
        allowed_extension_oids=_parse_allowed_extensions(raw.get("extensions")),
        allowed_subject=_parse_allowed_subject(raw.get("allowedSubject")),
        issuer_label=issuer_label,
    )


def _parse_allowed_subject(value: object) -> SubjectPolicy:
    """``policy.allowedSubject``: absent, like an absent attribute, allows nothing."""
    field = "spec.policy.allowedSubject"
    raw = fields.mapping(value, field)
    patterns: dict[str, tuple[str, ...]] = {}
    for key, attribute in certificate_types.SUBJECT_FIELDS:
        found = globs.parse_globs(raw.get(key), f"{field}.{key}", "subject", ())
        if key == "countries":
            found = tuple(dict.fromkeys(pattern.upper() for pattern in found))
        patterns[attribute] = found
    return SubjectPolicy(**patterns)


def _parse_networks(value: object) -> tuple[IPNetwork, ...]:
    field = "spec.policy.allowedIPAddresses"
    networks: list[IPNetwork] = []
    for item_field, text in fields.strings(value, field):
        try:
            networks.append(ipaddress.ip_network(text, strict=True))
        except ValueError as error:
            raise fields.SpecError(
                item_field, f'{fields.quote(text)} is not a CIDR such as "10.0.0.0/8": {error}'
            ) from None
    return tuple(networks)


def _parse_grants(value: object) -> tuple[ClaimGrant, ...]:
    grants: list[ClaimGrant] = []
    for index, raw in enumerate(fields.sequence(value, "spec.policy.claims")):
        field = f"spec.policy.claims[{index}]"
        item = fields.mapping(raw, field)
        key = fields.string(item.get("key"), f"{field}.key")
        if not fields.CLAIM_KEY.fullmatch(key):
            raise fields.SpecError(f"{field}.key", f"{fields.quote(key)} is not a claim key")
        values = globs.parse_globs(item.get("values"), f"{field}.values", "claim", ())
        if not values:
            raise fields.SpecError(f"{field}.values", 'must list at least one value ("*" for any)')
        namespaces = None
        if item.get("namespaces") is not None:
            namespaces = globs.parse_globs(
                item.get("namespaces"), f"{field}.namespaces", "namespace", ()
            )
            if not namespaces:
                raise fields.SpecError(
                    f"{field}.namespaces",
                    "must list at least one namespace; leave it out to grant to every namespace",
                )
        grants.append(ClaimGrant(key=key, values=values, namespaces=namespaces))
    return tuple(grants)


def _parse_allowed_extensions(value: object) -> frozenset[str]:
    oids = set()
    for index, raw in enumerate(fields.sequence(value, "spec.policy.extensions")):
        field = f"spec.policy.extensions[{index}]"
        oids.add(
            extension_types.extension_oid(
                fields.mapping(raw, field).get("oid"), f"{field}.oid", "allowed"
            )
        )
    return frozenset(oids)
