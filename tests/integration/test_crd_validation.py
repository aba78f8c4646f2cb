"""The API server itself refuses malformed certmint objects, through the CRDs in crds/.

Objects go to the real kube-apiserver; refusals are checked on what a user sees from
`kubectl apply`: the field path, the reason and the message of each cause. Invalid
objects are sent as server-side dry runs, so nothing is stored.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client

from tests.integration.conftest import Kubectl

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "crds"
EXAMPLES = ROOT / "examples"
GROUP, VERSION = "certmint.io", "v1alpha1"
PLURALS = {"Certificate": "certificates", "Issuer": "issuers", "ClusterIssuer": "clusterissuers"}
DURATION_PATTERN = (
    "^([0-9]{1,6}([.][0-9]{1,9})?h)?([0-9]{1,6}([.][0-9]{1,9})?m)?([0-9]{1,6}([.][0-9]{1,9})?s)?$"
)
CLAIMS_ARC = "2.25.255037599343673218920774665946782441960"
#: How the reserved-arc refusal names the arcs the signer refuses besides the standard ones.
RESERVED_ARCS_MESSAGE = (
    "2.16.840.1.113730.1 (Netscape), 1.3.6.1.4.1.311.20.2 and 1.3.6.1.4.1.311.21 "
    "(Microsoft) and certmint's own arcs are built by the operator"
)
#: The server adds this cause whenever a schema error stopped it from running CEL rules.
SKIPPED_RULES_FIELD = "<nil>"

Body = dict[str, Any]


class _Drop:
    """Marks a key to remove from the base object."""


DROP = _Drop()


def _with(base: Mapping[str, Any], changes: Mapping[str, Any]) -> Body:
    result = copy.deepcopy(dict(base))
    for key, value in changes.items():
        if isinstance(value, _Drop):
            result.pop(key, None)
        else:
            result[key] = value
    return result


def certificate(name: str = "web", **changes: Any) -> Body:
    """A valid Certificate, with spec keys replaced (or dropped with DROP)."""
    spec = {
        "secretName": "web-tls",
        "issuerRef": {"name": "workloads", "kind": "ClusterIssuer"},
        "serviceAccountName": "web",
    }
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Certificate",
        "metadata": {"name": name},
        "spec": _with(spec, changes),
    }


def issuer(kind: str = "ClusterIssuer", name: str | None = None, **changes: Any) -> Body:
    """A valid Issuer or ClusterIssuer, with spec keys replaced (or dropped with DROP).

    Without a name, a ClusterIssuer gets a unique one: it is cluster-wide, and the
    examples may have created "workloads" already.
    """
    spec = {"ca": {"secretName": "workloads-ca"}}
    if name is None:
        name = "workloads" if kind == "Issuer" else f"test-{uuid.uuid4().hex[:8]}"
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": {"name": name},
        "spec": _with(spec, changes),
    }


def create(api: client.CustomObjectsApi, body: Body, namespace: str, *, dry_run: bool) -> Body:
    """Creates (or dry-runs) a certmint object in the namespace, or cluster-wide."""
    plural = PLURALS[body["kind"]]
    mode = "All" if dry_run else None
    if body["kind"] == "ClusterIssuer":
        created = api.create_cluster_custom_object(GROUP, VERSION, plural, body, dry_run=mode)
    else:
        created = api.create_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, body, dry_run=mode
        )
    return cast(Body, created)


def read(api: client.CustomObjectsApi, kind: str, namespace: str, name: str) -> Body:
    """Reads a certmint object back from the API server."""
    if kind == "ClusterIssuer":
        found = api.get_cluster_custom_object(GROUP, VERSION, PLURALS[kind], name)
    else:
        found = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS[kind], name)
    return cast(Body, found)


@dataclasses.dataclass(frozen=True)
class Cause:
    """One cause of a refusal: where, the kind of error, and how its message ends."""

    field: str
    reason: str
    message_end: str


def causes_of(refused: client.ApiException) -> list[tuple[str, str, str]]:
    """The (field, reason, message) causes of a 422, without the skipped-rules notice."""
    assert refused.status == 422, refused.body
    return [
        (cause["field"], cause["reason"], cause["message"])
        for cause in json.loads(refused.body or "{}")["details"]["causes"]
        if cause["field"] != SKIPPED_RULES_FIELD
    ]


def refusal(api: client.CustomObjectsApi, body: Body, namespace: str) -> list[tuple[str, str, str]]:
    """Sends the object as a dry run and returns the causes of the server's 422."""
    with pytest.raises(client.ApiException) as refused:
        create(api, body, namespace, dry_run=True)
    return causes_of(refused.value)


