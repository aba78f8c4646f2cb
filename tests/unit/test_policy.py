"""Issuer policy: each rule allows and denies, with the whole denial asserted."""

from __future__ import annotations

import dataclasses
import ipaddress
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certmint.api import certificate_types, extension_types, globs, policy_types
from certmint.core import policy

ISSUER = 'ClusterIssuer "workloads"'
WEB = 'namespace "web"'


def issuance_policy(**fields: Any) -> policy_types.IssuancePolicy:
    """The default policy of ClusterIssuer "workloads", with some fields replaced."""
    return dataclasses.replace(policy_types.IssuancePolicy(issuer_label=ISSUER), **fields)


def certificate(**fields: Any) -> certificate_types.CertificateSpec:
    """A Certificate parsed the way the operator parses it, with some spec fields set."""
    spec = {"secretName": "api-tls", "issuerRef": {"name": "workloads", "kind": "ClusterIssuer"}}
    return certificate_types.CertificateSpec.from_body({"spec": {**spec, **fields}})


def denial(reason: str, message: str) -> policy.Denial:
    return policy.Denial(reason=reason, message=message)


DEFAULT_DNS = "*.web.svc, *.web.svc.cluster.local"
CLAIM_GRANTS = (
    policy_types.ClaimGrant(key="role", values=("reader", "writer"), namespaces=("web", "pay-*")),
    policy_types.ClaimGrant(key="role", values=("auditor",), namespaces=("audit",)),
    policy_types.ClaimGrant(key="tenant", values=("{namespace}",)),
    policy_types.ClaimGrant(key="owner", values=("{serviceAccount}",)),
    policy_types.ClaimGrant(key="env", values=("*",), namespaces=("web",)),
)

