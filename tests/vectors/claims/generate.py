"""Generate the language-neutral test vectors of the claims extension.

Each vector is ``<name>.der`` (an ``extnValue``: a ``WorkloadClaims`` value or a
deliberately broken one) and ``<name>.json``, what every decoder must make of it::

    {"valid": true, "claims": {"env": ["prod"], ...}}      decode to exactly this
    {"valid": false, "rule": "keys are sorted and unique"}  refuse it (fail closed)

The rules are those of docs/claims.md. Valid values and values that break only an
ordering or content rule are encoded with pyasn1 (`certmint.pki.claims.to_asn1`, which
does no checking); values that are not canonical DER are written byte by byte on purpose.
Run ``python -m tests.vectors.claims.generate`` after changing this file and commit the
output; tests/vectors/test_claims_vectors.py checks the committed files match.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from pyasn1.codec.der import encoder as der_encoder
from pyasn1.type import char, univ

from certmint.pki import claims

DIRECTORY = Path(__file__).resolve().parent

Pairs = Sequence[tuple[str, Sequence[str]]]


@dataclasses.dataclass(frozen=True)
class Vector:
    """One test vector: its bytes and what a decoder must make of them."""

    name: str
    der: bytes
    claims: dict[str, list[str]] | None = None
    rule: str | None = None

    def expected_json(self) -> str:
        """The ``.json`` file's text."""
        body: dict[str, object] = (
            {"valid": True, "claims": self.claims}
            if self.rule is None
            else {"valid": False, "rule": self.rule}
        )
        return json.dumps(body, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def der(pairs: Pairs, version: int = 1) -> bytes:
    """pyasn1's DER for the pairs exactly as given (no sorting, no checks)."""
    encoded: bytes = der_encoder.encode(claims.to_asn1(pairs, version))
    return encoded


def valid(name: str, pairs: Pairs) -> Vector:
    """A canonical value; its expected claims are the pairs themselves."""
    return Vector(name, der(pairs), claims={key: list(values) for key, values in pairs})


def invalid(name: str, rule: str, encoded: bytes) -> Vector:
    """A value every decoder must refuse, and the rule it breaks."""
    return Vector(name, encoded, rule=rule)


def _with_printable_key() -> bytes:
    """A Claim whose key is a PrintableString instead of a UTF8String."""
    claim = univ.Sequence()
    claim.setComponentByPosition(0, char.PrintableString("role"))
    values = univ.SequenceOf(componentType=char.UTF8String())
    values.extend(["reader"])
    claim.setComponentByPosition(1, values)
    claim_list = univ.SequenceOf(componentType=univ.Sequence())
    claim_list.extend([claim])
    document = univ.Sequence()
    document.setComponentByPosition(0, univ.Integer(1))
    document.setComponentByPosition(1, claim_list)
    encoded: bytes = der_encoder.encode(document)
    return encoded


def _with_extra_element() -> bytes:
    """WorkloadClaims with a third element (a NULL) after the claims."""
    body = der([("role", ["reader"])])[2:] + b"\x05\x00"
    return bytes([0x30, len(body)]) + body


def _long_form_length() -> bytes:
    """The example with its outer length in long form (81 2e): BER, not DER."""
    canonical = der(EXAMPLE)
    return b"\x30\x81" + canonical[1:]


def _invalid_utf8() -> bytes:
    """A value with the byte FF, which is never valid UTF-8."""
    canonical = der([("role", ["reader"])])
    return canonical.replace(b"reader", b"read\xffr")


EXAMPLE: Pairs = (("env", ("prod",)), ("role", ("reader", "writer")))


def vectors() -> list[Vector]:
    """Every vector, valid ones first."""
    return [
        valid("valid-01-example", EXAMPLE),
        valid("valid-02-no-claims", ()),
        valid("valid-03-one-claim", (("role", ("reader",)),)),
        valid(
            "valid-04-kubernetes-style-keys",
            (
                ("example.com/team", ("payments", "payments-oncall")),
                ("example.com/tier", ("1",)),
                ("role", ("admin", "reader", "writer")),
            ),
        ),
        valid(
            "valid-05-unicode-in-code-point-order",
            # U+FFFD sorts before U+1F600 by code point (UTF-8 bytes), but after it in
            # UTF-16 code units: decoders must compare UTF-8 bytes.
            (("région", ("Zürich", "\ufffd", "\U0001f600")), ("z", ("é",))),
        ),
        valid("valid-06-long-value", (("note", ("x" * 300,)),)),
        invalid("invalid-01-unsorted-keys", "keys are sorted", der(EXAMPLE[::-1])),
        invalid(
            "invalid-02-duplicate-keys",
            "keys are unique",
            der((("role", ("reader",)), ("role", ("writer",)))),
        ),
        invalid(
            "invalid-03-unsorted-values",
            "values are sorted",
            der((("role", ("writer", "reader")),)),
        ),
        invalid(
            "invalid-04-duplicate-values",
            "values are unique",
            der((("role", ("reader", "reader")),)),
        ),
        invalid("invalid-05-empty-key", "keys are not empty", der((("", ("reader",)),))),
        invalid("invalid-06-empty-value", "values are not empty", der((("role", ("",)),))),
        invalid(
            "invalid-07-claim-without-values",
            "every claim has at least one value",
            der((("role", ()),)),
        ),
        invalid(
            "invalid-08-control-character-in-key",
            "no control characters",
            der((("ro\nle", ("reader",)),)),
        ),
        invalid(
            "invalid-09-nul-in-value",
            "no control characters",
            der((("role", ("read\x00er",)),)),
        ),
        invalid(
            "invalid-10-c1-control-in-value",
            "no control characters",
            der((("role", ("read\x85er",)),)),
        ),
        invalid(
            "invalid-11-delete-in-value",
            "no control characters",
            der((("role", ("read\x7fer",)),)),
        ),
        invalid("invalid-12-trailing-bytes", "no trailing bytes", der(EXAMPLE) + b"\x00"),
        invalid("invalid-13-version-0", "version is 1", der(EXAMPLE, version=0)),
        invalid("invalid-14-version-2", "version is 1", der(EXAMPLE, version=2)),
        invalid("invalid-15-long-form-length", "DER (minimal lengths)", _long_form_length()),
        invalid("invalid-16-printable-string-key", "strings are UTF8String", _with_printable_key()),
        invalid(
            "invalid-17-extra-element", "WorkloadClaims has two elements", _with_extra_element()
        ),
        invalid("invalid-18-invalid-utf8", "strings are valid UTF-8", _invalid_utf8()),
        invalid("invalid-19-truncated", "one complete DER value", der(EXAMPLE)[:-3]),
        invalid(
            "invalid-20-utf16-order",
            "values are sorted",
            der((("role", ("\U0001f600", "\ufffd")),)),
        ),
    ]


def write(directory: Path = DIRECTORY) -> list[Path]:
    """Write every vector's ``.der`` and ``.json`` into ``directory``.

    Returns:
        The files written.
    """
    written = []
    for vector in vectors():
        der_path = directory / f"{vector.name}.der"
        json_path = directory / f"{vector.name}.json"
        der_path.write_bytes(vector.der)
        json_path.write_text(vector.expected_json(), encoding="utf-8")
        written += [der_path, json_path]
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1]) if len(sys.argv) > 1 else DIRECTORY):
        print(path.name)