INVALID_OBJECTS = [
    # --- Certificate: renewal and lifetime
    pytest.param(
        certificate(renewBefore="8h", renewBeforePercentage=30),
        Cause(
            "spec.renewBeforePercentage",
            "FieldValueForbidden",
            "renewBefore and renewBeforePercentage are mutually exclusive; set at most one",
        ),
        id="renewBefore together with renewBeforePercentage",
    ),
    pytest.param(
        certificate(duration="8h", renewBefore="480m"),
        Cause(
            "spec.renewBefore",
            "FieldValueInvalid",
            "renewBefore (480m) must be shorter than duration (8h)",
        ),
        id="a renewBefore as long as the duration",
    ),
    pytest.param(
        certificate(renewBeforePercentage=0),
        Cause(
            "spec.renewBeforePercentage",
            "FieldValueInvalid",
            "should be greater than or equal to 1",
        ),
        id="a renewBeforePercentage of zero",
    ),
    pytest.param(
        certificate(renewBeforePercentage=100),
        Cause(
            "spec.renewBeforePercentage",
            "FieldValueInvalid",
            "should be less than or equal to 99",
        ),
        id="a renewBeforePercentage of one hundred",
    ),
    pytest.param(
        certificate(duration="7d"),
        Cause(
            "spec.duration",
            "FieldValueInvalid",
            f"should match '{DURATION_PATTERN}'",
        ),
        id="a duration in days",
    ),
    pytest.param(
        certificate(duration="1500ms"),
        Cause(
            "spec.duration",
            "FieldValueInvalid",
            f"should match '{DURATION_PATTERN}'",
        ),
        id="a duration in milliseconds",
    ),
    pytest.param(
        certificate(duration="0h"),
        Cause(
            "spec.duration",
            "FieldValueInvalid",
            "must be longer than zero",
        ),
        id="a zero duration",
    ),
    pytest.param(
        certificate(renewBefore="0s"),
        Cause(
            "spec.renewBefore",
            "FieldValueInvalid",
            "must be longer than zero",
        ),
        id="a zero renewBefore",
    ),
    # --- Certificate: private key
    pytest.param(
        certificate(privateKey={"algorithm": "DSA"}),
        Cause(
            "spec.privateKey.algorithm",
            "FieldValueNotSupported",
            'supported values: "ECDSA", "RSA", "Ed25519"',
        ),
        id="an unknown key algorithm",
    ),
    pytest.param(
        certificate(privateKey={"algorithm": "RSA", "size": 1024}),
        Cause(
            "spec.privateKey.size",
            "FieldValueInvalid",
            "size for RSA must be 2048, 3072 or 4096",
        ),
        id="an RSA key of 1024 bits",
    ),
    pytest.param(
        certificate(privateKey={"algorithm": "ECDSA", "size": 521}),
        Cause(
            "spec.privateKey.size",
            "FieldValueInvalid",
            "size for ECDSA must be 256 or 384",
        ),
        id="an ECDSA key on P-521",
    ),
    pytest.param(
        certificate(privateKey={"algorithm": "Ed25519", "size": 256}),
        Cause(
            "spec.privateKey.size",
            "FieldValueInvalid",
            "size must be omitted for Ed25519",
        ),
        id="a size for an Ed25519 key",
    ),
    pytest.param(
        certificate(privateKey={"size": 2048}),
        Cause(
            "spec.privateKey.size",
            "FieldValueInvalid",
            "size for ECDSA must be 256 or 384",
        ),
        id="a key size without an algorithm, checked as ECDSA",
    ),
    pytest.param(
        certificate(privateKey={"rotationPolicy": "Sometimes"}),
        Cause(
            "spec.privateKey.rotationPolicy",
            "FieldValueNotSupported",
            'supported values: "Always", "Never"',
        ),
        id="an unknown key rotation policy",
    ),
    # --- Certificate: extensions
    pytest.param(
        certificate(extensions=[{"oid": "1.3.9.7", "value": {"utf8String": "a", "integer": 1}}]),
        Cause(
            "spec.extensions[0].value",
            "FieldValueInvalid",
            "set exactly one of utf8String, integer, boolean, der",
        ),
        id="an extension value with two encodings",
    ),
    pytest.param(
        certificate(extensions=[{"oid": "1.3.9.7", "value": {}}]),
        Cause(
            "spec.extensions[0].value",
            "FieldValueInvalid",
            "set exactly one of utf8String, integer, boolean, der",
        ),
        id="an extension value with no encoding",
    ),
    pytest.param(
        certificate(extensions=[{"oid": "2.5.29.17", "value": {"der": "MAA="}}]),
        Cause(
            "spec.extensions[0].oid",
            "FieldValueForbidden",
            "are built by the operator and cannot be requested",
        ),
        id="a raw extension that would replace the SAN",
    ),
    pytest.param(
        certificate(extensions=[{"oid": f"{CLAIMS_ARC}.1", "value": {"der": "MAA="}}]),
        Cause(
            "spec.extensions[0].oid",
            "FieldValueForbidden",
            "are built by the operator and cannot be requested",
        ),
        id="a raw extension in certmint's own arc",
    ),
    pytest.param(
        certificate(extensions=[{"oid": "1.3.abc", "value": {"boolean": True}}]),
        Cause(
            "spec.extensions[0].oid",
            "FieldValueInvalid",
            "should match '^[0-2]([.](0|[1-9][0-9]*))+$'",
        ),
        id="a malformed extension OID",
    ),
    pytest.param(
        certificate(
            extensions=[
                {"oid": "1.3.9.7", "value": {"boolean": True}},
                {"oid": "1.3.9.7", "value": {"integer": 2}},
            ]
        ),
        Cause(
            "spec.extensions[1]",
            "FieldValueDuplicate",
            'Duplicate value: {"oid":"1.3.9.7"}',
        ),
        id="the same extension OID twice",
    ),
    # --- Certificate: references and names
    pytest.param(
        certificate(issuerRef={"name": "workloads", "kind": "ExternalIssuer"}),
        Cause(
            "spec.issuerRef.kind",
            "FieldValueNotSupported",
            'supported values: "Issuer", "ClusterIssuer"',
        ),
        id="an issuerRef of an unknown kind",
    ),
    pytest.param(
        certificate(issuerRef={"kind": "ClusterIssuer"}),
        Cause(
            "spec.issuerRef.name",
            "FieldValueRequired",
            "Required value",
        ),
        id="an issuerRef without a name",
    ),
    pytest.param(
        certificate(secretName=DROP),
        Cause(
            "spec.secretName",
            "FieldValueRequired",
            "Required value",
        ),
        id="a Certificate without a secretName",
    ),
    pytest.param(
        certificate(secretName="Web_TLS"),
        Cause(
            "spec.secretName",
            "FieldValueTypeInvalid",
            'spec.secretName in body must be of type k8s-long-name: "Web_TLS"',
        ),
        id="a secretName that is not a DNS-1123 name",
    ),
    pytest.param(
        certificate(secretDeletionPolicy="Orphan"),
        Cause(
            "spec.secretDeletionPolicy",
            "FieldValueNotSupported",
            'supported values: "Retain", "Delete"',
        ),
        id="an unknown secretDeletionPolicy",
    ),
    pytest.param(
        certificate(serviceAccountName=DROP),
        Cause(
            "spec",
            "FieldValueRequired",
            "a Certificate must name its subject: set serviceAccountName, commonName, "
            "or at least one of dnsNames, ipAddresses, uris, emailAddresses",
        ),
        id="a Certificate that names no subject",
    ),
    pytest.param(
        certificate(commonName="x" * 65),
        Cause(
            "spec.commonName",
            "FieldValueTooLong",
            "may not be more than 64 bytes",
        ),
        id="a commonName over 64 characters",
    ),
    pytest.param(
        certificate(subject={"countries": ["49"]}),
        Cause(
            "spec.subject.countries[0]",
            "FieldValueInvalid",
            "should match '^[A-Za-z]{2}$'",
        ),
        id="a calling code instead of a two-letter country code",
    ),
    pytest.param(
        certificate(dnsNames=["web_api.demo.svc"]),
        Cause(
            "spec.dnsNames[0]",
            "FieldValueInvalid",
            "([.][A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*$'",
        ),
        id="a DNS name with an underscore",
    ),
    pytest.param(
        certificate(dnsNames=["web.demo.svc", "web.demo.svc"]),
        Cause(
            "spec.dnsNames[1]",
            "FieldValueDuplicate",
            'Duplicate value: "web.demo.svc"',
        ),
        id="the same DNS name twice",
    ),
    pytest.param(
        certificate(ipAddresses=["10.0.0.300"]),
        Cause(
            "spec.ipAddresses[0]",
            "FieldValueInvalid",
            "must be an IPv4 or IPv6 address",
        ),
        id="an IP address that is not one",
    ),
    pytest.param(
        certificate(uris=["spiffe://cluster.local/ns/demo/sa/admin"]),
        Cause(
            "spec.uris[0]",
            "FieldValueForbidden",
            "spiffe:// URIs are not allowed here; the identity is derived from serviceAccountName",
        ),
        id="a SPIFFE ID among the extra URIs",
    ),
    pytest.param(
        certificate(uris=["/api/v1"]),
        Cause(
            "spec.uris[0]",
            "FieldValueInvalid",
            "must be an absolute URI with a scheme",
        ),
        id="a URI without a scheme",
    ),
    pytest.param(
        certificate(emailAddresses=["ops"]),
        Cause(
            "spec.emailAddresses[0]",
            "FieldValueInvalid",
            "should match '^[^@\\s]+@[^@\\s]+$'",
        ),
        id="an email address without a domain",
    ),
    # --- Certificate: usages, claims, outputs
    pytest.param(
        certificate(usages=["digital signature", "world domination"]),
        Cause(
            "spec.usages[1]",
            "FieldValueNotSupported",
            '"timestamping", "ocsp signing", "any"',
        ),
        id="an unknown usage",
    ),
    pytest.param(
        certificate(usages=["digital signature", "cert sign"]),
        Cause(
            "spec.usages",
            "FieldValueInvalid",
            "usages 'cert sign' and 'crl sign' are only allowed when isCA is true",
        ),
        id="cert sign on a leaf",
    ),
    pytest.param(
        certificate(isCA=True),
        Cause(
            "spec.isCA",
            "FieldValueForbidden",
            "a CA certificate cannot carry a workload identity; "
            "remove serviceAccountName or set isCA to false",
        ),
        id="a CA certificate with a workload identity",
    ),
    pytest.param(
        certificate(claims={"team role": ["reader"]}),
        Cause(
            "spec.claims",
            "FieldValueInvalid",
            "claim keys are at most 253 letters, digits, '.', '_', '/' and '-', "
            "starting and ending with a letter or digit",
        ),
        id="a claim key with a space",
    ),
    pytest.param(
        certificate(claims={"role": []}),
        Cause(
            "spec.claims.role",
            "FieldValueInvalid",
            "should have at least 1 items",
        ),
        id="a claim without values",
    ),
    pytest.param(
        certificate(additionalOutputFormats=[{"type": "PKCS7"}]),
        Cause(
            "spec.additionalOutputFormats[0].type",
            "FieldValueNotSupported",
            'supported values: "CombinedPEM", "DER"',
        ),
        id="an unknown additional output format",
    ),
    pytest.param(
        certificate(keystores={"pkcs12": {"create": True}}),
        Cause(
            "spec.keystores.pkcs12.passwordSecretRef",
            "FieldValueRequired",
            "Required value",
        ),
        id="a PKCS#12 keystore without a password",
    ),
    pytest.param(
        certificate(secretTemplate={"labels": {"certmint.io/certificate-name": "other"}}),
        Cause(
            "spec.secretTemplate.labels",
            "FieldValueForbidden",
            "keys under certmint.io/ are reserved for the operator",
        ),
        id="a Secret label the operator owns",
    ),
    pytest.param(
        certificate(secretTemplate={"annotations": {"not a key": "x"}}),
        Cause(
            "spec.secretTemplate.annotations",
            "FieldValueInvalid",
            "keys must be name or prefix/name, as for any Kubernetes label or annotation",
        ),
        id="a Secret annotation whose key is malformed",
    ),
    # --- Issuer and ClusterIssuer
    pytest.param(
        issuer(selfSigned={}),
        Cause(
            "spec",
            "FieldValueInvalid",
            "set exactly one of ca or selfSigned",
        ),
        id="an issuer with both ca and selfSigned",
    ),
    pytest.param(
        issuer(ca=DROP),
        Cause(
            "spec",
            "FieldValueInvalid",
            "set exactly one of ca or selfSigned",
        ),
        id="an issuer with neither ca nor selfSigned",
    ),
    pytest.param(
        issuer(ca={"generate": {}}),
        Cause(
            "spec.ca.secretName",
            "FieldValueRequired",
            "Required value",
        ),
        id="a ca without a secretName",
    ),
    pytest.param(
        issuer(trustDomain="spiffe://cluster.local"),
        Cause(
            "spec.trustDomain",
            "FieldValueInvalid",
            "should match '^[a-z0-9._-]+$'",
        ),
        id="a trust domain written as a URI",
    ),
    pytest.param(
        issuer(policy={"minDuration": "2h", "maxDuration": "1h"}),
        Cause(
            "spec.policy.minDuration",
            "FieldValueInvalid",
            "minDuration (2h) must not exceed maxDuration (1h)",
        ),
        id="a minDuration longer than the maxDuration",
    ),
    pytest.param(
        issuer(policy={"defaultDuration": "200h"}),
        Cause(
            "spec.policy.defaultDuration",
            "FieldValueInvalid",
            "defaultDuration (200h) must not exceed maxDuration (168h)",
        ),
        id="a defaultDuration beyond the default maxDuration",
    ),
    pytest.param(
        issuer(policy={"minDuration": "1h", "defaultDuration": "30m"}),
        Cause(
            "spec.policy.defaultDuration",
            "FieldValueInvalid",
            "defaultDuration (30m) must not be shorter than minDuration (1h)",
        ),
        id="a defaultDuration below the minDuration",
    ),
    pytest.param(
        issuer(policy={"minDuration": "30s"}),
        Cause(
            "spec.policy.minDuration",
            "FieldValueInvalid",
            "must be at least 1m, certmint's floor for any certificate lifetime",
        ),
        id="a minDuration under one minute",
    ),
    pytest.param(
        issuer(
            ca={
                "secretName": "workloads-ca",
                "generate": {"privateKey": {"algorithm": "RSA", "size": 384}},
            }
        ),
        Cause(
            "spec.ca.generate.privateKey.size",
            "FieldValueInvalid",
            "size for RSA must be 2048, 3072 or 4096",
        ),
        id="a generated RSA CA key of 384 bits",
    ),
    pytest.param(
        issuer(ca={"secretName": "workloads-ca", "generate": {"duration": "10y"}}),
        Cause(
            "spec.ca.generate.duration",
            "FieldValueInvalid",
            f"should match '{DURATION_PATTERN}'",
        ),
        id="a generated CA lifetime in years",
    ),
    pytest.param(
        issuer(policy={"claims": [{"key": "role"}]}),
        Cause(
            "spec.policy.claims[0].values",
            "FieldValueRequired",
            "Required value",
        ),
        id="a claim grant without values",
    ),
    pytest.param(
        issuer(policy={"allowedIPAddresses": ["10.0.0.1"]}),
        Cause(
            "spec.policy.allowedIPAddresses[0]",
            "FieldValueInvalid",
            "must be a CIDR such as 10.0.0.0/8 or fd00::/8",
        ),
        id="an allowed IP range that is a bare address",
    ),
    pytest.param(
        issuer(policy={"allowedDNSNames": ["{pod}.svc"]}),
        Cause(
            "spec.policy.allowedDNSNames[0]",
            "FieldValueInvalid",
            "should match '^([a-z0-9.*-]|[{]namespace[}]|[{]serviceAccount[}])+$'",
        ),
        id="a DNS pattern with an unknown placeholder",
    ),
    pytest.param(
        issuer(policy={"allowedURIs": ["/api/*"]}),
        Cause(
            "spec.policy.allowedURIs[0]",
            "FieldValueInvalid",
            'a URI pattern starts with a literal scheme such as "https:"',
        ),
        id="a URI pattern without a scheme",
    ),
    pytest.param(
        issuer(policy={"allowedURIs": ["spiffe://cluster.local/**"]}),
        Cause(
            "spec.policy.allowedURIs[0]",
            "FieldValueForbidden",
            "SPIFFE IDs are derived from the namespace and ServiceAccount "
            "and cannot be allowed as extra URIs",
        ),
        id="a URI pattern that would allow SPIFFE IDs",
    ),
    pytest.param(
        issuer(policy={"extensions": [{"oid": "2.5.29.19"}]}),
        Cause(
            "spec.policy.extensions[0].oid",
            "FieldValueForbidden",
            "are built by the operator and cannot be allowed",
        ),
        id="a policy that allows raw BasicConstraints",
    ),
    pytest.param(
        issuer(policy={"allowedNamespaces": ["Payments"]}),
        Cause(
            "spec.policy.allowedNamespaces[0]",
            "FieldValueInvalid",
            "should match '^[a-z0-9*-]+$'",
        ),
        id="a namespace glob with capitals",
    ),
    pytest.param(
        issuer(ca=DROP, selfSigned={}, trustDistribution={"namespaces": ["*"]}),
        Cause(
            "spec.trustDistribution",
            "FieldValueForbidden",
            "a selfSigned issuer has no CA to distribute; remove trustDistribution",
        ),
        id="trust distribution from a selfSigned issuer",
    ),
    pytest.param(
        issuer(ca=DROP, selfSigned={}, podCertificates={"signerName": "certmint.io/pods"}),
        Cause(
            "spec.podCertificates",
            "FieldValueForbidden",
            "a selfSigned issuer cannot sign pod certificates; use ca",
        ),
        id="pod certificates from a selfSigned issuer",
    ),
    pytest.param(
        issuer(podCertificates={"signerName": "example.com/pods"}),
        Cause(
            "spec.podCertificates.signerName",
            "FieldValueInvalid",
            "must be certmint.io/<name>: lower case letters, digits, '-' and '.'",
        ),
        id="a pod certificate signer name outside certmint.io",
    ),
    pytest.param(
        issuer(podCertificates={"signerName": "certmint.io/pods", "duration": "30m"}),
        Cause(
            "spec.podCertificates.duration",
            "FieldValueInvalid",
            "must be at least 1h, the API server's floor for pod certificates",
        ),
        id="a pod certificate lifetime under an hour",
    ),
    pytest.param(
        issuer(podCertificates={"signerName": "certmint.io/pods", "keyTypes": ["ECDSAP521"]}),
        Cause(
            "spec.podCertificates.keyTypes[0]",
            "FieldValueNotSupported",
            'supported values: "ECDSAP256", "ECDSAP384", "ED25519", "RSA3072", "RSA4096"',
        ),
        id="a pod certificate key type certmint cannot certify",
    ),
    pytest.param(
        issuer("Issuer", trustDistribution={"namespaces": ["*"]}),
        Cause(
            "spec.trustDistribution",
            "FieldValueForbidden",
            "an Issuer publishes its trust bundle only into its own namespace; "
            "namespaces, namespaceSelector and clusterTrustBundle need a ClusterIssuer",
        ),
        id="an Issuer that publishes into other namespaces",
    ),
    pytest.param(
        issuer("Issuer", trustDistribution={"clusterTrustBundle": True}),
        Cause(
            "spec.trustDistribution",
            "FieldValueForbidden",
            "namespaces, namespaceSelector and clusterTrustBundle need a ClusterIssuer",
        ),
        id="an Issuer that publishes a ClusterTrustBundle",
    ),
    pytest.param(
        issuer(
            trustDistribution={
                "namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "In"}]}
            }
        ),
        Cause(
            "spec.trustDistribution.namespaceSelector.matchExpressions[0]",
            "FieldValueInvalid",
            "In and NotIn need values; Exists and DoesNotExist take none",
        ),
        id="a selector In without values",
    ),
    pytest.param(
        issuer(
            trustDistribution={
                "namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "Matches"}]}
            }
        ),
        Cause(
            "spec.trustDistribution.namespaceSelector.matchExpressions[0].operator",
            "FieldValueNotSupported",
            'supported values: "In", "NotIn", "Exists", "DoesNotExist"',
        ),
        id="an unknown selector operator",
    ),
    pytest.param(
        issuer(trustDistribution={"namespaceSelector": {"matchLabels": {"team name": "a"}}}),
        Cause(
            "spec.trustDistribution.namespaceSelector.matchLabels",
            "FieldValueInvalid",
            "keys must be name or prefix/name, as for any Kubernetes label",
        ),
        id="a selector label key with a space",
    ),
    # --- objects certmint does not own, and what the signer refuses (issue #15)
    pytest.param(
        issuer(trustDistribution={"configMapName": "kube-root-ca.crt"}),
        Cause(
            "spec.trustDistribution.configMapName",
            "FieldValueForbidden",
            "names Kubernetes or OpenShift publish themselves (kube-root-ca.crt, "
            "openshift-service-ca.crt, kube-*, openshift-*) cannot be trust ConfigMaps",
        ),
        id="the trust ConfigMap named kube-root-ca.crt",
    ),
    pytest.param(
        issuer(trustDistribution={"configMapName": "kube-proxy"}),
        Cause(
            "spec.trustDistribution.configMapName",
            "FieldValueForbidden",
            "names Kubernetes or OpenShift publish themselves (kube-root-ca.crt, "
            "openshift-service-ca.crt, kube-*, openshift-*) cannot be trust ConfigMaps",
        ),
        id="a trust ConfigMap name starting with kube-",
    ),
    pytest.param(
        issuer(policy={"extensions": [{"oid": "2.16.840.1.113730.1.13"}]}),
        Cause(
            "spec.policy.extensions[0].oid",
            "FieldValueForbidden",
            RESERVED_ARCS_MESSAGE + " and cannot be allowed",
        ),
        id="a policy allowing a Netscape extension the signer refuses",
    ),
    pytest.param(
        certificate(extensions=[{"oid": "1.3.6.1.4.1.311.21.7", "value": {"der": "MAA="}}]),
        Cause(
            "spec.extensions[0].oid",
            "FieldValueForbidden",
            RESERVED_ARCS_MESSAGE + " and cannot be requested",
        ),
        id="a Microsoft template extension the signer refuses",
    ),
    pytest.param(
        certificate(extensions=[{"oid": "1.3.6.1.4.1.55555.1", "value": {"der": "AQH"}}]),
        Cause(
            "spec.extensions[0].value.der",
            "FieldValueInvalid",
            "must be standard base64 (A-Z, a-z, 0-9, +, /, padded with =)",
        ),
        id="DER text that is not padded base64",
    ),
    pytest.param(
        issuer(policy={"allowedSubject": {"organizations": ["ok", ""]}}),
        Cause(
            "spec.policy.allowedSubject.organizations[1]",
            "FieldValueInvalid",
            "should be at least 1 chars long",
        ),
        id="an empty allowedSubject pattern",
    ),
]


