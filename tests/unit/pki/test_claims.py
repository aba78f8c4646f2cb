"""The claims extension: normalization, the DER wire format, strict decoding."""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.type import univ

from certmint.pki import claims, errors

# The known answer: {"role": ["writer", "reader"], "env": ["prod"]} in canonical DER.
KNOWN_CLAIMS = {"role": ["writer", "reader"], "env": ["prod"]}
KNOWN_DER_HEX = (
    "302e"  # WorkloadClaims SEQUENCE, 46 bytes
    "020101"  # version INTEGER 1
    "3029"  # claims SEQUENCE OF, 41 bytes
    "300d"
    "0c03656e76"
    "3006"
    "0c0470726f64"  # {"env", ["prod"]}
    "3018"
    "0c04726f6c65"
    "3010"
    "0c06726561646572"
    "0c06777269746572"  # {"role", [...]}
)


def test_the_oid_is_the_projects_uuid_under_the_guid_arc_with_every_arc_below_2_31() -> None:
    # The mapping spelled out in docs/claims.md, recomputed from the UUID's hex digits.
    digits = "bfde7477bd01431a9af19180fe2f21e8"
    cuts = [(0, 4), (4, 8), (8, 12), (12, 16), (16, 20), (20, 26), (26, 32)]
    arcs = [str(int(digits[start:end], 16)) for start, end in cuts]
    expected = "1.2.840.113556.1.8000.2554." + ".".join(arcs) + ".1"
    assert (
        claims.CLAIMS_OID.dotted_string
        == expected
        == ("1.2.840.113556.1.8000.2554.49118.29815.48385.17178.39665.9535742.3088872.1")
    )
    assert claims.guid_arc(claims.PROJECT_UUID) == claims.PROJECT_OID_ARC
    assert max(int(arc) for arc in expected.split(".")) < 2**31


def test_the_oid_encodes_as_docs_claims_md_shows() -> None:
    encoded = der_encoder.encode(univ.ObjectIdentifier(claims.CLAIMS_OID.dotted_string))
    assert encoded.hex() == (
        "06232a864886f71401be40937a82ff5e81e87782fa0181861a82b57184c6817e81bcc36801"
    )


def test_the_legacy_oid_is_the_x667_uuid_oid() -> None:
    assert claims.LEGACY_CLAIMS_OID.dotted_string == f"2.25.{int(claims.PROJECT_UUID)}.1"
    assert claims.DEFAULT_OIDS.write == claims.CLAIMS_OID
    assert claims.DEFAULT_OIDS.read == (claims.CLAIMS_OID, claims.LEGACY_CLAIMS_OID)


def test_encoding_matches_the_known_answer() -> None:
    assert claims.encode_claims(KNOWN_CLAIMS).hex() == KNOWN_DER_HEX


def test_openssl_parses_the_known_answer_as_the_documented_structure(openssl: str) -> None:
    parsed = subprocess.run(
        [openssl, "asn1parse", "-inform", "DER"],
        input=bytes.fromhex(KNOWN_DER_HEX),
        capture_output=True,
        check=True,
    ).stdout.decode()
    rows = [line.split(":", 1)[1].split() for line in parsed.splitlines()]
    assert [" ".join(row) for row in rows] == [
        "d=0 hl=2 l= 46 cons: SEQUENCE",
        "d=1 hl=2 l= 1 prim: INTEGER :01",
        "d=1 hl=2 l= 41 cons: SEQUENCE",
        "d=2 hl=2 l= 13 cons: SEQUENCE",
        "d=3 hl=2 l= 3 prim: UTF8STRING :env",
        "d=3 hl=2 l= 6 cons: SEQUENCE",
        "d=4 hl=2 l= 4 prim: UTF8STRING :prod",
        "d=2 hl=2 l= 24 cons: SEQUENCE",
        "d=3 hl=2 l= 4 prim: UTF8STRING :role",
        "d=3 hl=2 l= 16 cons: SEQUENCE",
        "d=4 hl=2 l= 6 prim: UTF8STRING :reader",
        "d=4 hl=2 l= 6 prim: UTF8STRING :writer",
    ]


def test_decoding_the_known_answer_gives_sorted_claims() -> None:
    assert claims.decode_claims(bytes.fromhex(KNOWN_DER_HEX)) == {
        "env": ("prod",),
        "role": ("reader", "writer"),
    }


def test_no_claims_encode_as_an_empty_list() -> None:
    assert claims.encode_claims({}).hex() == "30050201013000"
    assert claims.decode_claims(bytes.fromhex("30050201013000")) == {}


@pytest.mark.parametrize(
    ("given_claims", "expected"),
    [
        pytest.param(
            {"b": ["2", "1"], "a": ["x"]},
            {"a": ("x",), "b": ("1", "2")},
            id="keys and values are sorted",
        ),
        pytest.param({"a": ["x", "x", "y"]}, {"a": ("x", "y")}, id="repeated values collapse"),
        pytest.param(
            {"é": ["z"], "e": ["z"], "Z": ["z"]},
            {"Z": ("z",), "e": ("z",), "é": ("z",)},
            id="order is by code point, the same as UTF-8 byte order",
        ),
        pytest.param(
            {"team": ("a b", "ü")}, {"team": ("a b", "ü")}, id="spaces and non-ASCII are fine"
        ),
    ],
)
def test_normalize_claims_orders_canonically(
    given_claims: claims.Claims, expected: dict[str, tuple[str, ...]]
) -> None:
    assert claims.normalize_claims(given_claims) == expected
    assert list(claims.normalize_claims(given_claims)) == list(expected)


