"""Raw custom extensions: OID checks and value encoding."""

from __future__ import annotations

import base64

import pytest
from cryptography import x509

from certmint.pki import claims, errors, extensions


@pytest.mark.parametrize(
    "oid",
    [
        pytest.param("1.3.6.1.4.1.55555.1.7", id="a private enterprise OID"),
        pytest.param("2.25.1234", id="a UUID OID outside certmint's arc"),
        pytest.param("0.39", id="the largest second arc under 0"),
        pytest.param("2.999.1", id="a large second arc under 2"),
        pytest.param("2.5.4.3", id="an attribute type, which is not an extension"),
    ],
)
def test_well_formed_free_oids_are_accepted(oid: str) -> None:
    assert extensions.check_oid(oid, "extensions[0].oid").dotted_string == oid


NEW_OID = "1.2.840.113556.1.8000.2554.49118.29815.48385.17178.39665.9535742.3088872.1"


def test_no_claims_oid_means_certmints_current_and_legacy_oids() -> None:
    assert extensions.claims_oids(None) == claims.DEFAULT_OIDS


def test_an_organizations_claims_oid_replaces_certmints_for_writing_and_reading() -> None:
    oid = x509.ObjectIdentifier("1.3.6.1.4.1.55555.9.1")
    assert extensions.claims_oids("1.3.6.1.4.1.55555.9.1") == claims.ClaimsOids(
        write=oid, read=(oid,)
    )


@pytest.mark.parametrize(
    ("oid", "message"),
    [
        pytest.param("1.3.6.1.4.1.x", "'1.3.6.1.4.1.x' is not a dotted-decimal object identifier",
                     id="not an OID"),
        pytest.param(
            "2.25.1.2147483648",
            "2.25.1.2147483648: an arc above 2**31 - 1 makes certificates unparseable in Go",
            id="an arc Go cannot parse",
        ),
        pytest.param(
            "2.5.29.17.1",
            "2.5.29.17.1 is reserved for standard certificate extensions (id-ce)",
            id="a standard extension's arc",
        ),
    ],
)  # fmt: skip
def test_unusable_claims_oids_are_refused(oid: str, message: str) -> None:
    with pytest.raises(errors.PKIError) as caught:
        extensions.claims_oids(oid, "--claims-oid")
    assert (caught.value.field, caught.value.message) == ("--claims-oid", message)


@pytest.mark.parametrize(
    ("oid", "message"),
    [
        pytest.param("", "'' is not a dotted-decimal object identifier", id="empty"),
        pytest.param("1", "'1' is not a dotted-decimal object identifier", id="a single arc"),
        pytest.param(
            "3.1", "'3.1' is not a dotted-decimal object identifier", id="a first arc above 2"
        ),
        pytest.param(
            "1.3.06.1", "'1.3.06.1' is not a dotted-decimal object identifier", id="a leading zero"
        ),
        pytest.param(
            "1.3..1", "'1.3..1' is not a dotted-decimal object identifier", id="an empty arc"
        ),
        pytest.param(
            "1.3.6.", "'1.3.6.' is not a dotted-decimal object identifier", id="a trailing dot"
        ),
        pytest.param("1.a.2", "'1.a.2' is not a dotted-decimal object identifier", id="letters"),
        pytest.param(
            "1.40.1",
            "'1.40.1': under arc 1 the second arc must be below 40",
            id="second arc 40 under 1",
        ),
        pytest.param(
            "2.5.29.17",
            "2.5.29.17 is reserved for standard certificate extensions (id-ce) "
            "and cannot be set as a raw extension",
            id="subjectAltName",
        ),
        pytest.param(
            "2.5.29.19",
            "2.5.29.19 is reserved for standard certificate extensions (id-ce) "
            "and cannot be set as a raw extension",
            id="basicConstraints",
        ),
        pytest.param(
            "2.5.29.99999",
            "2.5.29.99999 is reserved for standard certificate extensions (id-ce) "
            "and cannot be set as a raw extension",
            id="a future id-ce extension",
        ),
        pytest.param(
            "1.3.6.1.5.5.7.1.1",
            "1.3.6.1.5.5.7.1.1 is reserved for PKIX private extensions such as "
            "authorityInfoAccess (id-pe) and cannot be set as a raw extension",
            id="authorityInfoAccess",
        ),
        pytest.param(
            "1.3.6.1.4.1.11129.2.4.2",
            "1.3.6.1.4.1.11129.2.4.2 is reserved for Certificate Transparency "
            "(SCTs, precertificate poison) and cannot be set as a raw extension",
            id="the SCT list",
        ),
        pytest.param(
            "1.3.6.1.5.5.7.48.1.5",
            (
                "1.3.6.1.5.5.7.48.1.5 is reserved for OCSP extensions and cannot be set as a raw "
                "extension"
            ),
            id="ocsp-nocheck",
        ),
        pytest.param(
            f"{NEW_OID}",
            f"{NEW_OID} is reserved for certmint's own "
            "extensions, such as the claims extension and cannot be set as a raw extension",
            id="the claims extension",
        ),
        pytest.param(
            "2.25.255037599343673218920774665946782441960.1",
            "2.25.255037599343673218920774665946782441960.1 is reserved for certmint's own "
            "extensions (the first claims OID, still read) and cannot be set as a raw "
            "extension",
            id="the legacy claims extension",
        ),
    ],
)
def test_malformed_or_reserved_oids_are_refused(oid: str, message: str) -> None:
    with pytest.raises(errors.PKIError) as caught:
        extensions.check_oid(oid, "extensions[3].oid")
    assert (caught.value.field, caught.value.message) == ("extensions[3].oid", message)