@pytest.mark.parametrize(("body", "expected"), INVALID_OBJECTS)
def test_the_api_server_refuses_an_object_with(
    kube: client.ApiClient, namespace: str, body: Body, expected: Cause
) -> None:
    causes = refusal(client.CustomObjectsApi(kube), body, namespace)

    assert len(causes) == 1, causes
    field, reason, message = causes[0]
    assert (field, reason) == (expected.field, expected.reason), message
    assert message.endswith(expected.message_end), message


EVERY_CERTIFICATE_FIELD: Body = {
    "secretName": "api-tls",
    "issuerRef": {"name": "workloads", "kind": "ClusterIssuer"},
    "serviceAccountName": "api",
    "commonName": "api",
    "subject": {
        "organizations": ["Example"],
        "organizationalUnits": ["Payments"],
        "countries": ["de"],
        "provinces": ["Berlin"],
        "localities": ["Berlin"],
    },
    "dnsNames": ["api.demo.svc", "*.api.demo.svc", "API.Demo.svc.cluster.local"],
    "ipAddresses": ["10.0.0.7", "fd00::7"],
    "uris": ["https://api.example.com/v1"],
    "emailAddresses": ["ops@example.com"],
    "claims": {"role": ["reader", "writer"], "example.com/env": ["prod"]},
    "extensions": [
        {"oid": "1.3.6.1.4.1.55555.1.7", "critical": False, "value": {"utf8String": "x"}},
        {"oid": "1.3.6.1.4.1.55555.1.8", "critical": False, "value": {"integer": -3}},
        {"oid": "1.3.6.1.4.1.55555.1.9", "critical": True, "value": {"boolean": True}},
        {"oid": "1.3.6.1.4.1.55555.1.10", "critical": False, "value": {"der": "BAJoaQ=="}},
        {"oid": "1.3.6.1.4.1.55555.1.11", "critical": False, "value": {"der": "AQH/"}},
    ],
    "duration": "1h30m",
    "renewBefore": "0.5h",
    "privateKey": {"algorithm": "RSA", "size": 4096, "rotationPolicy": "Never"},
    "usages": ["digital signature", "key encipherment", "server auth", "client auth"],
    "isCA": False,
    "secretTemplate": {
        "labels": {"app.kubernetes.io/name": "api"},
        "annotations": {"example.com/owner": "payments team"},
    },
    "additionalOutputFormats": [{"type": "CombinedPEM"}, {"type": "DER"}],
    "keystores": {
        "pkcs12": {"create": True, "passwordSecretRef": {"name": "p12-pass", "key": "password"}}
    },
    "secretDeletionPolicy": "Delete",
}