CASES = [
    # -- namespaces
    pytest.param(
        {"allowed_namespaces": ("web", "pay-*")},
        {},
        "pay-eu",
        None,
        id="a namespace matching a glob is served",
    ),
    pytest.param(
        {"allowed_namespaces": ("pay-*", "audit")},
        {},
        "web",
        denial(
            "NamespaceNotAllowed",
            f"{WEB} may not use {ISSUER}; its policy allows namespaces matching pay-*, audit",
        ),
        id="a namespace outside the globs is refused",
    ),
    pytest.param(
        {"allowed_namespaces": ()},
        {},
        "web",
        denial(
            "NamespaceNotAllowed", f"{WEB} may not use {ISSUER}; its policy allows no namespace"
        ),
        id="an issuer that allows no namespace refuses everyone",
    ),
    # -- CA certificates
    pytest.param(
        {"allow_ca": True},
        {"isCA": True},
        "web",
        None,
        id="a CA certificate where the policy allows CAs",
    ),
    pytest.param(
        {},
        {"isCA": True},
        "web",
        denial(
            "CANotAllowed",
            f"isCA is true but {ISSUER} does not issue CA certificates (policy.allowCA is "
            "false); remove spec.isCA",
        ),
        id="a CA certificate by default is refused",
    ),
    # -- durations
    pytest.param({}, {"duration": "168h"}, "web", None, id="a duration at the maximum"),
    pytest.param({}, {"duration": "1m"}, "web", None, id="a duration at the minimum"),
    pytest.param(
        {},
        {"duration": "169h"},
        "web",
        denial(
            "DurationOutOfRange",
            f"duration 169h is outside what {ISSUER} allows: 1m to 168h; "
            "set spec.duration within that range",
        ),
        id="a duration above the maximum",
    ),
    pytest.param(
        {"min_duration": timedelta(hours=1)},
        {"duration": "30m"},
        "web",
        denial(
            "DurationOutOfRange",
            f"duration 30m is outside what {ISSUER} allows: 1h to 168h; "
            "set spec.duration within that range",
        ),
        id="a duration below the minimum",
    ),
    pytest.param(
        {"min_duration": timedelta(seconds=1)},
        {"duration": "30s"},
        "web",
        denial(
            "DurationOutOfRange",
            f"duration 30s is outside what {ISSUER} allows: 1m to 168h; "
            "set spec.duration within that range",
        ),
        id="the one-minute floor holds even when a policy claims less",
    ),
    pytest.param(
        {"default_duration": timedelta(hours=200)},
        {},
        "web",
        denial(
            "DurationOutOfRange",
            f"duration 200h (the issuer's default) is outside what {ISSUER} allows: 1m to "
            "168h; set spec.duration within that range",
        ),
        id="a default outside the range names itself as the default",
    ),
    pytest.param({}, {"renewBefore": "8h"}, "web", None, id="a renewBefore inside the default"),
    pytest.param(
        {},
        {"renewBefore": "30h"},
        "web",
        denial(
            "DurationOutOfRange",
            "renewBefore 30h is not shorter than the duration 24h (the issuer's default); "
            "shorten spec.renewBefore or set a longer spec.duration",
        ),
        id="a renewBefore longer than the default duration",
    ),
    # -- SPIFFE URIs
    pytest.param(
        {"allowed_uris": ("spiffe://**",)},
        {"uris": ["SPIFFE://cluster.local/ns/web/sa/admin"]},
        "web",
        denial(
            "SpiffeURIForbidden",
            'uris[0] "SPIFFE://cluster.local/ns/web/sa/admin" is a SPIFFE ID; certmint derives '
            "the identity from the namespace and spec.serviceAccountName, so remove it from "
            "spec.uris",
        ),
        id="a user-supplied SPIFFE ID is refused whatever the URI patterns say",
    ),
    # -- DNS names
    pytest.param(
        {},
        {"dnsNames": ["api.web.svc", "api.web.svc.cluster.local", "*.web.svc"]},
        "web",
        None,
        id="service names of the own namespace by default, wildcard included",
    ),
    pytest.param(
        {},
        {"dnsNames": ["api.web.svc", "db.other.svc"]},
        "web",
        denial(
            "DNSNameNotAllowed",
            f'dnsNames[1] "db.other.svc" is not allowed by {ISSUER}; allowed patterns for '
            f"{WEB}: {DEFAULT_DNS}",
        ),
        id="a service name of another namespace",
    ),
    pytest.param(
        {},
        {"dnsNames": ["a.b.web.svc"]},
        "web",
        denial(
            "DNSNameNotAllowed",
            f'dnsNames[0] "a.b.web.svc" is not allowed by {ISSUER}; allowed patterns for '
            f"{WEB}: {DEFAULT_DNS}",
        ),
        id="a star never spans two labels",
    ),
    pytest.param(
        {},
        {"dnsNames": ["web.svc"]},
        "web",
        denial(
            "DNSNameNotAllowed",
            f'dnsNames[0] "web.svc" is not allowed by {ISSUER}; allowed patterns for '
            f"{WEB}: {DEFAULT_DNS}",
        ),
        id="a star does not make its label optional",
    ),
    pytest.param(
        {"allowed_dns_names": ("{serviceAccount}.{namespace}.svc",)},
        {"serviceAccountName": "api", "dnsNames": ["api.web.svc"]},
        "web",
        None,
        id="the ServiceAccount's own service name",
    ),
    pytest.param(
        {"allowed_dns_names": ("{serviceAccount}.{namespace}.svc",)},
        {"serviceAccountName": "api", "dnsNames": ["db.web.svc"]},
        "web",
        denial(
            "DNSNameNotAllowed",
            f'dnsNames[0] "db.web.svc" is not allowed by {ISSUER}; allowed patterns for '
            f'{WEB} and ServiceAccount "api": api.web.svc',
        ),
        id="another ServiceAccount's service name",
    ),
    pytest.param(
        {"allowed_dns_names": ("{serviceAccount}.{namespace}.svc",)},
        {"dnsNames": ["api.web.svc"]},
        "web",
        denial(
            "DNSNameNotAllowed",
            f'dnsNames[0] "api.web.svc" is not allowed by {ISSUER}; allowed patterns for '
            f"{WEB}: {{serviceAccount}}.web.svc",
        ),
        id="a ServiceAccount pattern matches nothing without a ServiceAccount",
    ),
    pytest.param(
        {"allowed_dns_names": ()},
        {"dnsNames": ["api.web.svc"]},
        "web",
        denial(
            "DNSNameNotAllowed",
            f'dnsNames[0] "api.web.svc" is not allowed by {ISSUER}, whose policy allows no '
            "DNS names",
        ),
        id="a policy without DNS patterns",
    ),
    # -- IP addresses
    pytest.param(
        {"allowed_ip_addresses": (ipaddress.ip_network("10.0.0.0/8"),)},
        {"ipAddresses": ["10.1.2.3"]},
        "web",
        None,
        id="an address inside an allowed range",
    ),
    pytest.param(
        {
            "allowed_ip_addresses": (
                ipaddress.ip_network("10.0.0.0/8"),
                ipaddress.ip_network("fd00::/8"),
            )
        },
        {"ipAddresses": ["10.1.2.3", "::ffff:10.1.2.3"]},
        "web",
        denial(
            "IPAddressNotAllowed",
            f'ipAddresses[1] "::ffff:a01:203" is not allowed by {ISSUER}; allowed ranges: '
            "10.0.0.0/8, fd00::/8",
        ),
        id="an IPv4-mapped IPv6 address is not inside an IPv4 range",
    ),
    pytest.param(
        {},
        {"ipAddresses": ["127.0.0.1"]},
        "web",
        denial(
            "IPAddressNotAllowed",
            f'ipAddresses[0] "127.0.0.1" is not allowed by {ISSUER}, whose policy allows no '
            "IP addresses",
        ),
        id="no IP addresses by default",
    ),
    # -- URIs
    pytest.param(
        {"allowed_uris": ("https://{namespace}.example.com/**",)},
        {"uris": ["https://web.example.com/v1/items"]},
        "web",
        None,
        id="a double star spans path segments",
    ),
    pytest.param(
        {"allowed_uris": ("https://{namespace}.example.com/*",)},
        {"uris": ["https://web.example.com/v1/items"]},
        "web",
        denial(
            "URINotAllowed",
            f'uris[0] "https://web.example.com/v1/items" is not allowed by {ISSUER}; allowed '
            f"patterns for {WEB}: https://web.example.com/*",
        ),
        id="a single star stays in one path segment",
    ),
    pytest.param(
        {"allowed_uris": ("https://*.example.com/",)},
        {"uris": ["https://evil.test#.example.com/"]},
        "web",
        denial(
            "URINotAllowed",
            f'uris[0] "https://evil.test#.example.com/" is not allowed by {ISSUER}; '
            f"allowed patterns for {WEB}: https://*.example.com/",
        ),
        id="a star cannot swallow a fragment marker to change the host",
    ),
    pytest.param(
        {"allowed_uris": ("https://*.example.com/",)},
        {"uris": ["https://user@evil.test/.example.com/"]},
        "web",
        denial(
            "URINotAllowed",
            f'uris[0] "https://user@evil.test/.example.com/" is not allowed by {ISSUER}; '
            f"allowed patterns for {WEB}: https://*.example.com/",
        ),
        id="a star cannot swallow userinfo to change the host",
    ),
    pytest.param(
        {},
        {"uris": ["https://api.example.com/"]},
        "web",
        denial(
            "URINotAllowed",
            f'uris[0] "https://api.example.com/" is not allowed by {ISSUER}, whose policy '
            "allows no URIs besides the SPIFFE identity",
        ),
        id="no extra URIs by default",
    ),
    # -- email addresses
    pytest.param(
        {"allowed_email_addresses": ("*@{namespace}.example.com",)},
        {"emailAddresses": ["ops.team@web.example.com"]},
        "web",
        None,
        id="any mailbox of the namespace's domain",
    ),
    pytest.param(
        {"allowed_email_addresses": ("ops@*.example.com",)},
        {"emailAddresses": ["ops@a.b.example.com"]},
        "web",
        denial(
            "EmailNotAllowed",
            f'emailAddresses[0] "ops@a.b.example.com" is not allowed by {ISSUER}; allowed '
            f"patterns for {WEB}: ops@*.example.com",
        ),
        id="a star after the at sign stays in one label",
    ),
    pytest.param(
        {},
        {"emailAddresses": ["ops@example.com"]},
        "web",
        denial(
            "EmailNotAllowed",
            f'emailAddresses[0] "ops@example.com" is not allowed by {ISSUER}, whose policy '
            "allows no email addresses",
        ),
        id="no email addresses by default",
    ),
    # -- common name
    pytest.param(
        {},
        {"commonName": "api.web.svc"},
        "web",
        None,
        id="a common name that is an allowed DNS name",
    ),
    pytest.param(
        {},
        {"commonName": "Payments API"},
        "web",
        denial(
            "CommonNameNotAllowed",
            f'commonName "Payments API" is not allowed by {ISSUER}: it must be a DNS name the '
            f"policy allows, or be left out; allowed patterns for {WEB}: {DEFAULT_DNS}",
        ),
        id="a common name that is not a DNS name",
    ),
    pytest.param(
        {},
        {"commonName": "api.other.svc"},
        "web",
        denial(
            "CommonNameNotAllowed",
            f'commonName "api.other.svc" is not allowed by {ISSUER}: it must be a DNS name the '
            f"policy allows, or be left out; allowed patterns for {WEB}: {DEFAULT_DNS}",
        ),
        id="a common name of another namespace",
    ),
    pytest.param(
        {"allowed_dns_names": ()},
        {"commonName": "api.web.svc"},
        "web",
        denial(
            "CommonNameNotAllowed",
            f'commonName "api.web.svc" is not allowed by {ISSUER}: it must be a DNS name the '
            "policy allows, or be left out; its policy allows no DNS names",
        ),
        id="a common name where no DNS name is allowed",
    ),
    # -- claims
    pytest.param(
        {"claims": CLAIM_GRANTS},
        {
            "serviceAccountName": "api",
            "claims": {
                "role": ["reader", "writer"],
                "tenant": ["web"],
                "owner": ["api"],
                "env": ["anything"],
            },
        },
        "web",
        None,
        id="claims granted by value, placeholder and star",
    ),
    pytest.param(
        {},
        {"claims": {"role": ["reader"]}},
        "web",
        denial(
            "ClaimNotAllowed",
            f"claim role is not granted to {WEB} by {ISSUER}; it grants no claims here",
        ),
        id="no claims by default",
    ),
    pytest.param(
        {"claims": CLAIM_GRANTS},
        {"claims": {"team": ["x"]}},
        "web",
        denial(
            "ClaimNotAllowed",
            f"claim team is not granted to {WEB} by {ISSUER}; keys granted here: env, owner, "
            "role, tenant",
        ),
        id="a claim key no grant names",
    ),
    pytest.param(
        {"claims": CLAIM_GRANTS},
        {"claims": {"role": ["admin", "reader"]}},
        "web",
        denial(
            "ClaimNotAllowed",
            f'claim role="admin" is not granted to {WEB} by {ISSUER}; values of role granted '
            'here: "reader", "writer"',
        ),
        id="a claim value no grant lists",
    ),
    pytest.param(
        {"claims": CLAIM_GRANTS},
        {"claims": {"role": ["auditor"]}},
        "pay-eu",
        denial(
            "ClaimNotAllowed",
            f'claim role="auditor" is not granted to namespace "pay-eu" by {ISSUER}; values of '
            'role granted here: "reader", "writer"',
        ),
        id="a value granted only to another namespace",
    ),
    pytest.param(
        {"claims": CLAIM_GRANTS},
        {"claims": {"role": ["auditor"]}},
        "audit",
        None,
        id="grants for the same key add up per namespace",
    ),
    pytest.param(
        {"claims": CLAIM_GRANTS},
        {"claims": {"env": ["prod"]}},
        "audit",
        denial(
            "ClaimNotAllowed",
            'claim env is not granted to namespace "audit" by '
            f"{ISSUER}; keys granted here: owner, role, tenant",
        ),
        id="a star grant limited to another namespace",
    ),
    pytest.param(
        {"claims": CLAIM_GRANTS},
        {"claims": {"tenant": ["payments"]}},
        "web",
        denial(
            "ClaimNotAllowed",
            f'claim tenant="payments" is not granted to {WEB} by {ISSUER}; values of tenant '
            'granted here: "web"',
        ),
        id="a tenant claim naming another namespace",
    ),
    pytest.param(
        {"claims": CLAIM_GRANTS},
        {"claims": {"owner": ["api"]}},
        "web",
        denial(
            "ClaimNotAllowed",
            f'claim owner="api" is not granted to {WEB} by {ISSUER}; values of owner granted '
            "here: none",
        ),
        id="a ServiceAccount claim without a ServiceAccount",
    ),
    # -- extensions
    pytest.param(
        {"allowed_extension_oids": frozenset({"1.3.6.1.4.1.55555.1.7"})},
        {"extensions": [{"oid": "1.3.6.1.4.1.55555.1.7", "value": {"utf8String": "x"}}]},
        "web",
        None,
        id="an extension on the allow-list",
    ),
    # -- subject attributes besides the common name
    pytest.param(
        {},
        {"subject": {"organizations": ["system:masters"]}},
        "web",
        denial(
            "SubjectNotAllowed",
            f'subject.organizations[0] "system:masters" is not allowed by {ISSUER}, whose '
            "policy allows no subject organizations (policy.allowedSubject.organizations)",
        ),
        id="an organization without allowedSubject is refused: O=system:masters",
    ),
    pytest.param(
        {"allowed_subject": policy_types.SubjectPolicy(organizations=("{namespace}",))},
        {"subject": {"organizations": ["web"]}},
        "web",
        None,
        id="the requester's namespace as organization where allowedSubject lists it",
    ),
    pytest.param(
        {"allowed_subject": policy_types.SubjectPolicy(organizations=("{namespace}",))},
        {"subject": {"organizations": ["pay"]}},
        "web",
        denial(
            "SubjectNotAllowed",
            f'subject.organizations[0] "pay" is not allowed by {ISSUER}; allowed patterns '
            f"for {WEB}: web",
        ),
        id="another namespace as organization is refused",
    ),
    pytest.param(
        {"allowed_subject": policy_types.SubjectPolicy(organizations=("*",))},
        {"subject": {"organizations": ["Acme"], "organizationalUnits": ["ops"]}},
        "web",
        denial(
            "SubjectNotAllowed",
            f'subject.organizationalUnits[0] "ops" is not allowed by {ISSUER}, whose policy '
            "allows no subject organizational units (policy.allowedSubject.organizationalUnits)",
        ),
        id="an organizational unit is refused when only organizations are allowed",
    ),
    pytest.param(
        {"allowed_subject": policy_types.SubjectPolicy(countries=("DE",), localities=("Ber*",))},
        {"subject": {"countries": ["de"], "localities": ["Berlin"]}},
        "web",
        None,
        id="a country compares upper case and a locality glob matches",
    ),
    pytest.param(
        {"allowed_subject": policy_types.SubjectPolicy(provinces=("Bavaria",))},
        {"subject": {"provinces": ["bavaria"]}},
        "web",
        denial(
            "SubjectNotAllowed",
            f'subject.provinces[0] "bavaria" is not allowed by {ISSUER}; allowed patterns '
            f"for {WEB}: Bavaria",
        ),
        id="subject patterns are case-sensitive",
    ),
    pytest.param(
        {"allowed_extension_oids": frozenset({"1.3.6.1.4.1.55555.1.7", "1.3.6.1.4.1.55555.1.1"})},
        {
            "extensions": [
                {"oid": "1.3.6.1.4.1.55555.1.7", "value": {"utf8String": "x"}},
                {"oid": "1.3.6.1.4.1.55555.1.8", "value": {"utf8String": "x"}},
            ]
        },
        "web",
        denial(
            "ExtensionNotAllowed",
            f"extensions[1] OID 1.3.6.1.4.1.55555.1.8 is not allowed by {ISSUER}; allowed "
            "OIDs: 1.3.6.1.4.1.55555.1.1, 1.3.6.1.4.1.55555.1.7",
        ),
        id="an extension off the allow-list",
    ),
    pytest.param(
        {},
        {"extensions": [{"oid": "1.3.6.1.4.1.55555.1.7", "value": {"boolean": True}}]},
        "web",
        denial(
            "ExtensionNotAllowed",
            f"extensions[0] OID 1.3.6.1.4.1.55555.1.7 is not allowed by {ISSUER}, whose policy "
            "allows no raw extensions",
        ),
        id="no raw extensions by default",
    ),
    # -- order
    pytest.param(
        {"allowed_namespaces": ("audit",)},
        {"isCA": True, "dnsNames": ["db.other.svc"]},
        "web",
        denial(
            "NamespaceNotAllowed",
            f"{WEB} may not use {ISSUER}; its policy allows namespaces matching audit",
        ),
        id="the namespace check wins over every other",
    ),
    pytest.param(
        {},
        {"dnsNames": ["db.other.svc"], "claims": {"role": ["admin"]}},
        "web",
        denial(
            "DNSNameNotAllowed",
            f'dnsNames[0] "db.other.svc" is not allowed by {ISSUER}; allowed patterns for '
            f"{WEB}: {DEFAULT_DNS}",
        ),
        id="names are checked before claims",
    ),
]


