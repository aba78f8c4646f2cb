"""Issuer policy: may this Certificate be issued, as written, in this namespace?

`evaluate` runs an ordered chain of small pure checks; the first that fails wins and
its `Denial` says why and what to change. The reason becomes the label of
``certmint_policy_denials_total`` and the prefix of the ``PolicyViolation`` condition
message. The pattern language (globs with ``{namespace}`` and ``{serviceAccount}``)
lives in `certmint.api.globs`; docs/policy.md explains it to users.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Final

from certmint.api import certificate_types, extension_types, fields, globs, policy_types


@dataclasses.dataclass(frozen=True)
class Denial:
    """Why a Certificate may not be issued.

    Attributes:
        reason: A stable CamelCase code, one of `REASONS`.
        message: What was refused and what to change, naming the spec field.
    """

    reason: str
    message: str


Check = Callable[
    [policy_types.IssuancePolicy, certificate_types.CertificateSpec, str], Denial | None
]


def effective_duration(
    policy: policy_types.IssuancePolicy, spec: certificate_types.CertificateSpec
) -> timedelta:
    """The lifetime a Certificate gets: its own duration or the issuer's default.

    Args:
        policy: The issuer's policy.
        spec: The Certificate.

    Returns:
        ``spec.duration`` when set, else ``policy.default_duration``.
    """
    return spec.duration if spec.duration is not None else policy.default_duration


def _requester(
    spec: certificate_types.CertificateSpec, namespace: str, patterns: Sequence[str]
) -> str:
    """Who patterns were filled in for, mentioning the ServiceAccount only when it matters."""
    who = f"namespace {fields.quote(namespace)}"
    if spec.service_account_name is not None and any(
        globs.PLACEHOLDERS[1] in pattern for pattern in patterns
    ):
        who += f" and ServiceAccount {fields.quote(spec.service_account_name)}"
    return who


def _rendered(
    spec: certificate_types.CertificateSpec, namespace: str, patterns: Sequence[str]
) -> str:
    return ", ".join(
        globs.render_glob(pattern, namespace, spec.service_account_name) for pattern in patterns
    )


def check_namespace(
    policy: policy_types.IssuancePolicy, spec: certificate_types.CertificateSpec, namespace: str
) -> Denial | None:
    """Deny a namespace the issuer does not serve (``policy.allowedNamespaces``)."""
    if globs.glob_matches(policy.allowed_namespaces, "namespace", namespace):
        return None
    allowed = (
        f"namespaces matching {', '.join(policy.allowed_namespaces)}"
        if policy.allowed_namespaces
        else "no namespace"
    )
    return Denial(
        "NamespaceNotAllowed",
        f"namespace {fields.quote(namespace)} may not use {policy.issuer_label}; "
        f"its policy allows {allowed}",
    )


def check_ca(
    policy: policy_types.IssuancePolicy, spec: certificate_types.CertificateSpec, namespace: str
) -> Denial | None:
    """Deny ``isCA: true`` unless the policy sets ``allowCA``."""
    if not spec.is_ca or policy.allow_ca:
        return None
    return Denial(
        "CANotAllowed",
        f"isCA is true but {policy.issuer_label} does not issue CA certificates "
        "(policy.allowCA is false); remove spec.isCA",
    )


def check_duration(
    policy: policy_types.IssuancePolicy, spec: certificate_types.CertificateSpec, namespace: str
) -> Denial | None:
    """Deny a lifetime outside [minDuration, maxDuration] or a renewBefore not shorter.

    The minimum is never below `policy_types.MIN_DURATION_FLOOR`, whatever the policy says.
    """
    duration = effective_duration(policy, spec)
    minimum = max(policy.min_duration, policy_types.MIN_DURATION_FLOOR)
    spelled = fields.format_duration(duration)
    if spec.duration is None:
        spelled += " (the issuer's default)"
    if not minimum <= duration <= policy.max_duration:
        return Denial(
            "DurationOutOfRange",
            f"duration {spelled} is outside what {policy.issuer_label} allows: "
            f"{fields.format_duration(minimum)} to {fields.format_duration(policy.max_duration)}; "
            "set spec.duration within that range",
        )
    if spec.renew_before is not None and spec.renew_before >= duration:
        return Denial(
            "DurationOutOfRange",
            f"renewBefore {fields.format_duration(spec.renew_before)} is not shorter than "
            f"the duration {spelled}; shorten spec.renewBefore or set a longer spec.duration",
        )
    return None


def check_spiffe_uris(
    policy: policy_types.IssuancePolicy, spec: certificate_types.CertificateSpec, namespace: str
) -> Denial | None:
    """Deny any ``spiffe://`` URI in ``spec.uris``: identities are derived, never asked for."""
    for index, uri in enumerate(spec.uris):
        if uri.partition(":")[0].lower() == "spiffe":
            return Denial(
                "SpiffeURIForbidden",
                f"uris[{index}] {fields.quote(uri)} is a SPIFFE ID; certmint derives the "
                "identity from the namespace and spec.serviceAccountName, so remove it "
                "from spec.uris",
            )
    return None


