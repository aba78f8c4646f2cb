"""Parsing custom resources into frozen specs: defaults, normalization, every refusal."""

from __future__ import annotations

import ipaddress
import types
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certmint.api import model

ABSENT = object()


CLAIMS_OID = "1.2.840.113556.1.8000.2554.49118.29815.48385.17178.39665.9535742.3088872.1"


def certificate_body(**fields: Any) -> dict[str, Any]:
    """A minimal valid Certificate with some spec fields replaced (ABSENT removes one)."""
    spec: dict[str, Any] = {
        "secretName": "api-tls",
        "issuerRef": {"name": "workloads", "kind": "ClusterIssuer"},
    }
    spec.update(fields)
    return {"spec": {key: value for key, value in spec.items() if value is not ABSENT}}


def issuer_body(kind: str = "ClusterIssuer", **fields: Any) -> dict[str, Any]:
    """A minimal valid issuer with some spec fields replaced (ABSENT removes one)."""
    spec: dict[str, Any] = {"ca": {"secretName": "workloads-ca"}}
    spec.update(fields)
    metadata = {"name": "workloads", "namespace": "payments"}
    return {
        "kind": kind,
        "metadata": metadata,
        "spec": {key: value for key, value in spec.items() if value is not ABSENT},
    }


# ---------------------------------------------------------------------------
# Durations


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("24h", timedelta(hours=24), id="hours"),
        pytest.param("1h30m", timedelta(minutes=90), id="hours and minutes add up"),
        pytest.param("90s", timedelta(seconds=90), id="seconds beyond a minute"),
        pytest.param("1.5h", timedelta(minutes=90), id="a fraction of an hour"),
        pytest.param(".5s", timedelta(milliseconds=500), id="a fraction without leading zero"),
        pytest.param("2m", timedelta(minutes=2), id="minutes"),
        pytest.param("1h1h", timedelta(hours=2), id="a repeated unit adds up as in Go"),
        pytest.param("+10m", timedelta(minutes=10), id="an explicit plus sign"),
        pytest.param("87600h", timedelta(days=3650), id="ten years in hours"),
        pytest.param("1.0000009s", timedelta(seconds=1), id="below a microsecond is dropped"),
    ],
)
def test_parse_duration_reads_go_durations(text: str, expected: timedelta) -> None:
    assert model.parse_duration(text, "spec.duration") == expected


NOT_A_DURATION = (
    'is not a duration; write hours, minutes and seconds such as "24h", "1h30m" or "90s"'
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("1d", f'"1d" {NOT_A_DURATION}', id="days are not a Go unit"),
        pytest.param("500ms", f'"500ms" {NOT_A_DURATION}', id="milliseconds are refused"),
        pytest.param("24", f'"24" {NOT_A_DURATION}', id="a number without a unit"),
        pytest.param("", f'"" {NOT_A_DURATION}', id="an empty string"),
        pytest.param("1h 30m", f'"1h 30m" {NOT_A_DURATION}', id="spaces between parts"),
        pytest.param("h", f'"h" {NOT_A_DURATION}', id="a unit without a number"),
        pytest.param("-1h", '"-1h" is negative; durations must be positive', id="negative"),
        pytest.param("0s", '"0s" is zero; durations must be positive', id="zero"),
        pytest.param(
            "0.0000001s", '"0.0000001s" is zero; durations must be positive', id="sub-microsecond"
        ),
        pytest.param("876001h", '"876001h" is longer than 876000h', id="more than a century"),
        pytest.param("9" * 65 + "h", f'"{"9" * 65}h" {NOT_A_DURATION}', id="absurdly long text"),
    ],
)
def test_parse_duration_refuses_non_durations(text: str, message: str) -> None:
    with pytest.raises(model.SpecError) as caught:
        model.parse_duration(text, "spec.duration")
    assert (caught.value.field, caught.value.message) == ("spec.duration", message)
    assert str(caught.value) == f"spec.duration: {message}"


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        pytest.param(timedelta(hours=168), "168h", id="hours beyond a day stay hours"),
        pytest.param(timedelta(minutes=90), "1h30m", id="hours and minutes"),
        pytest.param(timedelta(seconds=90.5), "1m30.5s", id="fractional seconds"),
        pytest.param(timedelta(microseconds=1), "0.000001s", id="one microsecond"),
        pytest.param(timedelta(hours=1, seconds=1), "1h1s", id="zero minutes are left out"),
    ],
)
def test_format_duration_spells_go_durations(duration: timedelta, text: str) -> None:
    assert model.format_duration(duration) == text


