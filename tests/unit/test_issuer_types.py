"""Parsing Issuers and ClusterIssuers: defaults, every field, policy, trust distribution."""

from __future__ import annotations

import ipaddress
import types
from datetime import timedelta
from typing import Any

import pytest

from certmint.api import certificate_types, issuer_types, policy_types
from tests.unit.api_bodies import ABSENT, issuer_body

# ---------------------------------------------------------------------------
# Issuers


def test_issuer_defaults_follow_the_design() -> None:
    issuer = issuer_types.IssuerSpec.from_body(issuer_body())
    assert issuer == issuer_types.IssuerSpec(
        kind="ClusterIssuer",
        name="workloads",
        namespace=None,
        ca=issuer_types.CASpec(secret_name="workloads-ca", generate=None),
        self_signed=False,
        trust_domain="cluster.local",
        policy=policy_types.IssuancePolicy(
            allowed_namespaces=("*",),
            default_duration=timedelta(hours=24),
            min_duration=timedelta(minutes=1),
            max_duration=timedelta(hours=168),
            allowed_dns_names=("*.{namespace}.svc", "*.{namespace}.svc.cluster.local"),
            allowed_ip_addresses=(),
            allowed_uris=(),
            allowed_email_addresses=(),
            allow_ca=False,
            claims=(),
            allowed_extension_oids=frozenset(),
            issuer_label='ClusterIssuer "workloads"',
        ),
        trust_distribution=None,
    )


def test_issuer_every_field_is_read() -> None:
    body = issuer_body(
        ca={
            "secretName": "root",
            "generate": {
                "commonName": "payments root",
                "duration": "43800h",
                "privateKey": {"algorithm": "ECDSA", "size": 384},
            },
        },
        trustDomain="prod.example.org",
        policy={
            "allowedNamespaces": ["payments", "team-*"],
            "defaultDuration": "1h",
            "minDuration": "5m",
            "maxDuration": "12h",
            "allowedDNSNames": ["{serviceAccount}.{namespace}.svc"],
            "allowedIPAddresses": ["10.0.0.0/8", "fd00::/8", "192.0.2.7"],
            "allowedURIs": ["https://{namespace}.example.com/**"],
            "allowedEmailAddresses": ["*@{namespace}.example.com"],
            "allowCA": True,
            "claims": [
                {"key": "role", "values": ["reader", "writer"], "namespaces": ["payments"]},
                {"key": "tenant", "values": ["{namespace}"]},
            ],
            "extensions": [{"oid": "1.3.6.1.4.1.55555.1.7"}],
        },
        trustDistribution={
            "namespaces": ["team-*"],
            "namespaceSelector": {"matchLabels": {"trust": "workloads"}},
            "configMapName": "workloads-trust",
            "clusterTrustBundle": True,
        },
    )
    issuer = issuer_types.IssuerSpec.from_body(body)
    assert issuer == issuer_types.IssuerSpec(
        kind="ClusterIssuer",
        name="workloads",
        namespace=None,
        ca=issuer_types.CASpec(
            secret_name="root",
            generate=issuer_types.GenerateSpec(
                common_name="payments root",
                duration=timedelta(hours=43800),
                private_key=certificate_types.PrivateKeySpec(algorithm="ECDSA", size=384),
            ),
        ),
        self_signed=False,
        trust_domain="prod.example.org",
        policy=policy_types.IssuancePolicy(
            allowed_namespaces=("payments", "team-*"),
            default_duration=timedelta(hours=1),
            min_duration=timedelta(minutes=5),
            max_duration=timedelta(hours=12),
            allowed_dns_names=("{serviceAccount}.{namespace}.svc",),
            allowed_ip_addresses=(
                ipaddress.ip_network("10.0.0.0/8"),
                ipaddress.ip_network("fd00::/8"),
                ipaddress.ip_network("192.0.2.7/32"),
            ),
            allowed_uris=("https://{namespace}.example.com/**",),
            allowed_email_addresses=("*@{namespace}.example.com",),
            allow_ca=True,
            claims=(
                policy_types.ClaimGrant(
                    key="role", values=("reader", "writer"), namespaces=("payments",)
                ),
                policy_types.ClaimGrant(key="tenant", values=("{namespace}",), namespaces=None),
            ),
            allowed_extension_oids=frozenset({"1.3.6.1.4.1.55555.1.7"}),
            issuer_label='ClusterIssuer "workloads"',
        ),
        trust_distribution=issuer_types.TrustDistributionSpec(
            namespaces=("team-*",),
            namespace_selector=types.MappingProxyType(
                {
                    "matchLabels": types.MappingProxyType({"trust": "workloads"}),
                    "matchExpressions": (),
                }
            ),
            config_map_name="workloads-trust",
            cluster_trust_bundle=True,
        ),
    )
    assert issuer.ref == certificate_types.IssuerRef(name="workloads", kind="ClusterIssuer")