def _unmatched_name(
    *,
    reason: str,
    field: str,
    names: Sequence[str],
    patterns: Sequence[str],
    kind: globs.GlobKind,
    nothing: str,
    policy: policy_types.IssuancePolicy,
    spec: certificate_types.CertificateSpec,
    namespace: str,
) -> Denial | None:
    """The first name no pattern matches, as a Denial listing the patterns that apply."""
    for index, name in enumerate(names):
        if globs.glob_matches(
            patterns, kind, name, namespace=namespace, service_account=spec.service_account_name
        ):
            continue
        refused = f"{field}[{index}] {fields.quote(name)} is not allowed by {policy.issuer_label}"
        if not patterns:
            return Denial(reason, f"{refused}, whose policy allows no {nothing}")
        return Denial(
            reason,
            f"{refused}; allowed patterns for {_requester(spec, namespace, patterns)}: "
            f"{_rendered(spec, namespace, patterns)}",
        )
    return None


def check_dns_names(
    policy: policy_types.IssuancePolicy, spec: certificate_types.CertificateSpec, namespace: str
) -> Denial | None:
    """Deny a DNS name that matches none of ``policy.allowedDNSNames``."""
    return _unmatched_name(
        reason="DNSNameNotAllowed",
        field="dnsNames",
        names=spec.dns_names,
        patterns=policy.allowed_dns_names,
        kind="dns",
        nothing="DNS names",
        policy=policy,
        spec=spec,
        namespace=namespace,
    )


def check_ip_addresses(
    policy: policy_types.IssuancePolicy, spec: certificate_types.CertificateSpec, namespace: str
) -> Denial | None:
    """Deny an IP address inside none of ``policy.allowedIPAddresses``."""
    for index, text in enumerate(spec.ip_addresses):
        address = ipaddress.ip_address(text)
        if any(address in network for network in policy.allowed_ip_addresses):
            continue
        refused = (
            f"ipAddresses[{index}] {fields.quote(text)} is not allowed by {policy.issuer_label}"
        )
        if not policy.allowed_ip_addresses:
            return Denial("IPAddressNotAllowed", f"{refused}, whose policy allows no IP addresses")
        ranges = ", ".join(str(network) for network in policy.allowed_ip_addresses)
        return Denial("IPAddressNotAllowed", f"{refused}; allowed ranges: {ranges}")
    return None


def check_uris(
    policy: policy_types.IssuancePolicy, spec: certificate_types.CertificateSpec, namespace: str
) -> Denial | None:
    """Deny a URI that matches none of ``policy.allowedURIs``."""
    return _unmatched_name(
        reason="URINotAllowed",
        field="uris",
        names=spec.uris,
        patterns=policy.allowed_uris,
        kind="uri",
        nothing="URIs besides the SPIFFE identity",
        policy=policy,
        spec=spec,
        namespace=namespace,
    )


def check_email_addresses(
    policy: policy_types.IssuancePolicy, spec: certificate_types.CertificateSpec, namespace: str
) -> Denial | None:
    """Deny an email address that matches none of ``policy.allowedEmailAddresses``."""
    return _unmatched_name(
        reason="EmailNotAllowed",
        field="emailAddresses",
        names=spec.email_addresses,
        patterns=policy.allowed_email_addresses,
        kind="email",
        nothing="email addresses",
        policy=policy,
        spec=spec,
        namespace=namespace,
    )


def check_common_name(
    policy: policy_types.IssuancePolicy, spec: certificate_types.CertificateSpec, namespace: str
) -> Denial | None:
    """Deny a common name that is not a DNS name ``policy.allowedDNSNames`` allows.

    Old clients still read a hostname from the common name, so it must pass the same
    rule as ``dnsNames``. Identity is never read from it.
    """
    common_name = spec.common_name
    if common_name is None:
        return None
    patterns = policy.allowed_dns_names
    if fields.is_dns_name(common_name.lower(), wildcard=True) and globs.glob_matches(
        patterns,
        "dns",
        common_name,
        namespace=namespace,
        service_account=spec.service_account_name,
    ):
        return None
    allowed = (
        f"allowed patterns for {_requester(spec, namespace, patterns)}: "
        f"{_rendered(spec, namespace, patterns)}"
        if patterns
        else "its policy allows no DNS names"
    )
    return Denial(
        "CommonNameNotAllowed",
        f"commonName {fields.quote(common_name)} is not allowed by {policy.issuer_label}: "
        f"it must be a DNS name the policy allows, or be left out; {allowed}",
    )


def check_subject(
    policy: policy_types.IssuancePolicy, spec: certificate_types.CertificateSpec, namespace: str
) -> Denial | None:
    """Deny a subject attribute (O, OU, C, ST, L) no ``policy.allowedSubject`` pattern allows.

    Software that maps a certificate's organization to groups (Kubernetes maps O to
    RBAC groups) would trust whatever a Certificate asks for, so nothing is allowed
    unless the issuer lists it; an absent ``allowedSubject`` allows no attribute.
    """
    for key, attribute in certificate_types.SUBJECT_FIELDS:
        patterns = getattr(policy.allowed_subject, attribute)
        words = _SUBJECT_WORDS[key]
        denial = _unmatched_name(
            reason="SubjectNotAllowed",
            field=f"subject.{key}",
            names=getattr(spec.subject, attribute),
            patterns=patterns,
            kind="subject",
            nothing=f"subject {words} (policy.allowedSubject.{key})",
            policy=policy,
            spec=spec,
            namespace=namespace,
        )
        if denial is not None:
            return denial
    return None


