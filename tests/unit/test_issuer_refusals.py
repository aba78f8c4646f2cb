"""Parsing Issuers and ClusterIssuers: every refusal names its field."""

from __future__ import annotations

from typing import Any

import pytest

from certmint.api import fields, issuer_types
from tests.unit.api_bodies import ABSENT, NOT_A_DURATION, NOT_A_NAME, issuer_body

NOT_DNS_PATTERN = (
    'is not a DNS name pattern; use lowercase labels separated by ".", '
    'with "*", {namespace} or {serviceAccount} inside a label'
)

ISSUER_ERRORS = [
    pytest.param(
        {**issuer_body(), "kind": ABSENT}, "kind", "is required", id="an object without kind"
    ),
    pytest.param(
        {**issuer_body(), "kind": "Certificate"},
        "kind",
        '"Certificate" is not one of Issuer, ClusterIssuer',
        id="an object of another kind",
    ),
    pytest.param(
        {**issuer_body(), "metadata": {}},
        "metadata.name",
        "is required",
        id="an object without name",
    ),
    pytest.param(
        {**issuer_body("Issuer"), "metadata": {"name": "w"}},
        "metadata.namespace",
        "is required",
        id="a namespaced Issuer without namespace",
    ),
    pytest.param(
        issuer_body(ca=ABSENT), "spec", "must set exactly one of ca and selfSigned", id="neither"
    ),
    pytest.param(
        issuer_body(selfSigned={}),
        "spec",
        "must set exactly one of ca and selfSigned",
        id="both ca and selfSigned",
    ),
    pytest.param(
        issuer_body(ca=ABSENT, selfSigned=True),
        "spec.selfSigned",
        "must be an object, not a boolean",
        id="selfSigned written as true",
    ),
    pytest.param(
        issuer_body(ca=ABSENT, selfSigned={}, trustDistribution={}),
        "spec.trustDistribution",
        "a selfSigned issuer has no CA to distribute; remove trustDistribution",
        id="a selfSigned issuer distributing trust",
    ),
    pytest.param(issuer_body(ca={}), "spec.ca.secretName", "is required", id="a CA without Secret"),
    pytest.param(
        issuer_body(ca={"secretName": "r", "generate": {"commonName": "c" * 65}}),
        "spec.ca.generate.commonName",
        f'"{"c" * 65}" is longer than 64 characters',
        id="a generated CA name over 64 characters",
    ),
    pytest.param(
        issuer_body(ca={"secretName": "r", "generate": {"duration": "10y"}}),
        "spec.ca.generate.duration",
        f'"10y" {NOT_A_DURATION}',
        id="a generated CA lifetime in years",
    ),
    pytest.param(
        issuer_body(
            ca={"secretName": "r", "generate": {"privateKey": {"algorithm": "RSA", "size": 1}}}
        ),
        "spec.ca.generate.privateKey.size",
        "1 is not a RSA size; use one of 2048, 3072, 4096",
        id="a generated CA key of a bad size",
    ),
    pytest.param(
        issuer_body(trustDomain="spiffe://cluster.local"),
        "spec.trustDomain",
        '"spiffe://cluster.local" is not a SPIFFE trust domain; use at most 255 lowercase '
        'letters, digits, ".", "_" and "-", without scheme or port',
        id="a trust domain with scheme",
    ),
    pytest.param(
        issuer_body(trustDomain="Cluster.Local"),
        "spec.trustDomain",
        '"Cluster.Local" is not a SPIFFE trust domain; use at most 255 lowercase '
        'letters, digits, ".", "_" and "-", without scheme or port',
        id="a trust domain with capitals",
    ),
    pytest.param(
        issuer_body(policy={"minDuration": "30s"}),
        "spec.policy.minDuration",
        "30s is below certmint's floor of 1m",
        id="a minimum below the one-minute floor",
    ),
    pytest.param(
        issuer_body(policy={"minDuration": "2h", "maxDuration": "1h"}),
        "spec.policy.maxDuration",
        "1h is shorter than minDuration 2h",
        id="a maximum below the minimum",
    ),
    pytest.param(
        issuer_body(policy={"defaultDuration": "200h"}),
        "spec.policy.defaultDuration",
        "200h is outside minDuration 1m to maxDuration 168h",
        id="a default above the maximum",
    ),
    pytest.param(
        issuer_body(policy={"allowedNamespaces": ["Team-*"]}),
        "spec.policy.allowedNamespaces[0]",
        '"Team-*" is not a namespace pattern; use lowercase letters, digits, "-" and "*"',
        id="a namespace pattern with capitals",
    ),
    pytest.param(
        issuer_body(policy={"allowedNamespaces": ["{namespace}"]}),
        "spec.policy.allowedNamespaces[0]",
        '"{namespace}" is not a namespace pattern; use lowercase letters, digits, "-" and "*"',
        id="a placeholder in a namespace pattern",
    ),
    pytest.param(
        issuer_body(policy={"allowedNamespaces": ["a", "a"]}),
        "spec.policy.allowedNamespaces[1]",
        '"a" repeats allowedNamespaces[0]',
        id="a namespace pattern twice",
    ),
    pytest.param(
        issuer_body(policy={"allowedDNSNames": ["*.{namespace}.SVC"]}),
        "spec.policy.allowedDNSNames[0]",
        f'"*.{{namespace}}.SVC" {NOT_DNS_PATTERN}',
        id="a DNS pattern with capitals",
    ),
    pytest.param(
        issuer_body(policy={"allowedDNSNames": ["*..svc"]}),
        "spec.policy.allowedDNSNames[0]",
        f'"*..svc" {NOT_DNS_PATTERN}',
        id="a DNS pattern with an empty label",
    ),
    pytest.param(
        issuer_body(policy={"allowedDNSNames": ["**.example.com"]}),
        "spec.policy.allowedDNSNames[0]",
        '"**.example.com": "**" is only for URI patterns; use "*"',
        id="a double star in a DNS pattern",
    ),
    pytest.param(
        issuer_body(policy={"allowedDNSNames": ["*.{ns}.svc"]}),
        "spec.policy.allowedDNSNames[0]",
        '"*.{ns}.svc" has the unknown placeholder {ns}; use {namespace} or {serviceAccount}',
        id="an unknown placeholder",
    ),
    pytest.param(
        issuer_body(policy={"allowedDNSNames": ["*.{namespace.svc"]}),
        "spec.policy.allowedDNSNames[0]",
        '"*.{namespace.svc" has an unmatched "{"',
        id="an unclosed placeholder",
    ),
    pytest.param(
        issuer_body(policy={"allowedURIs": ["https://x/***"]}),
        "spec.policy.allowedURIs[0]",
        '"https://x/***" has more than two "*" in a row',
        id="three stars in a row",
    ),
    pytest.param(
        issuer_body(policy={"allowedURIs": ["*://api.example.com"]}),
        "spec.policy.allowedURIs[0]",
        '"*://api.example.com" is not a URI pattern; it must start with a literal scheme '
        'such as "https:"',
        id="a URI pattern with a wildcard scheme",
    ),
    pytest.param(
        issuer_body(policy={"allowedURIs": ["spiffe://cluster.local/**"]}),
        "spec.policy.allowedURIs[0]",
        '"spiffe://cluster.local/**" is a SPIFFE ID pattern; identities are derived from '
        "the namespace and ServiceAccount and cannot be allowed as extra URIs",
        id="a URI pattern allowing SPIFFE IDs",
    ),
    pytest.param(
        issuer_body(policy={"allowedEmailAddresses": ["{namespace}.example.com"]}),
        "spec.policy.allowedEmailAddresses[0]",
        '"{namespace}.example.com" is not an email pattern; write "local@domain"',
        id="an email pattern without at sign",
    ),
    pytest.param(
        issuer_body(policy={"allowedIPAddresses": ["10.0.0.1/8"]}),
        "spec.policy.allowedIPAddresses[0]",
        '"10.0.0.1/8" is not a CIDR such as "10.0.0.0/8": 10.0.0.1/8 has host bits set',
        id="a CIDR with host bits",
    ),
    pytest.param(
        issuer_body(policy={"allowedIPAddresses": ["pod-network"]}),
        "spec.policy.allowedIPAddresses[0]",
        '"pod-network" is not a CIDR such as "10.0.0.0/8": '
        "'pod-network' does not appear to be an IPv4 or IPv6 network",
        id="a CIDR that is a name",
    ),
    pytest.param(
        issuer_body(policy={"allowCA": "no"}),
        "spec.policy.allowCA",
        "must be true or false, not a string",
        id="allowCA written as a string",
    ),
    pytest.param(
        issuer_body(policy={"claims": [{"values": ["x"]}]}),
        "spec.policy.claims[0].key",
        "is required",
        id="a grant without key",
    ),
    pytest.param(
        issuer_body(policy={"claims": [{"key": "role"}]}),
        "spec.policy.claims[0].values",
        'must list at least one value ("*" for any)',
        id="a grant without values",
    ),
    pytest.param(
        issuer_body(policy={"claims": [{"key": "role", "values": ["team-*"]}]}),
        "spec.policy.claims[0].values[0]",
        '"team-*" uses "*" inside a value; "*" only stands alone, meaning any value',
        id="a grant value with an embedded star",
    ),
    pytest.param(
        issuer_body(policy={"claims": [{"key": "role", "values": ["x"], "namespaces": []}]}),
        "spec.policy.claims[0].namespaces",
        "must list at least one namespace; leave it out to grant to every namespace",
        id="a grant to an empty list of namespaces",
    ),
    pytest.param(
        issuer_body(policy={"claims": [{"key": "role!", "values": ["x"]}]}),
        "spec.policy.claims[0].key",
        '"role!" is not a claim key',
        id="a grant key with punctuation",
    ),
    pytest.param(
        issuer_body(policy={"extensions": [{"oid": "2.5.29.19"}]}),
        "spec.policy.extensions[0].oid",
        "2.5.29.19 cannot be allowed: it is a standard X.509 extension that certmint builds "
        "from the dedicated spec fields (dnsNames, usages, isCA, ...)",
        id="allowing raw basic constraints",
    ),
    pytest.param(
        issuer_body(policy={"extensions": [{"oid": "banana"}]}),
        "spec.policy.extensions[0].oid",
        '"banana" is not a dotted OID such as "1.3.6.1.4.1.55555.1"',
        id="an OID that is a word",
    ),
    pytest.param(
        issuer_body(trustDistribution={"namespaces": []}),
        "spec.trustDistribution",
        "selects no namespace; set namespaces or namespaceSelector",
        id="distribution to no namespace",
    ),
    pytest.param(
        issuer_body("Issuer", trustDistribution={"namespaces": ["*"]}),
        "spec.trustDistribution",
        "an Issuer publishes its trust bundle only into its own namespace; namespaces, "
        "namespaceSelector and clusterTrustBundle need a ClusterIssuer",
        id="a namespaced Issuer publishing into other namespaces",
    ),
    pytest.param(
        issuer_body("Issuer", trustDistribution={"clusterTrustBundle": True}),
        "spec.trustDistribution",
        "an Issuer publishes its trust bundle only into its own namespace; namespaces, "
        "namespaceSelector and clusterTrustBundle need a ClusterIssuer",
        id="a namespaced Issuer publishing a ClusterTrustBundle",
    ),
    pytest.param(
        issuer_body(trustDistribution={"configMapName": "Trust"}),
        "spec.trustDistribution.configMapName",
        f'"Trust" {NOT_A_NAME}',
        id="a ConfigMap name with capitals",
    ),
    pytest.param(
        issuer_body(
            trustDistribution={
                "namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "Like"}]}
            }
        ),
        "spec.trustDistribution.namespaceSelector.matchExpressions[0].operator",
        '"Like" is not one of In, NotIn, Exists, DoesNotExist',
        id="an unknown selector operator",
    ),
    pytest.param(
        issuer_body(
            trustDistribution={
                "namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}
            }
        ),
        "spec.trustDistribution.namespaceSelector.matchExpressions[0].values",
        "must be set for In",
        id="an In requirement without values",
    ),
    pytest.param(
        issuer_body(
            trustDistribution={
                "namespaceSelector": {
                    "matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]
                }
            }
        ),
        "spec.trustDistribution.namespaceSelector.matchExpressions[0].values",
        "must be empty for Exists",
        id="an Exists requirement with values",
    ),
]