@pytest.mark.parametrize(
    ("kind", "value", "der_hex"),
    [
        pytest.param("utf8String", "x", "0c0178", id="a UTF8String"),
        pytest.param("utf8String", "ü", "0c02c3bc", id="a non-ASCII UTF8String"),
        pytest.param("integer", 7, "020107", id="a small integer"),
        pytest.param("integer", 128, "02020080", id="an integer needing a sign byte"),
        pytest.param("integer", -1, "0201ff", id="a negative integer"),
        pytest.param("boolean", True, "0101ff", id="true"),
        pytest.param("boolean", False, "010100", id="false"),
        pytest.param(
            "der",
            base64.b64encode(bytes.fromhex("3003020105")).decode(),
            "3003020105",
            id="a DER SEQUENCE",
        ),
        pytest.param(
            "der",
            base64.b64encode(bytes.fromhex("a003020105")).decode(),
            "a003020105",
            id="an explicit tag",
        ),
        pytest.param("der", base64.b64encode(bytes.fromhex("0500")).decode(), "0500", id="a NULL"),
    ],
)
def test_values_encode_to_der(kind: str, value: object, der_hex: str) -> None:
    assert extensions.encode_value(kind, value).hex() == der_hex


@pytest.mark.parametrize(
    ("kind", "value", "message_start"),
    [
        pytest.param("utf8String", 3, "utf8String needs text, not int", id="a number as a string"),
        pytest.param(
            "integer", "7", "integer needs a whole number, not str", id="text as an integer"
        ),
        pytest.param(
            "integer", True, "integer needs a whole number, not bool", id="a boolean as an integer"
        ),
        pytest.param(
            "boolean", 1, "boolean needs true or false, not int", id="a number as a boolean"
        ),
        pytest.param("der", "***", "der is not valid base64", id="der that is not base64"),
        pytest.param("der", "", "the DER value is empty", id="empty der"),
        pytest.param(
            "der",
            base64.b64encode(bytes.fromhex("30030201")).decode(),
            "not one well-formed DER element (",
            id="truncated der",
        ),
        pytest.param(
            "der",
            base64.b64encode(bytes.fromhex("05000500")).decode(),
            "2 bytes follow the DER element; give exactly one",
            id="two DER elements",
        ),
        pytest.param(
            "der",
            base64.b64encode(bytes.fromhex("0c810161")).decode(),
            "the value is BER but not canonical DER",
            id="a BER long-form length",
        ),
        pytest.param(
            "der",
            base64.b64encode(bytes.fromhex("010101")).decode(),
            "not one well-formed DER element (",
            id="a BER boolean",
        ),
        pytest.param(
            "float",
            1.5,
            "unknown value kind 'float'; use one of utf8String, integer, boolean, der",
            id="an unknown kind",
        ),
    ],
)
def test_bad_values_name_the_field(kind: str, value: object, message_start: str) -> None:
    with pytest.raises(errors.PKIError) as caught:
        extensions.encode_value(kind, value, field="extensions[1].value")
    assert caught.value.field == "extensions[1].value"
    assert caught.value.message.startswith(message_start)


def test_raw_extension_checks_both_oid_and_value() -> None:
    built = extensions.raw_extension(
        "1.3.6.1.4.1.55555.1.7", False, "utf8String", "x", field="extensions[2]"
    )
    assert built == extensions.RawExtension("1.3.6.1.4.1.55555.1.7", False, b"\x0c\x01x")
    with pytest.raises(errors.PKIError) as caught:
        extensions.raw_extension("2.5.29.17", False, "utf8String", "x", field="extensions[2]")
    assert caught.value.field == "extensions[2].oid"
    with pytest.raises(errors.PKIError) as caught:
        extensions.raw_extension(
            "1.3.6.1.4.1.55555.1.7", False, "integer", "x", field="extensions[2]"
        )
    assert caught.value.field == "extensions[2].value"