@pytest.mark.parametrize(("policy_fields", "spec_fields", "namespace", "expected"), CASES)
def test_evaluate(
    policy_fields: dict[str, Any],
    spec_fields: dict[str, Any],
    namespace: str,
    expected: policy.Denial | None,
) -> None:
    result = policy.evaluate(
        issuance_policy(**policy_fields), certificate(**spec_fields), namespace=namespace
    )
    assert result == expected


def test_every_check_has_a_distinct_reason_listed_in_reasons() -> None:
    reasons = {case.values[3].reason for case in CASES if isinstance(case.values[3], policy.Denial)}
    assert reasons == set(policy.REASONS)
    assert len(policy.CHECKS) == len(policy.REASONS)


def test_a_reserved_extension_is_refused_even_if_a_policy_lists_it() -> None:
    # from_body refuses both sides; a hand-built spec and policy must not slip through.
    oid = "2.5.29.17"
    spec = dataclasses.replace(
        certificate(),
        extensions=(extension_types.ExtensionSpec(oid, critical=False, kind="der", value="BQA="),),
    )
    result = policy.evaluate(
        issuance_policy(allowed_extension_oids=frozenset({oid})), spec, namespace="web"
    )
    assert result == denial(
        "ExtensionNotAllowed",
        "extensions[0] OID 2.5.29.17 cannot be requested: it is a standard X.509 extension that "
        "certmint builds from the dedicated spec fields (dnsNames, usages, isCA, ...)",
    )