ISSUER_ERRORS += [
    pytest.param(
        issuer_body(policy={"extensions": [{"oid": "1.3.6.1.4.1.311.21.7"}]}),
        "spec.policy.extensions[0].oid",
        "1.3.6.1.4.1.311.21.7 cannot be allowed: it is a Microsoft CA or template extension, "
        "which the signer refuses",
        id="a policy allowing an extension the signer refuses",
    ),
    pytest.param(
        issuer_body(trustDistribution={"configMapName": "kube-root-ca.crt"}),
        "spec.trustDistribution.configMapName",
        '"kube-root-ca.crt" is a name Kubernetes or OpenShift publish themselves '
        "(kube-root-ca.crt, openshift-service-ca.crt, kube-*, openshift-*); choose another",
        id="the trust ConfigMap named kube-root-ca.crt",
    ),
    pytest.param(
        issuer_body(trustDistribution={"configMapName": "openshift-trusted-ca"}),
        "spec.trustDistribution.configMapName",
        '"openshift-trusted-ca" is a name Kubernetes or OpenShift publish themselves '
        "(kube-root-ca.crt, openshift-service-ca.crt, kube-*, openshift-*); choose another",
        id="a trust ConfigMap name starting with openshift-",
    ),
    pytest.param(
        issuer_body(policy={"allowedSubject": {"organizations": [" "]}}),
        "spec.policy.allowedSubject.organizations[0]",
        '" " is blank',
        id="a blank subject pattern",
    ),
    pytest.param(
        issuer_body(policy={"allowedSubject": {"localities": ["a\u200bb"]}}),
        "spec.policy.allowedSubject.localities[0]",
        '"a\u200bb" contains the unprintable character U+200B (ZERO WIDTH SPACE)',
        id="a subject pattern with a zero-width space",
    ),
]


@pytest.mark.parametrize(("body", "field", "message"), ISSUER_ERRORS)
def test_issuer_refusals_name_the_field(body: dict[str, Any], field: str, message: str) -> None:
    body = {key: value for key, value in body.items() if value is not ABSENT}
    with pytest.raises(fields.SpecError) as caught:
        issuer_types.IssuerSpec.from_body(body)
    assert (caught.value.field, caught.value.message) == (field, message)