def test_format_duration_refuses_zero() -> None:
    with pytest.raises(ValueError, match="only positive durations have a spelling"):
        model.format_duration(timedelta(0))


@given(st.timedeltas(min_value=timedelta(microseconds=1), max_value=model.MAX_PARSED_DURATION))
def test_parse_duration_reads_back_what_format_duration_writes(duration: timedelta) -> None:
    assert model.parse_duration(model.format_duration(duration), "f") == duration


@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=10_000), st.sampled_from(["h", "m", "s"])),
        min_size=1,
        max_size=5,
    ).filter(lambda parts: any(number for number, _ in parts))
)
def test_parse_duration_adds_up_whole_parts(parts: list[tuple[int, str]]) -> None:
    text = "".join(f"{number}{unit}" for number, unit in parts)
    seconds = {"h": 3600, "m": 60, "s": 1}
    expected = timedelta(seconds=sum(number * seconds[unit] for number, unit in parts))
    assert model.parse_duration(text, "f") == expected


# ---------------------------------------------------------------------------
# Certificate: defaults and normalization


def test_certificate_defaults_follow_the_design() -> None:
    spec = model.CertificateSpec.from_body(certificate_body())
    assert spec == model.CertificateSpec(
        secret_name="api-tls",
        issuer_ref=model.IssuerRef(name="workloads", kind="ClusterIssuer"),
        service_account_name=None,
        common_name=None,
        subject=model.SubjectSpec(),
        dns_names=(),
        ip_addresses=(),
        uris=(),
        email_addresses=(),
        claims=types.MappingProxyType({}),
        extensions=(),
        duration=None,
        renew_before=None,
        renew_before_percentage=None,
        private_key=model.PrivateKeySpec(algorithm="ECDSA", size=256, rotation_policy="Always"),
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
    spec = model.CertificateSpec.from_body(body)
    assert spec == model.CertificateSpec(
        secret_name="api-tls",
        issuer_ref=model.IssuerRef(name="workloads", kind="Issuer"),
        service_account_name="api",
        common_name="api.web.svc",
        subject=model.SubjectSpec(
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
            model.ExtensionSpec(
                "1.3.6.1.4.1.55555.1.7", critical=False, kind="utf8String", value="x"
            ),
            model.ExtensionSpec("1.3.6.1.4.1.55555.1.8", critical=False, kind="integer", value=7),
            model.ExtensionSpec(
                "1.3.6.1.4.1.55555.1.9", critical=True, kind="boolean", value=False
            ),
            model.ExtensionSpec("1.3.6.1.4.1.55555.1.10", critical=False, kind="der", value="BQA="),
        ),
        duration=timedelta(hours=48),
        renew_before=timedelta(hours=12),
        renew_before_percentage=None,
        private_key=model.PrivateKeySpec(algorithm="RSA", size=3072, rotation_policy="Never"),
        usages=("digital signature", "client auth"),
        is_ca=False,
        secret_labels=types.MappingProxyType({"team": "payments"}),
        secret_annotations=types.MappingProxyType({"example.com/note": "a b"}),
        additional_output_formats=frozenset({"CombinedPEM", "DER"}),
        pkcs12=model.PKCS12Spec(password_secret_name="p12", password_secret_key="pw"),
        secret_deletion_policy="Delete",
    )
    assert list(spec.claims) == ["env", "role"]
    assert spec.extensions[3].der_value() == b"\x05\x00"


@pytest.mark.parametrize(
    ("fields", "attribute", "expected"),
    [
        pytest.param(
            {"privateKey": {"algorithm": "RSA"}},
            "private_key",
            model.PrivateKeySpec(algorithm="RSA", size=2048),
            id="RSA defaults to 2048 bits",
        ),
        pytest.param(
            {"privateKey": {"algorithm": "Ed25519"}},
            "private_key",
            model.PrivateKeySpec(algorithm="Ed25519", size=None),
            id="Ed25519 has no size",
        ),
        pytest.param(
            {"renewBeforePercentage": 50}, "renew_before_percentage", 50, id="a percentage"
        ),
        pytest.param(
            {"usages": []}, "usages", model.DEFAULT_USAGES, id="empty usages mean defaults"
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
    fields: dict[str, Any], attribute: str, expected: Any
) -> None:
    spec = model.CertificateSpec.from_body(certificate_body(**fields))
    assert getattr(spec, attribute) == expected


def test_certificate_spec_is_frozen_and_hashable() -> None:
    spec = model.CertificateSpec.from_body(certificate_body(claims={"role": ["reader"]}))
    with pytest.raises(AttributeError):
        spec.secret_name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.claims["role"] = ("admin",)  # type: ignore[index]
    assert hash(spec) == hash(
        model.CertificateSpec.from_body(certificate_body(claims={"role": ["reader"]}))
    )


# ---------------------------------------------------------------------------
# Certificate: every refusal names its field


LABEL_VALUE = (
    'is not a label value; use at most 63 letters, digits, "-", "_" or ".", '
    "starting and ending with a letter or digit"
)
NOT_A_NAME = 'is not a Kubernetes object name; use lowercase letters, digits, "-" and "."'
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
    with pytest.raises(model.SpecError) as caught:
        model.CertificateSpec.from_body(body)
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
        field = model.CertificateSpec.from_body(body).secret_name and "spec"
    except model.SpecError as error:
        field = error.field
    assert field.startswith("spec")


# ---------------------------------------------------------------------------
# Issuers


def test_issuer_defaults_follow_the_design() -> None:
    issuer = model.IssuerSpec.from_body(issuer_body())
    assert issuer == model.IssuerSpec(
        kind="ClusterIssuer",
        name="workloads",
        namespace=None,
        ca=model.CASpec(secret_name="workloads-ca", generate=None),
        self_signed=False,
        trust_domain="cluster.local",
        policy=model.IssuancePolicy(
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
    issuer = model.IssuerSpec.from_body(body)
    assert issuer == model.IssuerSpec(
        kind="ClusterIssuer",
        name="workloads",
        namespace=None,
        ca=model.CASpec(
            secret_name="root",
            generate=model.GenerateSpec(
                common_name="payments root",
                duration=timedelta(hours=43800),
                private_key=model.PrivateKeySpec(algorithm="ECDSA", size=384),
            ),
        ),
        self_signed=False,
        trust_domain="prod.example.org",
        policy=model.IssuancePolicy(
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
                model.ClaimGrant(key="role", values=("reader", "writer"), namespaces=("payments",)),
                model.ClaimGrant(key="tenant", values=("{namespace}",), namespaces=None),
            ),
            allowed_extension_oids=frozenset({"1.3.6.1.4.1.55555.1.7"}),
            issuer_label='ClusterIssuer "workloads"',
        ),
        trust_distribution=model.TrustDistributionSpec(
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
    assert issuer.ref == model.IssuerRef(name="workloads", kind="ClusterIssuer")


@pytest.mark.parametrize(
    ("fields", "attribute", "expected"),
    [
        pytest.param(
            {"ca": ABSENT, "selfSigned": {}}, "self_signed", True, id="a selfSigned issuer"
        ),
        pytest.param(
            {"ca": {"secretName": "root", "generate": {}}},
            "ca",
            model.CASpec(
                secret_name="root",
                generate=model.GenerateSpec(
                    common_name="workloads root CA",
                    duration=timedelta(hours=87600),
                    private_key=model.PrivateKeySpec(algorithm="ECDSA", size=256),
                ),
            ),
            id="a generated CA defaults to ten years of ECDSA P-256",
        ),
        pytest.param(
            {"policy": {"maxDuration": "1h"}},
            "policy",
            model.IssuancePolicy(
                max_duration=timedelta(hours=1),
                default_duration=timedelta(hours=1),
                issuer_label='ClusterIssuer "workloads"',
            ),
            id="the default duration shrinks to a short maxDuration",
        ),
        pytest.param(
            {"policy": {"minDuration": "48h"}},
            "policy",
            model.IssuancePolicy(
                min_duration=timedelta(hours=48),
                default_duration=timedelta(hours=48),
                issuer_label='ClusterIssuer "workloads"',
            ),
            id="the default duration grows to a long minDuration",
        ),
        pytest.param(
            {"policy": {"allowedDNSNames": [], "allowedNamespaces": []}},
            "policy",
            model.IssuancePolicy(
                allowed_dns_names=(),
                allowed_namespaces=(),
                issuer_label='ClusterIssuer "workloads"',
            ),
            id="empty allow-lists allow nothing",
        ),
        pytest.param(
            {"trustDistribution": {}},
            "trust_distribution",
            model.TrustDistributionSpec(namespaces=("*",), namespace_selector=None),
            id="an empty trustDistribution publishes everywhere",
        ),
        pytest.param(
            {"trustDistribution": {"namespaceSelector": {}}},
            "trust_distribution",
            model.TrustDistributionSpec(
                namespaces=(),
                namespace_selector=types.MappingProxyType(
                    {"matchLabels": types.MappingProxyType({}), "matchExpressions": ()}
                ),
            ),
            id="a selector alone publishes only where it matches",
        ),
    ],
)
def test_issuer_choices_are_read(fields: dict[str, Any], attribute: str, expected: Any) -> None:
    assert getattr(model.IssuerSpec.from_body(issuer_body(**fields)), attribute) == expected


def test_a_namespaced_issuer_publishes_trust_only_into_its_own_namespace() -> None:
    issuer = model.IssuerSpec.from_body(
        issuer_body("Issuer", trustDistribution={"configMapName": "payments-trust"})
    )
    assert (issuer.namespace, issuer.ref, issuer.policy.issuer_label) == (
        "payments",
        model.IssuerRef(name="workloads", kind="Issuer"),
        'Issuer "workloads"',
    )
    assert issuer.trust_distribution == model.TrustDistributionSpec(
        namespaces=("payments",), namespace_selector=None, config_map_name="payments-trust"
    )


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


def test_allowed_subject_is_read_with_countries_upper_case() -> None:
    spec = model.IssuerSpec.from_body(
        issuer_body(
            policy={
                "allowedSubject": {
                    "organizations": ["{namespace}", "Acme *"],
                    "countries": ["de", "DE"],
                }
            }
        )
    )
    assert spec.policy.allowed_subject == model.SubjectPolicy(
        organizations=("{namespace}", "Acme *"), countries=("DE",)
    )


def test_without_allowed_subject_no_subject_attribute_is_allowed() -> None:
    spec = model.IssuerSpec.from_body(issuer_body())
    assert spec.policy.allowed_subject == model.SubjectPolicy()


@pytest.mark.parametrize(("body", "field", "message"), ISSUER_ERRORS)
def test_issuer_refusals_name_the_field(body: dict[str, Any], field: str, message: str) -> None:
    body = {key: value for key, value in body.items() if value is not ABSENT}
    with pytest.raises(model.SpecError) as caught:
        model.IssuerSpec.from_body(body)
    assert (caught.value.field, caught.value.message) == (field, message)


# ---------------------------------------------------------------------------
# Trust distribution targets


_DISTRIBUTION = model.IssuerSpec.from_body(
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


def selector() -> model.TrustDistributionSpec:
    assert _DISTRIBUTION is not None
    return _DISTRIBUTION


def test_trust_distribution_renders_the_selector_for_the_api() -> None:
    assert selector().label_selector() == (
        "trust=workloads,env in (prod,staging),tier notin (legacy),example.com/owner,!quarantined"
    )


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


def test_a_distribution_without_selector_has_no_selector_string() -> None:
    assert model.TrustDistributionSpec().label_selector() is None
    assert (
        model.TrustDistributionSpec(namespace_selector=None, namespaces=()).selects("a", {})
        is False
    )