EVERY_ISSUER_FIELD: Body = {
    "ca": {
        "secretName": "workloads-ca",
        "generate": {
            "commonName": "workloads-root",
            "duration": "87600h",
            "privateKey": {"algorithm": "ECDSA", "size": 384},
        },
    },
    "trustDomain": "prod.example.com",
    "policy": {
        "allowedNamespaces": ["*"],
        "defaultDuration": "24h",
        "minDuration": "1m",
        "maxDuration": "168h",
        "allowedDNSNames": ["{serviceAccount}.{namespace}.svc", "*.{namespace}.svc"],
        "allowedIPAddresses": ["10.0.0.0/8", "fd00::/8"],
        "allowedURIs": ["https://{namespace}.example.com/**"],
        "allowedEmailAddresses": ["*@example.com"],
        "allowCA": True,
        "claims": [
            {"key": "role", "values": ["reader", "writer"], "namespaces": ["payments"]},
            {"key": "env", "values": ["*"]},
        ],
        "extensions": [{"oid": "1.3.6.1.4.1.55555.1.7"}],
        "allowedSubject": {
            "organizations": ["{namespace}", "Example *"],
            "organizationalUnits": [],
            "countries": ["DE"],
            "provinces": ["*"],
            "localities": ["Berlin"],
        },
    },
    "trustDistribution": {
        "namespaces": ["team-*"],
        "namespaceSelector": {
            "matchLabels": {"example.com/trust": "workloads"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod"]},
                {"key": "legacy", "operator": "DoesNotExist"},
            ],
        },
        "configMapName": "workloads-trust",
        "clusterTrustBundle": True,
    },
    "podCertificates": {
        "signerName": "certmint.io/every-field",
        "keyTypes": ["ECDSAP256", "ED25519"],
        "duration": "2h",
    },
}

