"""Parsing Certificates into frozen specs: defaults, normalization, choices."""

from __future__ import annotations

import types
from datetime import timedelta
from typing import Any

import pytest

from certmint.api import certificate_types, extension_types
from tests.unit.api_bodies import certificate_body

# ---------------------------------------------------------------------------
# Certificate: defaults and normalization


def test_certificate_defaults_follow_the_design() -> None:
    spec = certificate_types.CertificateSpec.from_body(certificate_body())
    assert spec == certificate_types.CertificateSpec(
        secret_name="api-tls",
        issuer_ref=certificate_types.IssuerRef(name="workloads", kind="ClusterIssuer"),
        service_account_name=None,
        common_name=None,
        subject=certificate_types.SubjectSpec(),
        dns_names=(),
        ip_addresses=(),
        uris=(),
        email_addresses=(),
        claims=types.MappingProxyType({}),
        extensions=(),
        duration=None,
        renew_before=None,
        renew_before_percentage=None,
        private_key=certificate_types.PrivateKeySpec(
            algorithm="ECDSA", size=256, rotation_policy="Always"
        ),
        usages=("digital signature", "key encipherment", "server auth", "client auth"),
        is_ca=False,
        secret_labels=types.MappingProxyType({}),
        secret_annotations=types.MappingProxyType({}),
        additional_output_formats=frozenset(),
        pkcs12=None,
        secret_deletion_policy="Retain",
    )


def test_certificate_every_field_is_read_and_normalized() -> None:
    body = certificate_body(
        issuerRef={"name": "workloads"},
        serviceAccountName="api",
        commonName="api.web.svc",
        subject={
            "organizations": ["Example"],
            "organizationalUnits": ["Payments"],
            "countries": ["de"],
            "provinces": ["Berlin"],
            "localities": ["Berlin"],
        },
        dnsNames=["API.web.svc", "*.web.svc.cluster.local"],
        ipAddresses=["10.0.0.1", "2001:DB8:0:0::1"],
        uris=["https://api.example.com/v1"],
        emailAddresses=["Ops@Example.COM"],
        claims={"role": ["writer", "reader", "writer"], "env": ["prod"]},
        extensions=[
            {"oid": "1.3.6.1.4.1.55555.1.7", "critical": False, "value": {"utf8String": "x"}},
            {"oid": "1.3.6.1.4.1.55555.1.8", "value": {"integer": 7}},
            {"oid": "1.3.6.1.4.1.55555.1.9", "critical": True, "value": {"boolean": False}},
            {"oid": "1.3.6.1.4.1.55555.1.10", "value": {"der": "BQA="}},
        ],
        duration="48h",
        renewBefore="12h",
        privateKey={"algorithm": "RSA", "size": 3072, "rotationPolicy": "Never"},
        usages=["digital signature", "client auth"],
        secretTemplate={"labels": {"team": "payments"}, "annotations": {"example.com/note": "a b"}},
        additionalOutputFormats=[{"type": "CombinedPEM"}, {"type": "DER"}, {"type": "DER"}],
        keystores={"pkcs12": {"create": True, "passwordSecretRef": {"name": "p12", "key": "pw"}}},
        secretDeletionPolicy="Delete",
    )
    spec = certificate_types.CertificateSpec.from_body(body)
    assert spec == certificate_types.CertificateSpec(
        secret_name="api-tls",
        issuer_ref=certificate_types.IssuerRef(name="workloads", kind="Issuer"),
        service_account_name="api",
        common_name="api.web.svc",
        subject=certificate_types.SubjectSpec(
            organizations=("Example",),
            organizational_units=("Payments",),
            countries=("DE",),
            provinces=("Berlin",),
            localities=("Berlin",),
        ),
        dns_names=("api.web.svc", "*.web.svc.cluster.local"),
        ip_addresses=("10.0.0.1", "2001:db8::1"),
        uris=("https://api.example.com/v1",),
        email_addresses=("Ops@example.com",),
        claims=types.MappingProxyType({"env": ("prod",), "role": ("reader", "writer")}),
        extensions=(
            extension_types.ExtensionSpec(
                "1.3.6.1.4.1.55555.1.7", critical=False, kind="utf8String", value="x"
            ),
            extension_types.ExtensionSpec(
                "1.3.6.1.4.1.55555.1.8", critical=False, kind="integer", value=7
            ),
            extension_types.ExtensionSpec(
                "1.3.6.1.4.1.55555.1.9", critical=True, kind="boolean", value=False
            ),
            extension_types.ExtensionSpec(
                "1.3.6.1.4.1.55555.1.10", critical=False, kind="der", value="BQA="
            ),
        ),
        duration=timedelta(hours=48),
        renew_before=timedelta(hours=12),
        renew_before_percentage=None,
        private_key=certificate_types.PrivateKeySpec(
            algorithm="RSA", size=3072, rotation_policy="Never"
        ),
        usages=("digital signature", "client auth"),
        is_ca=False,
        secret_labels=types.MappingProxyType({"team": "payments"}),
        secret_annotations=types.MappingProxyType({"example.com/note": "a b"}),
        additional_output_formats=frozenset({"CombinedPEM", "DER"}),
        pkcs12=certificate_types.PKCS12Spec(password_secret_name="p12", password_secret_key="pw"),
        secret_deletion_policy="Delete",
    )
    assert list(spec.claims) == ["env", "role"]


