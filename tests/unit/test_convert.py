"""certmint.cli.convert on cert-manager v1.21-shaped objects: every mapping and every loss."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from certmint.api import certificate_types, issuer_types
from certmint.cli import convert
from certmint.core import policy

FIXTURES = Path(__file__).parent / "fixtures" / "cert-manager"


def load(name: str) -> list[Any]:
    return list(yaml.safe_load_all((FIXTURES / name).read_text()))


def test_a_ca_issuer_and_its_certificate_convert_without_loss() -> None:
    result = convert.convert(load("ca-migration.yaml"))

    assert result.losses == ()
    assert result.objects == (
        {
            "apiVersion": "certmint.io/v1alpha1",
            "kind": "Issuer",
            "metadata": {"name": "workloads", "namespace": "payments"},
            "spec": {
                "trustDomain": "cluster.local",
                "ca": {"secretName": "workloads-ca"},
                # Exactly what its migrated Certificates use, so they stay issuable.
                "policy": {
                    "allowedDNSNames": ["api.payments.svc", "api.payments.svc.cluster.local"],
                    "allowedSubject": {"organizations": ["payments"]},
                    "maxDuration": "2160h",
                },
            },
        },
        {
            "apiVersion": "certmint.io/v1alpha1",
            "kind": "Certificate",
            "metadata": {"name": "api", "namespace": "payments", "labels": {"team": "payments"}},
            "spec": {
                "secretName": "api-tls",
                "commonName": "api.payments.svc",
                "dnsNames": ["api.payments.svc", "api.payments.svc.cluster.local"],
                "duration": "2160h",
                "renewBefore": "360h",
                "usages": ["digital signature", "server auth", "client auth"],
                "secretTemplate": {
                    "annotations": {"reflector.v1.k8s.emberstack.com/reflection-allowed": "true"}
                },
                "issuerRef": {"name": "workloads", "kind": "Issuer"},
                "subject": {"organizations": ["payments"]},
                "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                "serviceAccountName": "api",
                "secretAdoption": {"certManagerCertificateName": "api"},
            },
        },
    )


def test_every_field_without_an_equivalent_is_reported_with_its_reason() -> None:
    result = convert.convert(load("lossy.yaml"), trust_domain="cluster.local")

    assert [str(loss) for loss in result.losses] == [
        "ClusterIssuer letsencrypt: spec.acme: certmint has no ACME issuer; keep cert-manager "
        "for public certificates",
        "ClusterIssuer internal-ca: spec.ca.crlDistributionPoints: certmint writes no revocation "
        "or AIA URLs into certificates",
        "Certificate billing/legacy: spec.literalSubject: certmint builds the subject from "
        "structured fields only",
        "Certificate billing/legacy: spec.privateKey.encoding: tls.key becomes PKCS#8",
        "Certificate billing/legacy: spec.keystores.jks: certmint writes PKCS#12 only",
        "Certificate billing/legacy: spec.keystores.pkcs12.profile: certmint always writes its "
        "one modern PKCS#12 profile",
        "Certificate billing/legacy: spec.uris: spiffe://prod.example.org/ns/billing/sa/legacy: "
        "the issuer's trust domain is cluster.local, not prod.example.org",
    ]
    assert [obj["metadata"]["name"] for obj in result.objects] == ["internal-ca", "legacy"]
    legacy = result.objects[1]["spec"]
    assert "serviceAccountName" not in legacy
    assert legacy["keystores"] == {
        "pkcs12": {"create": True, "passwordSecretRef": {"name": "p12-password", "key": "password"}}
    }


def test_the_trust_domain_given_matches_the_spiffe_uri() -> None:
    result = convert.convert(load("lossy.yaml"), trust_domain="prod.example.org")

    legacy = result.objects[1]["spec"]
    assert legacy["serviceAccountName"] == "legacy"
    assert not [loss for loss in result.losses if loss.field == "spec.uris"]


def certificate(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": "c", "namespace": "ns"},
        "spec": {"secretName": "c-tls", "issuerRef": {"name": "i"}, **spec},
    }


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            {"uris": ["spiffe://cluster.local/ns/other/sa/api"]},
            ("spec.uris", "spiffe://cluster.local/ns/other/sa/api is not this namespace's "
             "identity form"),
            id="a SPIFFE URI of another namespace is lost, certmint derives identities",
        ),
        pytest.param(
            {"issuerRef": {"name": "vault", "kind": "VaultIssuer", "group": "example.io"}},
            ("spec.issuerRef", "external issuer VaultIssuer.example.io has no certmint equivalent"),
            id="an external issuer's reference is lost",
        ),
        pytest.param(
            {"subject": {"streetAddresses": ["1 Main St"]}},
            ("spec.subject.streetAddresses", "certmint has no such subject field"),
            id="a subject field certmint lacks is lost",
        ),
        pytest.param(
            {"otherNames": [{"oid": "1.3.6.1.4.1.311.20.2.3", "utf8Value": "u@example.org"}]},
            ("spec.otherNames", "certmint issues no otherName SANs"),
            id="otherName SANs are lost",
        ),
    ],
)  # fmt: skip
def test_a_single_lossy_field(spec: dict[str, Any], expected: tuple[str, str]) -> None:
    result = convert.convert([certificate(**spec)])

    assert [(loss.field, loss.reason) for loss in result.losses] == [expected]


def test_other_apis_are_reported_not_converted() -> None:
    result = convert.convert([{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}])

    assert result.objects == ()
    assert [str(loss) for loss in result.losses] == [
        "Secret s: apiVersion/kind: not a cert-manager.io/v1 object"
    ]


def test_a_list_is_flattened_and_adoption_can_be_left_out() -> None:
    result = convert.convert([{"kind": "List", "items": [certificate()]}, None], adopt=False)

    assert result.objects[0]["spec"] == {
        "secretName": "c-tls",
        "issuerRef": {"name": "i", "kind": "Issuer"},
    }


def test_the_converted_issuer_policy_allows_the_converted_certificate() -> None:
    issuer_body, certificate_body = convert.convert(load("ca-migration.yaml")).objects
    issuer = issuer_types.IssuerSpec.from_body(issuer_body)
    certificate = certificate_types.CertificateSpec.from_body(certificate_body)

    assert policy.evaluate(issuer.policy, certificate, namespace="payments") is None
    assert certificate.adopt_cert_manager_certificate == "api"