VALID_OBJECTS = [
    pytest.param(certificate(**EVERY_CERTIFICATE_FIELD), id="a Certificate using every field"),
    pytest.param(certificate(renewBeforePercentage=1), id="renewBeforePercentage of 1"),
    pytest.param(certificate(renewBeforePercentage=99), id="renewBeforePercentage of 99"),
    pytest.param(
        certificate(duration="2h", renewBefore="1h59m59s"),
        id="a renewBefore just under the duration",
    ),
    pytest.param(
        certificate(privateKey={"algorithm": "Ed25519"}), id="an Ed25519 key without a size"
    ),
    pytest.param(
        certificate(privateKey={"algorithm": "ECDSA", "size": 384}), id="an ECDSA key on P-384"
    ),
    pytest.param(
        certificate(
            serviceAccountName=DROP,
            commonName="team CA",
            isCA=True,
            usages=["cert sign", "crl sign", "digital signature"],
        ),
        id="a CA certificate with cert sign",
    ),
    pytest.param(
        certificate(serviceAccountName=DROP, ipAddresses=["192.0.2.1"]),
        id="a Certificate named only by an IP address",
    ),
    pytest.param(issuer(**EVERY_ISSUER_FIELD), id="a ClusterIssuer using every field"),
    pytest.param(
        issuer(ca=DROP, selfSigned={}, policy={"maxDuration": "1h"}),
        id="a selfSigned ClusterIssuer whose default lifetime the operator clamps",
    ),
    pytest.param(
        issuer("Issuer", trustDistribution={"configMapName": "team-trust"}),
        id="an Issuer publishing into its own namespace",
    ),
]