@pytest.mark.parametrize(
    ("spec_fields", "attribute", "expected"),
    [
        pytest.param(
            {"ca": ABSENT, "selfSigned": {}}, "self_signed", True, id="a selfSigned issuer"
        ),
        pytest.param(
            {"ca": {"secretName": "root", "generate": {}}},
            "ca",
            issuer_types.CASpec(
                secret_name="root",
                generate=issuer_types.GenerateSpec(
                    common_name="workloads root CA",
                    duration=timedelta(hours=87600),
                    private_key=certificate_types.PrivateKeySpec(algorithm="ECDSA", size=256),
                ),
            ),
            id="a generated CA defaults to ten years of ECDSA P-256",
        ),
        pytest.param(
            {"policy": {"maxDuration": "1h"}},
            "policy",
            policy_types.IssuancePolicy(
                max_duration=timedelta(hours=1),
                default_duration=timedelta(hours=1),
                issuer_label='ClusterIssuer "workloads"',
            ),
            id="the default duration shrinks to a short maxDuration",
        ),
        pytest.param(
            {"policy": {"minDuration": "48h"}},
            "policy",
            policy_types.IssuancePolicy(
                min_duration=timedelta(hours=48),
                default_duration=timedelta(hours=48),
                issuer_label='ClusterIssuer "workloads"',
            ),
            id="the default duration grows to a long minDuration",
        ),
        pytest.param(
            {"policy": {"allowedDNSNames": [], "allowedNamespaces": []}},
            "policy",
            policy_types.IssuancePolicy(
                allowed_dns_names=(),
                allowed_namespaces=(),
                issuer_label='ClusterIssuer "workloads"',
            ),
            id="empty allow-lists allow nothing",
        ),
        pytest.param(
            {"trustDistribution": {}},
            "trust_distribution",
            issuer_types.TrustDistributionSpec(namespaces=("*",), namespace_selector=None),
            id="an empty trustDistribution publishes everywhere",
        ),
        pytest.param(
            {"trustDistribution": {"namespaceSelector": {}}},
            "trust_distribution",
            issuer_types.TrustDistributionSpec(
                namespaces=(),
                namespace_selector=types.MappingProxyType(
                    {"matchLabels": types.MappingProxyType({}), "matchExpressions": ()}
                ),
            ),
            id="a selector alone publishes only where it matches",
        ),
    ],
)
def test_issuer_choices_are_read(
    spec_fields: dict[str, Any], attribute: str, expected: Any
) -> None:
    assert (
        getattr(issuer_types.IssuerSpec.from_body(issuer_body(**spec_fields)), attribute)
        == expected
    )


def test_a_namespaced_issuer_publishes_trust_only_into_its_own_namespace() -> None:
    issuer = issuer_types.IssuerSpec.from_body(
        issuer_body("Issuer", trustDistribution={"configMapName": "payments-trust"})
    )
    assert (issuer.namespace, issuer.ref, issuer.policy.issuer_label) == (
        "payments",
        certificate_types.IssuerRef(name="workloads", kind="Issuer"),
        'Issuer "workloads"',
    )
    assert issuer.trust_distribution == issuer_types.TrustDistributionSpec(
        namespaces=("payments",), namespace_selector=None, config_map_name="payments-trust"
    )


def test_allowed_subject_is_read_with_countries_upper_case() -> None:
    spec = issuer_types.IssuerSpec.from_body(
        issuer_body(
            policy={
                "allowedSubject": {
                    "organizations": ["{namespace}", "Acme *"],
                    "countries": ["de", "DE"],
                }
            }
        )
    )
    assert spec.policy.allowed_subject == policy_types.SubjectPolicy(
        organizations=("{namespace}", "Acme *"), countries=("DE",)
    )


def test_without_allowed_subject_no_subject_attribute_is_allowed() -> None:
    spec = issuer_types.IssuerSpec.from_body(issuer_body())
    assert spec.policy.allowed_subject == policy_types.SubjectPolicy()


# ---------------------------------------------------------------------------
# Trust distribution targets


_DISTRIBUTION = issuer_types.IssuerSpec.from_body(
    issuer_body(
        trustDistribution={
            "namespaces": ["team-*"],
            "namespaceSelector": {
                "matchLabels": {"trust": "workloads"},
                "matchExpressions": [
                    {"key": "env", "operator": "In", "values": ["prod", "staging"]},
                    {"key": "tier", "operator": "NotIn", "values": ["legacy"]},
                    {"key": "example.com/owner", "operator": "Exists"},
                    {"key": "quarantined", "operator": "DoesNotExist"},
                ],
            },
        }
    )
).trust_distribution


def selector() -> issuer_types.TrustDistributionSpec:
    assert _DISTRIBUTION is not None
    return _DISTRIBUTION


@pytest.mark.parametrize(
    ("namespace", "labels", "expected"),
    [
        pytest.param("team-a", {}, True, id="a name matching a glob needs no labels"),
        pytest.param(
            "payments",
            {"trust": "workloads", "env": "prod", "example.com/owner": "x"},
            True,
            id="labels meeting every requirement",
        ),
        pytest.param(
            "payments",
            {"trust": "other", "env": "prod", "example.com/owner": "x"},
            False,
            id="a matchLabels value that differs",
        ),
        pytest.param(
            "payments",
            {"trust": "workloads", "env": "dev", "example.com/owner": "x"},
            False,
            id="a value outside In",
        ),
        pytest.param(
            "payments",
            {"trust": "workloads", "env": "prod", "tier": "legacy", "example.com/owner": "x"},
            False,
            id="a value inside NotIn",
        ),
        pytest.param(
            "payments",
            {"trust": "workloads", "env": "prod"},
            False,
            id="a missing Exists label",
        ),
        pytest.param(
            "payments",
            {"trust": "workloads", "env": "prod", "example.com/owner": "x", "quarantined": ""},
            False,
            id="a present DoesNotExist label",
        ),
    ],
)
def test_trust_distribution_selects_namespaces(
    namespace: str, labels: dict[str, str], expected: bool
) -> None:
    assert selector().selects(namespace, labels) is expected


def test_a_distribution_without_globs_or_selector_selects_nothing() -> None:
    assert (
        issuer_types.TrustDistributionSpec(namespace_selector=None, namespaces=()).selects("a", {})
        is False
    )