@pytest.mark.parametrize(
    ("given_claims", "field", "message"),
    [
        pytest.param({"": ["x"]}, "claims", "a claim key is empty", id="an empty key"),
        pytest.param(
            {"role": []}, "claims.role", "a claim needs at least one value", id="no values"
        ),
        pytest.param({"role": [""]}, "claims.role", "a claim value is empty", id="an empty value"),
        pytest.param(
            {"role": "reader"},
            "claims.role",
            "values must be a list of strings, not a single string",
            id="a bare string instead of a list",
        ),
        pytest.param(
            {"role": ["a\nb"]},
            "claims.role",
            "a claim value contains a control character (U+000A)",
            id="a newline in a value",
        ),
        pytest.param(
            {"ro\x00le": ["a"]},
            "claims",
            "a claim key contains a control character (U+0000)",
            id="a NUL in a key",
        ),
        pytest.param(
            {"role": ["\ud800"]},
            "claims.role",
            "a claim value is not valid Unicode (lone surrogate)",
            id="a lone surrogate",
        ),
        pytest.param(
            {"role": [3]},
            "claims.role",
            "a claim value must be a string, not int",
            id="a number as a value",
        ),
    ],
)
def test_malformed_claims_name_the_field(
    given_claims: claims.Claims, field: str, message: str
) -> None:
    with pytest.raises(errors.PKIError) as caught:
        claims.encode_claims(given_claims)
    assert (caught.value.field, caught.value.message) == (field, message)


def _der(pairs: list[tuple[str, list[str]]], version: int = 1) -> bytes:
    encoded: bytes = der_encoder.encode(claims.to_asn1(pairs, version))
    return encoded


@pytest.mark.parametrize(
    ("der", "message"),
    [
        pytest.param(
            _der([("a", ["x"])], version=2),
            "unsupported claims version 2; this decoder knows 1",
            id="another version",
        ),
        pytest.param(
            _der([("b", ["x"]), ("a", ["x"])]),
            "claim keys are out of order at 'a'",
            id="unsorted keys",
        ),
        pytest.param(
            _der([("a", ["x"]), ("a", ["y"])]),
            "claim keys are repeated at 'a'",
            id="a repeated key",
        ),
        pytest.param(
            _der([("a", ["y", "x"])]),
            "the values of claim 'a' are out of order at 'x'",
            id="unsorted values",
        ),
        pytest.param(
            _der([("a", ["x", "x"])]),
            "the values of claim 'a' are repeated at 'x'",
            id="a repeated value",
        ),
        pytest.param(
            _der([("a", [])]),
            "claims.a: a claim needs at least one value",
            id="a claim with no values",
        ),
        pytest.param(_der([("", ["x"])]), "claims: a claim key is empty", id="an empty key"),
        pytest.param(
            bytes.fromhex(KNOWN_DER_HEX) + b"\x00",
            "1 trailing bytes after the WorkloadClaims value",
            id="trailing bytes",
        ),
        pytest.param(
            bytes.fromhex("3081050201013000"),
            "the value is not in canonical DER form",
            id="a long-form length where DER needs the short form",
        ),
    ],
)
def test_decoding_is_strict(der: bytes, message: str) -> None:
    with pytest.raises(errors.PKIError) as caught:
        claims.decode_claims(der)
    assert (caught.value.field, caught.value.message) == ("claims", message)


@pytest.mark.parametrize(
    "der",
    [
        pytest.param(b"", id="no bytes at all"),
        pytest.param(bytes.fromhex("0c0161"), id="a bare UTF8String"),
        pytest.param(bytes.fromhex("3003020101"), id="a version without a claims list"),
        pytest.param(
            bytes.fromhex("300702010130020400"), id="an OCTET STRING where a claim belongs"
        ),
    ],
)
def test_decoding_refuses_other_structures(der: bytes) -> None:
    with pytest.raises(errors.PKIError) as caught:
        claims.decode_claims(der)
    assert caught.value.field == "claims"
    assert caught.value.message.startswith("not a DER WorkloadClaims value (")


claim_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=20
)
claim_maps = st.dictionaries(claim_text, st.lists(claim_text, min_size=1, max_size=5), max_size=6)


@given(claim_maps)
def test_any_valid_claims_survive_a_round_trip(original: dict[str, list[str]]) -> None:
    decoded = claims.decode_claims(claims.encode_claims(original))
    assert decoded == {key: tuple(sorted(set(values))) for key, values in original.items()}
    assert list(decoded) == sorted(original)


@given(claim_maps)
def test_encoding_is_canonical_whatever_the_input_order(original: dict[str, list[str]]) -> None:
    reordered = {key: list(reversed(values)) for key, values in reversed(original.items())}
    assert claims.encode_claims(reordered) == claims.encode_claims(original)