def _contains(actual: Any, expected: Any) -> bool:
    """Whether `actual` holds everything in `expected` (extra defaulted keys allowed)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and _contains(actual[key], value) for key, value in expected.items()
        )
    return bool(actual == expected)


@pytest.mark.parametrize("body", VALID_OBJECTS)
def test_the_api_server_accepts_and_keeps_every_field(
    kube: client.ApiClient, namespace: str, body: Body
) -> None:
    created = create(client.CustomObjectsApi(kube), body, namespace, dry_run=True)

    assert _contains(created["spec"], body["spec"]), created["spec"]


@pytest.mark.parametrize(
    "path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda path: f"the example {path.name}"
)
def test_the_examples_pass_the_schema(kube: client.ApiClient, namespace: str, path: Path) -> None:
    documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    certmint_objects = [doc for doc in documents if doc["apiVersion"].startswith(f"{GROUP}/")]
    assert certmint_objects, f"{path.name} holds no certmint object"

    for body in certmint_objects:
        if body["kind"] == "ClusterIssuer":
            body["metadata"]["name"] = f"example-{uuid.uuid4().hex[:8]}"
        else:
            body["metadata"]["namespace"] = namespace
        created = create(client.CustomObjectsApi(kube), body, namespace, dry_run=True)

        assert _contains(created["spec"], body["spec"]), created["spec"]


@pytest.fixture
def cluster_issuer_name(kube: client.ApiClient) -> Iterator[str]:
    """A unique ClusterIssuer name; the object and its CA Secret are deleted after the test."""
    name = f"defaults-{uuid.uuid4().hex[:8]}"
    yield name
    for delete, args in (
        (
            client.CustomObjectsApi(kube).delete_cluster_custom_object,
            (GROUP, VERSION, "clusterissuers", name),
        ),
        (client.CoreV1Api(kube).delete_namespaced_secret, (f"{name}-ca", "certmint-system")),
    ):
        try:
            delete(*args)
        except client.ApiException as err:
            if err.status != 404:
                raise


def test_a_minimal_certificate_is_stored_with_its_defaults(
    kube: client.ApiClient, namespace: str
) -> None:
    api = client.CustomObjectsApi(kube)
    body = certificate(
        issuerRef={"name": "team"}, extensions=[{"oid": "1.3.9.7", "value": {"boolean": True}}]
    )
    create(api, body, namespace, dry_run=False)

    stored = read(api, "Certificate", namespace, "web")

    assert stored["spec"] == {
        "secretName": "web-tls",
        "issuerRef": {"name": "team", "kind": "Issuer"},
        "serviceAccountName": "web",
        "extensions": [{"oid": "1.3.9.7", "critical": False, "value": {"boolean": True}}],
        "privateKey": {"algorithm": "ECDSA", "rotationPolicy": "Always"},
        "isCA": False,
        "secretDeletionPolicy": "Retain",
    }


def test_a_minimal_cluster_issuer_is_stored_with_its_defaults(
    kube: client.ApiClient, cluster_issuer_name: str
) -> None:
    api = client.CustomObjectsApi(kube)
    # A CA Secret of its own: the session operator may generate it before the issuer is
    # deleted, and a shared name would hand that CA to a later issuer (the README's).
    ca_secret = f"{cluster_issuer_name}-ca"
    body = issuer(
        name=cluster_issuer_name,
        ca={"secretName": ca_secret, "generate": {}},
        trustDistribution={},
    )
    create(api, body, "", dry_run=False)

    stored = read(api, "ClusterIssuer", "", cluster_issuer_name)

    assert stored["spec"] == {
        "ca": {
            "secretName": ca_secret,
            "generate": {"duration": "87600h", "privateKey": {"algorithm": "ECDSA"}},
        },
        "trustDomain": "cluster.local",
        "policy": {
            "allowedNamespaces": ["*"],
            "minDuration": "1m",
            "maxDuration": "168h",
            "allowedDNSNames": ["*.{namespace}.svc", "*.{namespace}.svc.cluster.local"],
            "allowCA": False,
        },
        "trustDistribution": {"configMapName": "certmint-trust", "clusterTrustBundle": False},
    }


def patch_status(
    api: client.CustomObjectsApi, kind: str, namespace: str, name: str, status: Body
) -> Body:
    """Merge-patches the status subresource, as the operator does; returns the stored object.

    The response is the object right after this write: an operator running against the
    same cluster may rewrite the status of test objects later, never within this call.
    """
    patched = api.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURALS[kind], name, {"status": status}
    )
    return cast(Body, patched)


@dataclasses.dataclass(frozen=True)
class TableRow:
    """What `kubectl get` shows for one object, with the object it was computed from."""

    columns: list[tuple[str, int]]
    cells: list[Any]
    object: Body


def table_row(kube: client.ApiClient, plural: str, namespace: str, name: str) -> TableRow:
    """Reads one object as a server-side Table (columns, cells and object in one snapshot)."""
    method, url, headers, body, post_params = kube.param_serialize(
        "GET",
        f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{plural}/{name}",
        query_params=[("includeObject", "Object")],
        header_params={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
        auth_settings=["BearerToken"],
    )
    response = kube.call_api(method, url, header_params=headers, body=body, post_params=post_params)
    raw: bytes = response.read()  # type: ignore[no-untyped-call]  # the client is untyped here
    table = json.loads(raw)
    row = table["rows"][0]
    return TableRow(
        columns=[
            (column["name"], column.get("priority", 0)) for column in table["columnDefinitions"]
        ],
        cells=row["cells"],
        object=row["object"],
    )


def _ready(body: Body) -> Mapping[str, Any]:
    conditions = body.get("status", {}).get("conditions", [])
    return next((c for c in conditions if c["type"] == "Ready"), {})


CERTIFICATE_STATUS: Body = {
    "conditions": [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Ready",
            "message": "the certificate is up to date and has not expired",
            "lastTransitionTime": "2026-11-27T12:00:00Z",
            "observedGeneration": 1,
        },
        {
            "type": "Issuing",
            "status": "False",
            "reason": "Issued",
            "message": "no issuance in progress",
            "lastTransitionTime": "2026-11-27T12:00:00Z",
            "observedGeneration": 1,
        },
    ],
    "identity": "spiffe://cluster.local/ns/demo/sa/web",
    "serialNumber": "5f0c2a9e81d3b7764a1e",
    "notBefore": "2026-11-27T11:59:50Z",
    "notAfter": "2026-11-28T12:00:00Z",
    "renewalTime": "2026-11-28T04:00:00Z",
    "revision": 1,
    "failedIssuanceAttempts": 0,
    "lastFailureTime": "2026-11-27T11:00:00Z",
    "issuerFingerprint": "ab" * 32,
}

ISSUER_STATUS: Body = {
    "conditions": [
        {
            "type": "Ready",
            "status": "True",
            "reason": "CAReady",
            "message": "signing with CA CN=workloads-root",
            "lastTransitionTime": "2026-11-27T12:00:00Z",
            "observedGeneration": 1,
        }
    ],
    "ca": {
        "subject": "CN=workloads-root",
        "notAfter": "2036-11-25T12:00:00Z",
        "fingerprintSHA256": "cd" * 32,
    },
    "trustBundle": [
        {
            "fingerprintSHA256": "cd" * 32,
            "notAfter": "2036-11-25T12:00:00Z",
            "role": "current",
            "subject": "CN=workloads-root",
        },
        {
            "fingerprintSHA256": "ef" * 32,
            "notAfter": "2046-11-25T12:00:00Z",
            "role": "next",
            "subject": "CN=workloads-root-2",
        },
    ],
    "rotation": {
        "phase": "Prepared",
        "preparedAt": "2026-11-27T12:00:00Z",
        "activateAfter": "2026-11-28T12:00:00Z",
    },
}


def test_every_certificate_status_field_survives_the_status_subresource(
    kube: client.ApiClient, namespace: str
) -> None:
    api = client.CustomObjectsApi(kube)
    create(api, certificate(), namespace, dry_run=False)

    patched = patch_status(api, "Certificate", namespace, "web", CERTIFICATE_STATUS)

    assert patched["status"] == CERTIFICATE_STATUS


def test_every_issuer_status_field_survives_the_status_subresource(
    kube: client.ApiClient, namespace: str
) -> None:
    api = client.CustomObjectsApi(kube)
    create(api, issuer("Issuer"), namespace, dry_run=False)

    patched = patch_status(api, "Issuer", namespace, "workloads", ISSUER_STATUS)

    assert patched["status"] == ISSUER_STATUS


def test_kubectl_get_shows_the_certificate_columns(kube: client.ApiClient, namespace: str) -> None:
    api = client.CustomObjectsApi(kube)
    create(api, certificate(), namespace, dry_run=False)
    patch_status(api, "Certificate", namespace, "web", CERTIFICATE_STATUS)

    row = table_row(kube, "certificates", namespace, "web")

    shown = row.object
    assert row.columns == [
        ("Name", 0),
        ("Ready", 0),
        ("Reason", 0),
        ("Identity", 0),
        ("NotAfter", 0),
        ("Secret", 1),
        ("Issuer", 1),
        ("RenewalTime", 1),
        ("Age", 0),
    ]
    assert row.cells[:-1] == [
        "web",
        _ready(shown).get("status"),
        _ready(shown).get("reason"),
        shown["status"].get("identity"),
        shown["status"].get("notAfter"),
        "web-tls",
        "workloads",
        shown["status"].get("renewalTime"),
    ]


def test_kubectl_get_shows_the_issuer_columns(kube: client.ApiClient, namespace: str) -> None:
    api = client.CustomObjectsApi(kube)
    create(api, issuer("Issuer"), namespace, dry_run=False)
    patch_status(api, "Issuer", namespace, "workloads", ISSUER_STATUS)

    row = table_row(kube, "issuers", namespace, "workloads")

    shown = row.object
    assert row.columns == [
        ("Name", 0),
        ("Ready", 0),
        ("Reason", 0),
        ("TrustDomain", 0),
        ("NotAfter", 0),
        ("Rotation", 1),
        ("Age", 0),
    ]
    assert row.cells[:-1] == [
        "workloads",
        _ready(shown).get("status"),
        _ready(shown).get("reason"),
        "cluster.local",
        shown["status"].get("ca", {}).get("notAfter"),
        shown["status"].get("rotation", {}).get("phase"),
    ]


def test_the_certmint_category_lists_certificates_and_issuers(
    kube: client.ApiClient, namespace: str, kubectl: Kubectl
) -> None:
    api = client.CustomObjectsApi(kube)
    create(api, certificate(), namespace, dry_run=False)
    create(api, issuer("Issuer"), namespace, dry_run=False)

    listed = kubectl("get", "certmint", "-n", namespace, "-o", "name").stdout.split()

    # The category also lists every ClusterIssuer, which other tests may have created.
    namespaced = [name for name in listed if not name.startswith("clusterissuer.")]
    assert namespaced == ["certificate.certmint.io/web", "issuer.certmint.io/workloads"]


def test_a_status_with_an_unknown_trust_bundle_role_is_refused(
    kube: client.ApiClient, namespace: str
) -> None:
    api = client.CustomObjectsApi(kube)
    create(api, issuer("Issuer"), namespace, dry_run=False)
    status = {"trustBundle": [{"fingerprintSHA256": "cd" * 32, "role": "retired"}]}

    with pytest.raises(client.ApiException) as refused:
        patch_status(api, "Issuer", namespace, "workloads", status)

    assert causes_of(refused.value) == [
        (
            "status.trustBundle[0].role",
            "FieldValueNotSupported",
            'Unsupported value: "retired": supported values: "previous", "current", "next"',
        )
    ]


# --- The CRD files themselves (no API server needed)


def _crd(name: str) -> Body:
    document: Body = yaml.safe_load((CRDS / name).read_text())
    return document


def _schema(name: str) -> Body:
    schema: Body = _crd(name)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_issuer_and_cluster_issuer_schemas_differ_only_in_trust_distribution_scope() -> None:
    issuer_schema = _schema("issuers.yaml")
    cluster_schema = _schema("clusterissuers.yaml")
    issuer_rules = issuer_schema["properties"]["spec"]["properties"]["trustDistribution"].pop(
        "x-kubernetes-validations"
    )

    assert issuer_schema == cluster_schema
    assert [rule["rule"] for rule in issuer_rules] == [
        "!has(self.namespaces) && !has(self.namespaceSelector)"
        " && !(has(self.clusterTrustBundle) && self.clusterTrustBundle)"
    ]
    assert (
        _crd("issuers.yaml")["spec"]["versions"][0]["additionalPrinterColumns"]
        == _crd("clusterissuers.yaml")["spec"]["versions"][0]["additionalPrinterColumns"]
    )


def _unbounded(schema: Mapping[str, Any], path: str) -> Iterator[str]:
    """Paths of schema nodes without the bounds CEL cost estimation relies on."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        yield f"{path} preserves unknown fields"
    kind = schema.get("type")
    if kind == "string" and not (
        "maxLength" in schema or "enum" in schema or schema.get("format") == "date-time"
    ):
        yield f"{path} has no maxLength"
    if kind == "array":
        if "maxItems" not in schema:
            yield f"{path} has no maxItems"
        yield from _unbounded(schema["items"], f"{path}[]")
    if kind == "object":
        for name, child in schema.get("properties", {}).items():
            yield from _unbounded(child, f"{path}.{name}")
        if "additionalProperties" in schema:
            if "maxProperties" not in schema:
                yield f"{path} has no maxProperties"
            yield from _unbounded(schema["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("name", ["certificates.yaml", "issuers.yaml", "clusterissuers.yaml"])
def test_every_field_of_spec_and_status_is_bounded(name: str) -> None:
    properties = _schema(name)["properties"]

    problems = [
        *_unbounded(properties["spec"], "spec"),
        *_unbounded(properties["status"], "status"),
    ]

    assert problems == []