#: How messages name each subject attribute.
_SUBJECT_WORDS: Final = {
    "organizations": "organizations",
    "organizationalUnits": "organizational units",
    "countries": "countries",
    "provinces": "provinces",
    "localities": "localities",
}


def _grant_applies(grant: policy_types.ClaimGrant, namespace: str) -> bool:
    return grant.namespaces is None or globs.glob_matches(grant.namespaces, "namespace", namespace)


def _granted_values(
    grants: Sequence[policy_types.ClaimGrant], namespace: str, service_account: str | None
) -> list[str]:
    """Grant values with placeholders filled in; those needing a missing ServiceAccount drop out."""
    values: list[str] = []
    for grant in grants:
        for value in grant.values:
            if service_account is None and globs.PLACEHOLDERS[1] in value:
                continue
            rendered = globs.render_glob(value, namespace, service_account)
            if rendered not in values:
                values.append(rendered)
    return values


def check_claims(
    policy: policy_types.IssuancePolicy, spec: certificate_types.CertificateSpec, namespace: str
) -> Denial | None:
    """Deny a claim key or value no grant gives this namespace; nothing else is allowed."""
    applicable = [grant for grant in policy.claims if _grant_applies(grant, namespace)]
    for key, values in spec.claims.items():
        grants = [grant for grant in applicable if grant.key == key]
        whom = f"namespace {fields.quote(namespace)} by {policy.issuer_label}"
        if not grants:
            keys = sorted({grant.key for grant in applicable})
            granted = (
                f"keys granted here: {', '.join(keys)}" if keys else "it grants no claims here"
            )
            return Denial("ClaimNotAllowed", f"claim {key} is not granted to {whom}; {granted}")
        allowed = _granted_values(grants, namespace, spec.service_account_name)
        if "*" in allowed:
            continue
        for value in values:
            if value not in allowed:
                listed = ", ".join(fields.quote(text) for text in allowed)
                return Denial(
                    "ClaimNotAllowed",
                    f"claim {key}={fields.quote(value)} is not granted to {whom}; "
                    f"values of {key} granted here: {listed or 'none'}",
                )
    return None


def check_extensions(
    policy: policy_types.IssuancePolicy, spec: certificate_types.CertificateSpec, namespace: str
) -> Denial | None:
    """Deny a raw extension whose OID the policy does not list, or that is reserved."""
    for index, extension in enumerate(spec.extensions):
        reserved = extension_types.reserved_extension_reason(extension.oid)
        if reserved is None and extension.oid in policy.allowed_extension_oids:
            continue
        refused = f"extensions[{index}] OID {extension.oid}"
        if reserved is not None:
            message = f"{refused} cannot be requested: {reserved}"
        elif policy.allowed_extension_oids:
            allowed = ", ".join(sorted(policy.allowed_extension_oids))
            message = f"{refused} is not allowed by {policy.issuer_label}; allowed OIDs: {allowed}"
        else:
            message = (
                f"{refused} is not allowed by {policy.issuer_label}, "
                "whose policy allows no raw extensions"
            )
        return Denial("ExtensionNotAllowed", message)
    return None


#: The checks in the order they run; the first denial wins.
CHECKS: Final[tuple[Check, ...]] = (
    check_namespace,
    check_ca,
    check_duration,
    check_spiffe_uris,
    check_dns_names,
    check_ip_addresses,
    check_uris,
    check_email_addresses,
    check_common_name,
    check_subject,
    check_claims,
    check_extensions,
)

#: Every reason a Denial can carry, e.g. to pre-create metric series.
REASONS: Final = (
    "NamespaceNotAllowed",
    "CANotAllowed",
    "DurationOutOfRange",
    "SpiffeURIForbidden",
    "DNSNameNotAllowed",
    "IPAddressNotAllowed",
    "URINotAllowed",
    "EmailNotAllowed",
    "CommonNameNotAllowed",
    "SubjectNotAllowed",
    "ClaimNotAllowed",
    "ExtensionNotAllowed",
)


def evaluate(
    policy: policy_types.IssuancePolicy, spec: certificate_types.CertificateSpec, *, namespace: str
) -> Denial | None:
    """Decide whether an issuer's policy allows a Certificate in a namespace.

    This does not check that the ServiceAccount exists, that the issuer serves the
    namespace at all (a namespaced Issuer only serves its own), or anything about
    the CA; those are the reconciler's preconditions.

    Args:
        policy: The issuer's policy.
        spec: The parsed Certificate.
        namespace: The Certificate's namespace.

    Returns:
        The first denial in `CHECKS` order, or None when everything is allowed.
    """
    for check in CHECKS:
        denial = check(policy, spec, namespace)
        if denial is not None:
            return denial
    return None
