"""Parsing Certificates: every refusal names its field and says what to write."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certmint.api import certificate_types, fields
from tests.unit.api_bodies import ABSENT, CLAIMS_OID, NOT_A_DURATION, NOT_A_NAME, certificate_body

# ---------------------------------------------------------------------------
# Certificate: every refusal names its field


LABEL_VALUE = (
    'is not a label value; use at most 63 letters, digits, "-", "_" or ".", '
    "starting and ending with a letter or digit"
)
NOT_DNS = (
    'is not a DNS name; use labels of letters, digits and "-" separated by ".", '
    'with at most a leading "*." wildcard'
)

CERTIFICATE_ERRORS = [
    pytest.param({"spec": []}, "spec", "must be an object, not a list", id="a spec that is a list"),
    pytest.param({}, "spec.secretName", "is required", id="a body without spec misses secretName"),
    pytest.param(
        certificate_body(secretName=ABSENT), "spec.secretName", "is required", id="no secretName"
    ),
    pytest.param(
        certificate_body(secretName=""),
        "spec.secretName",
        "must not be empty",
        id="empty secretName",
    ),
    pytest.param(
        certificate_body(secretName=42),
        "spec.secretName",
        "must be a string, not a number",
        id="a secretName that is a number",
    ),
    pytest.param(
        certificate_body(secretName="API_TLS"),
        "spec.secretName",
        f'"API_TLS" {NOT_A_NAME}',
        id="a secretName that is no object name",
    ),
    pytest.param(
        certificate_body(issuerRef=ABSENT), "spec.issuerRef", "is required", id="no issuerRef"
    ),
    pytest.param(
        certificate_body(issuerRef="workloads"),
        "spec.issuerRef",
        "must be an object, not a string",
        id="an issuerRef that is a string",
    ),
    pytest.param(
        certificate_body(issuerRef={"kind": "Issuer"}),
        "spec.issuerRef.name",
        "is required",
        id="an issuerRef without name",
    ),
    pytest.param(
        certificate_body(issuerRef={"name": "w", "kind": "CertManagerIssuer"}),
        "spec.issuerRef.kind",
        '"CertManagerIssuer" is not one of Issuer, ClusterIssuer',
        id="an unknown issuer kind",
    ),
    pytest.param(
        certificate_body(serviceAccountName="Api"),
        "spec.serviceAccountName",
        f'"Api" {NOT_A_NAME}',
        id="a ServiceAccount name with capitals",
    ),
    pytest.param(
        certificate_body(serviceAccountName="api\n"),
        "spec.serviceAccountName",
        '"api\\n" contains control characters',
        id="a ServiceAccount name with a newline",
    ),
    pytest.param(
        certificate_body(commonName="x" * 65),
        "spec.commonName",
        f'"{"x" * 65}" is longer than 64 characters',
        id="a commonName over 64 characters",
    ),
    pytest.param(
        certificate_body(subject={"countries": ["DEU"]}),
        "spec.subject.countries[0]",
        '"DEU" is not a two-letter country code such as "DE"',
        id="a three-letter country",
    ),
    pytest.param(
        certificate_body(subject={"organizations": ["o" * 65]}),
        "spec.subject.organizations[0]",
        f'"{"o" * 65}" is longer than 64 characters',
        id="an organization over 64 characters",
    ),
    pytest.param(
        certificate_body(subject=["Example"]),
        "spec.subject",
        "must be an object, not a list",
        id="a subject that is a list",
    ),
    pytest.param(
        certificate_body(dnsNames="api.web.svc"),
        "spec.dnsNames",
        "must be a list, not a string",
        id="dnsNames that are one string",
    ),
    pytest.param(
        certificate_body(dnsNames=["api..svc"]),
        "spec.dnsNames[0]",
        f'"api..svc" {NOT_DNS}',
        id="a DNS name with an empty label",
    ),
    pytest.param(
        certificate_body(dnsNames=["api-*.web.svc"]),
        "spec.dnsNames[0]",
        f'"api-*.web.svc" {NOT_DNS}',
        id="a partial wildcard",
    ),
    pytest.param(
        certificate_body(dnsNames=["api.web.svc", "a.*.svc"]),
        "spec.dnsNames[1]",
        f'"a.*.svc" {NOT_DNS}',
        id="a wildcard that is not the first label",
    ),
    pytest.param(
        certificate_body(dnsNames=["api_x.web.svc"]),
        "spec.dnsNames[0]",
        f'"api_x.web.svc" {NOT_DNS}',
        id="an underscore in a DNS name",
    ),
    pytest.param(
        certificate_body(dnsNames=["api.web.svc", "API.web.svc"]),
        "spec.dnsNames[1]",
        '"API.web.svc" repeats dnsNames[0]',
        id="a DNS name repeated in other case",
    ),
    pytest.param(
        certificate_body(ipAddresses=["10.0.0.256"]),
        "spec.ipAddresses[0]",
        '"10.0.0.256" is not an IPv4 or IPv6 address',
        id="an IPv4 address out of range",
    ),
    pytest.param(
        certificate_body(ipAddresses=["fe80::1%eth0"]),
        "spec.ipAddresses[0]",
        '"fe80::1%eth0" is not an IPv4 or IPv6 address',
        id="a scoped IPv6 address",
    ),
    pytest.param(
        certificate_body(ipAddresses=["2001:db8::1", "2001:DB8:0::1"]),
        "spec.ipAddresses[1]",
        '"2001:DB8:0::1" repeats ipAddresses[0]',
        id="an IP address repeated in another spelling",
    ),
    pytest.param(
        certificate_body(uris=["/relative/path"]),
        "spec.uris[0]",
        '"/relative/path" is not an absolute URI such as "https://api.example.com/"',
        id="a relative URI",
    ),
    pytest.param(
        certificate_body(uris=["https://api.example.com/a b"]),
        "spec.uris[0]",
        '"https://api.example.com/a b" is not an absolute URI such as "https://api.example.com/"',
        id="a URI with a space",
    ),
    pytest.param(
        certificate_body(uris=["https://[::1/"]),
        "spec.uris[0]",
        '"https://[::1/" is not a well-formed URI',
        id="a URI with a broken IPv6 host",
    ),
    pytest.param(
        certificate_body(emailAddresses=["ops"]),
        "spec.emailAddresses[0]",
        '"ops" is not an email address such as "ops@example.com"',
        id="an email address without domain",
    ),
    pytest.param(
        certificate_body(claims=["role"]),
        "spec.claims",
        "must be an object, not a list",
        id="claims that are a list",
    ),
    pytest.param(
        certificate_body(claims={"role": "reader"}),
        "spec.claims.role",
        "must be a list, not a string",
        id="a claim value that is not a list",
    ),
    pytest.param(
        certificate_body(claims={"role": []}),
        "spec.claims.role",
        "must list at least one value",
        id="a claim without values",
    ),
    pytest.param(
        certificate_body(claims={"role": ["reader", ""]}),
        "spec.claims.role[1]",
        "must not be empty",
        id="an empty claim value",
    ),
    pytest.param(
        certificate_body(claims={"role": [5]}),
        "spec.claims.role[0]",
        "must be a string, not a number",
        id="a claim value that is a number",
    ),
    pytest.param(
        certificate_body(claims={"role": ["x" * 1025]}),
        "spec.claims.role[0]",
        "is longer than 1024 characters",
        id="a claim value over 1024 characters",
    ),
    pytest.param(
        certificate_body(claims={"-role": ["reader"]}),
        "spec.claims",
        'key "-role" is not a claim key; use letters, digits, ".", "_", "-" and "/", '
        "starting and ending with a letter or digit",
        id="a claim key starting with a dash",
    ),
    pytest.param(
        certificate_body(extensions=[{"oid": "2.5.29.17", "value": {"der": "BQA="}}]),
        "spec.extensions[0].oid",
        "2.5.29.17 cannot be requested: it is a standard X.509 extension that certmint "
        "builds from the dedicated spec fields (dnsNames, usages, isCA, ...)",
        id="a raw SAN extension",
    ),
    pytest.param(
        certificate_body(
            extensions=[
                {
                    "oid": CLAIMS_OID,
                    "value": {"der": "BQA="},
                }
            ]
        ),
        "spec.extensions[0].oid",
        f"{CLAIMS_OID} cannot be requested: it is in certmint's own arc; "
        "use spec.claims for claims",
        id="a raw claims extension",
    ),
    pytest.param(
        certificate_body(extensions=[{"oid": "1.3.6.1.5.5.7.1.1", "value": {"der": "BQA="}}]),
        "spec.extensions[0].oid",
        "1.3.6.1.5.5.7.1.1 cannot be requested: it is in the PKIX arc that certmint "
        "reserves for standard extensions",
        id="a raw authority information access extension",
    ),
    pytest.param(
        certificate_body(extensions=[{"oid": "1.50.3", "value": {"integer": 1}}]),
        "spec.extensions[0].oid",
        '"1.50.3" is not a dotted OID such as "1.3.6.1.4.1.55555.1"',
        id="an OID with a second arc above 39",
    ),
    pytest.param(
        certificate_body(extensions=[{"oid": "1.3.6.1.4.1.55555.1.7"}]),
        "spec.extensions[0].value",
        "must set exactly one of utf8String, integer, boolean, der",
        id="an extension without value",
    ),
    pytest.param(
        certificate_body(
            extensions=[{"oid": "1.3.6.1.4.1.55555.1.7", "value": {"integer": 1, "boolean": True}}]
        ),
        "spec.extensions[0].value",
        "must set exactly one of utf8String, integer, boolean, der",
        id="an extension with two values",
    ),
    pytest.param(
        certificate_body(extensions=[{"oid": "1.3.6.1.4.1.55555.1.7", "value": {"integer": True}}]),
        "spec.extensions[0].value.integer",
        "must be a whole number, not a boolean",
        id="an integer extension given a boolean",
    ),
    pytest.param(
        certificate_body(extensions=[{"oid": "1.3.6.1.4.1.55555.1.7", "value": {"der": "%%%"}}]),
        "spec.extensions[0].value.der",
        "must be non-empty base64-encoded DER",
        id="a DER extension that is not base64",
    ),
    pytest.param(
        certificate_body(
            extensions=[
                {"oid": "1.3.6.1.4.1.55555.1.7", "value": {"boolean": True}},
                {"oid": "1.3.6.1.4.1.55555.1.7", "value": {"boolean": False}},
            ]
        ),
        "spec.extensions[1].oid",
        "1.3.6.1.4.1.55555.1.7 repeats extensions[0]",
        id="an extension OID twice",
    ),
    pytest.param(
        certificate_body(duration="1d"),
        "spec.duration",
        f'"1d" {NOT_A_DURATION}',
        id="a duration in days",
    ),
    pytest.param(
        certificate_body(duration=24),
        "spec.duration",
        'must be a duration such as "24h", not a number',
        id="a duration that is a number",
    ),
    pytest.param(
        certificate_body(renewBefore="-1h"),
        "spec.renewBefore",
        '"-1h" is negative; durations must be positive',
        id="a negative renewBefore",
    ),
    pytest.param(
        certificate_body(duration="24h", renewBefore="24h"),
        "spec.renewBefore",
        "24h must be shorter than spec.duration 24h",
        id="renewBefore as long as the duration",
    ),
    pytest.param(
        certificate_body(renewBefore="8h", renewBeforePercentage=33),
        "spec.renewBeforePercentage",
        "cannot be combined with spec.renewBefore; set one",
        id="both renewBefore and a percentage",
    ),
    pytest.param(
        certificate_body(renewBeforePercentage=0),
        "spec.renewBeforePercentage",
        "0 is not between 1 and 99",
        id="a zero percentage",
    ),
    pytest.param(
        certificate_body(renewBeforePercentage=100),
        "spec.renewBeforePercentage",
        "100 is not between 1 and 99",
        id="a hundred percent",
    ),
    pytest.param(
        certificate_body(renewBeforePercentage="33"),
        "spec.renewBeforePercentage",
        "must be a whole number, not a string",
        id="a percentage written as a string",
    ),
    pytest.param(
        certificate_body(privateKey={"algorithm": "DSA"}),
        "spec.privateKey.algorithm",
        '"DSA" is not one of ECDSA, RSA, Ed25519',
        id="an unknown key algorithm",
    ),
    pytest.param(
        certificate_body(privateKey={"algorithm": "ECDSA", "size": 521}),
        "spec.privateKey.size",
        "521 is not a ECDSA size; use one of 256, 384",
        id="a curve size certmint does not offer",
    ),
    pytest.param(
        certificate_body(privateKey={"algorithm": "RSA", "size": 1024}),
        "spec.privateKey.size",
        "1024 is not a RSA size; use one of 2048, 3072, 4096",
        id="a weak RSA size",
    ),
    pytest.param(
        certificate_body(privateKey={"algorithm": "Ed25519", "size": 256}),
        "spec.privateKey.size",
        "must be left out for Ed25519, which has one size",
        id="a size for Ed25519",
    ),
    pytest.param(
        certificate_body(privateKey={"rotationPolicy": "Sometimes"}),
        "spec.privateKey.rotationPolicy",
        '"Sometimes" is not one of Always, Never',
        id="an unknown rotation policy",
    ),
    pytest.param(
        certificate_body(usages=["server auth", "signing"]),
        "spec.usages[1]",
        '"signing" is not a usage; use one of any, cert sign, client auth, code signing, '
        "content commitment, crl sign, data encipherment, decipher only, digital signature, "
        "email protection, encipher only, key agreement, key encipherment, ocsp signing, "
        "server auth, timestamping",
        id="an unknown usage",
    ),
    pytest.param(
        certificate_body(usages=["cert sign"]),
        "spec.usages[0]",
        '"cert sign" is only for CA certificates (spec.isCA: true)',
        id="cert sign on a leaf",
    ),
    pytest.param(
        certificate_body(usages=["server auth", "server auth"]),
        "spec.usages[1]",
        '"server auth" repeats usages[0]',
        id="a usage twice",
    ),
    pytest.param(
        certificate_body(isCA="yes"),
        "spec.isCA",
        "must be true or false, not a string",
        id="isCA written as a string",
    ),
    pytest.param(
        certificate_body(isCA=True, serviceAccountName="api"),
        "spec.isCA",
        "a CA certificate cannot carry a workload identity; remove spec.serviceAccountName "
        "or set isCA to false",
        id="a CA with a workload identity",
    ),
    pytest.param(
        certificate_body(secretTemplate={"labels": {"certmint.io/certificate-name": "x"}}),
        'spec.secretTemplate.labels["certmint.io/certificate-name"]',
        '"certmint.io/certificate-name" is reserved for the operator',
        id="a label in the operator's prefix",
    ),
    pytest.param(
        certificate_body(secretTemplate={"annotations": {"a.certmint.io/x": "y"}}),
        'spec.secretTemplate.annotations["a.certmint.io/x"]',
        '"a.certmint.io/x" is reserved for the operator',
        id="an annotation under the operator's domain",
    ),
    pytest.param(
        certificate_body(secretTemplate={"labels": {"team": "pay ments"}}),
        'spec.secretTemplate.labels["team"]',
        f'"pay ments" {LABEL_VALUE}',
        id="a label value with a space",
    ),
    pytest.param(
        certificate_body(secretTemplate={"labels": {"a/b/c": "x"}}),
        'spec.secretTemplate.labels["a/b/c"]',
        '"a/b/c" is not a valid key; write name or prefix/name, e.g. team',
        id="a label key with two slashes",
    ),
    pytest.param(
        certificate_body(secretTemplate={"annotations": {"note": 5}}),
        'spec.secretTemplate.annotations["note"]',
        "must be a string, not a number",
        id="an annotation value that is a number",
    ),
    pytest.param(
        certificate_body(additionalOutputFormats=[{"type": "JKS"}]),
        "spec.additionalOutputFormats[0].type",
        '"JKS" is not one of CombinedPEM, DER',
        id="an unknown output format",
    ),
    pytest.param(
        certificate_body(additionalOutputFormats=[{}]),
        "spec.additionalOutputFormats[0].type",
        "is required",
        id="an output format without type",
    ),
    pytest.param(
        certificate_body(keystores={"pkcs12": {"create": True}}),
        "spec.keystores.pkcs12.passwordSecretRef",
        "is required when create is true",
        id="a keystore without password",
    ),
    pytest.param(
        certificate_body(
            keystores={"pkcs12": {"create": True, "passwordSecretRef": {"name": "p", "key": "a:b"}}}
        ),
        "spec.keystores.pkcs12.passwordSecretRef.key",
        '"a:b" is not a Secret data key',
        id="a keystore password key with a colon",
    ),
    pytest.param(
        certificate_body(secretDeletionPolicy="Orphan"),
        "spec.secretDeletionPolicy",
        '"Orphan" is not one of Retain, Delete',
        id="an unknown deletion policy",
    ),
    # -- what the signer would refuse is refused here, once (issue #15)
    pytest.param(
        certificate_body(
            extensions=[{"oid": "2.16.840.1.113730.1.13", "value": {"utf8String": "x"}}]
        ),
        "spec.extensions[0].oid",
        "2.16.840.1.113730.1.13 cannot be requested: it is a Netscape certificate extension, "
        "which the signer refuses",
        id="a Netscape extension OID",
    ),
    pytest.param(
        certificate_body(
            extensions=[
                {
                    "oid": "1.2.840.113556.1.8000.2554.49118.29815.48385.17178.39665.9535742"
                    ".3088872.1",
                    "value": {"der": "MAA="},
                }
            ]
        ),
        "spec.extensions[0].oid",
        "1.2.840.113556.1.8000.2554.49118.29815.48385.17178.39665.9535742.3088872.1 cannot "
        "be requested: it is in certmint's own arc; use spec.claims for claims",
        id="the claims extension OID",
    ),
    pytest.param(
        certificate_body(extensions=[{"oid": "1.3.6.1.4.1.55555.1", "value": {"der": "AQEB"}}]),
        "spec.extensions[0].value.der",
        "not one well-formed DER element (Unexpected Boolean payload: 1)",
        id="a BER boolean in der",
    ),
    pytest.param(
        certificate_body(extensions=[{"oid": "1.3.6.1.4.1.55555.1", "value": {"der": "BAFhAA=="}}]),
        "spec.extensions[0].value.der",
        "1 bytes follow the DER element; give exactly one",
        id="der with trailing bytes",
    ),
    pytest.param(
        certificate_body(subject={"organizations": ["a\u0085b"]}),
        "spec.subject.organizations[0]",
        '"a\\u0085b" contains the unprintable character U+0085 (Cc); subject values are '
        "printable text",
        id="an organization with a next-line control character",
    ),
    pytest.param(
        certificate_body(subject={"localities": ["a\u200bb"]}),
        "spec.subject.localities[0]",
        '"a\\u200bb" contains the unprintable character U+200B (ZERO WIDTH SPACE); subject '
        "values are printable text",
        id="a locality with a zero-width space",
    ),
    pytest.param(
        certificate_body(subject={"organizationalUnits": ["   "]}),
        "spec.subject.organizationalUnits[0]",
        "must not be blank",
        id="an organizational unit of blanks",
    ),
    pytest.param(
        certificate_body(commonName="\u212aube.pa.svc"),
        "spec.commonName",
        '"\u212aube.pa.svc" is not ASCII; write the IDNA A-label form "kube.pa.svc"',
        id="a common name with a Kelvin sign",
    ),
    pytest.param(
        certificate_body(commonName="b\u00fccher.example"),
        "spec.commonName",
        '"b\u00fccher.example" is not ASCII; write the IDNA A-label form "xn--bcher-kva.example"',
        id="an international common name in U-label form",
    ),
    pytest.param(
        certificate_body(commonName="a\u200bb"),
        "spec.commonName",
        '"a\\u200bb" contains the unprintable character U+200B (ZERO WIDTH SPACE); subject '
        "values are printable text",
        id="a common name with a zero-width space",
    ),
    pytest.param(
        certificate_body(dnsNames=["\u212aube.pa.svc"]),
        "spec.dnsNames[0]",
        '"\u212aube.pa.svc" is not ASCII; write the IDNA A-label form "kube.pa.svc"',
        id="a DNS name with a Kelvin sign is not folded silently",
    ),
    pytest.param(
        certificate_body(emailAddresses=["ops@\u212aube.example"]),
        "spec.emailAddresses[0]",
        'the domain of "ops@\u212aube.example" is not ASCII; write the IDNA A-label form '
        '"kube.example"',
        id="an email domain with a Kelvin sign",
    ),
    pytest.param(
        certificate_body(claims={"role": ["a\u0085b"]}),
        "spec.claims.role",
        "a claim value contains a control character (U+0085)",
        id="a claim value with a next-line control character",
    ),
]


@pytest.mark.parametrize(("body", "field", "message"), CERTIFICATE_ERRORS)
def test_certificate_refusals_name_the_field(
    body: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(fields.SpecError) as caught:
        certificate_types.CertificateSpec.from_body(body)
    assert (caught.value.field, caught.value.message) == (field, message)
    assert caught.value.reason == "InvalidSpec"


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=8), children, max_size=3)
        ),
        max_leaves=12,
    ),
    st.sampled_from(
        [
            "spec",
            "secretName",
            "issuerRef",
            "dnsNames",
            "claims",
            "extensions",
            "duration",
            "privateKey",
            "secretTemplate",
            "keystores",
            "subject",
            "usages",
        ]
    ),
)
def test_certificate_parsing_survives_any_json(value: object, field: str) -> None:
    body = {"spec": value} if field == "spec" else certificate_body(**{field: value})
    try:
        field = certificate_types.CertificateSpec.from_body(body).secret_name and "spec"
    except fields.SpecError as error:
        field = error.field
    assert field.startswith("spec")