@pytest.mark.parametrize(
    ("spec_fields", "attribute", "expected"),
    [
        pytest.param(
            {"privateKey": {"algorithm": "RSA"}},
            "private_key",
            certificate_types.PrivateKeySpec(algorithm="RSA", size=2048),
            id="RSA defaults to 2048 bits",
        ),
        pytest.param(
            {"privateKey": {"algorithm": "Ed25519"}},
            "private_key",
            certificate_types.PrivateKeySpec(algorithm="Ed25519", size=None),
            id="Ed25519 has no size",
        ),
        pytest.param(
            {"renewBeforePercentage": 50}, "renew_before_percentage", 50, id="a percentage"
        ),
        pytest.param(
            {"usages": []},
            "usages",
            certificate_types.DEFAULT_USAGES,
            id="empty usages mean defaults",
        ),
        pytest.param({"commonName": ""}, "common_name", None, id="an empty commonName is unset"),
        pytest.param(
            {"serviceAccountName": ""}, "service_account_name", None, id="an empty SA is unset"
        ),
        pytest.param(
            {"isCA": True, "usages": ["cert sign", "crl sign"]},
            "usages",
            ("cert sign", "crl sign"),
            id="a CA may ask for cert sign",
        ),
        pytest.param(
            {"keystores": {"pkcs12": {"create": False}}},
            "pkcs12",
            None,
            id="a keystore not to create is none",
        ),
        pytest.param(
            {"ipAddresses": ["::ffff:10.0.0.1"]},
            "ip_addresses",
            ("::ffff:a00:1",),
            id="an IPv4-mapped IPv6 address stays IPv6",
        ),
    ],
)
def test_certificate_choices_are_read(
    spec_fields: dict[str, Any], attribute: str, expected: Any
) -> None:
    spec = certificate_types.CertificateSpec.from_body(certificate_body(**spec_fields))
    assert getattr(spec, attribute) == expected


def test_certificate_spec_is_frozen_and_hashable() -> None:
    spec = certificate_types.CertificateSpec.from_body(
        certificate_body(claims={"role": ["reader"]})
    )
    with pytest.raises(AttributeError):
        spec.secret_name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.claims["role"] = ("admin",)  # type: ignore[index]
    assert hash(spec) == hash(
        certificate_types.CertificateSpec.from_body(certificate_body(claims={"role": ["reader"]}))
    )