@pytest.mark.parametrize(
    ("duration", "expected"),
    [
        pytest.param("2h", timedelta(hours=2), id="the Certificate's own duration"),
        pytest.param(None, timedelta(hours=24), id="the issuer's default without one"),
    ],
)
def test_effective_duration(duration: str | None, expected: timedelta) -> None:
    spec = certificate(duration=duration)
    assert policy.effective_duration(issuance_policy(), spec) == expected


# ---------------------------------------------------------------------------
# Placeholders are values, never patterns


@pytest.mark.parametrize(
    ("pattern", "namespace", "service_account", "names", "denial_message"),
    [
        pytest.param(
            "*.{namespace}.svc",
            "*",
            None,
            ("api.web.svc", "api.*.svc"),
            f'dnsNames[0] "api.web.svc" is not allowed by {ISSUER}; allowed patterns for '
            'namespace "*": *.*.svc',
            id="a namespace named star is no wildcard",
        ),
        pytest.param(
            "*.{namespace}.svc",
            "w.b",
            None,
            ("api.wxb.svc", "api.w.b.svc"),
            f'dnsNames[0] "api.wxb.svc" is not allowed by {ISSUER}; allowed patterns for '
            'namespace "w.b": *.w.b.svc',
            id="a dot in a namespace is no regex dot",
        ),
        pytest.param(
            "{serviceAccount}.{namespace}.svc",
            "web",
            "a.*",
            ("a.x.web.svc", "a.*.web.svc"),
            f'dnsNames[0] "a.x.web.svc" is not allowed by {ISSUER}; allowed patterns for '
            f'{WEB} and ServiceAccount "a.*": a.*.web.svc',
            id="a ServiceAccount named with a star is no wildcard",
        ),
        pytest.param(
            "{serviceAccount}.{namespace}.svc",
            "web",
            "[a-z]+",
            ("a.web.svc", "[a-z]+.web.svc"),
            f'dnsNames[0] "a.web.svc" is not allowed by {ISSUER}; allowed patterns for '
            f'{WEB} and ServiceAccount "[a-z]+": [a-z]+.web.svc',
            id="a ServiceAccount named like a regex is no regex",
        ),
    ],
)
def test_substituted_values_match_only_themselves(
    pattern: str,
    namespace: str,
    service_account: str | None,
    names: tuple[str, str],
    denial_message: str,
) -> None:
    crafted, literal = names

    # Names Kubernetes would refuse, built by hand to prove that substitution escapes them.
    def evaluate(dns_name: str) -> policy.Denial | None:
        spec = dataclasses.replace(
            certificate(), service_account_name=service_account, dns_names=(dns_name,)
        )
        return policy.evaluate(
            issuance_policy(allowed_dns_names=(pattern,)), spec, namespace=namespace
        )

    assert evaluate(crafted) == denial("DNSNameNotAllowed", denial_message)
    assert evaluate(literal) is None


@given(st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20))
def test_a_placeholder_matches_its_value_and_nothing_else(value: str, other: str) -> None:
    assert globs.glob_matches(["{namespace}"], "namespace", value, namespace=value)
    assert globs.glob_matches(["{namespace}"], "namespace", other, namespace=value) is (
        other == value
    )
