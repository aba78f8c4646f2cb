"""Claims decoders in Go, Java and Node agree with the committed vectors and with Go's parser.

Every decoder must produce the vector's JSON for a valid vector and refuse an invalid one
(tests/vectors/claims; the Python decoder is held to them in tests/vectors).
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from certmint.pki import claims
from tests.interop import builds, conftest, processes
from tests.vectors.claims import generate

VECTORS = generate.DIRECTORY
EXPECTED = {
    path.stem: json.loads(path.read_text(encoding="utf-8"))
    for path in sorted(VECTORS.glob("*.json"))
}


def decoder_argv(language: str) -> list[str | Path]:
    if language == "go":
        return [builds.go_peer("go")]
    if language == "java":
        return [*builds.java_peer()]
    return [*builds.node_peer()]


def decoded_by(language: str) -> dict[str, dict[str, Any]]:
    """Each vector's name to what the language's decoder printed for it."""
    result = processes.run_lines([*decoder_argv(language), "vectors", VECTORS])
    return {line.pop("name"): line for line in result}


@pytest.mark.parametrize("language", ["go", "java", "node"])
def test_the_decoder_agrees_with_every_vector(language: str) -> None:
    decoded = decoded_by(language)
    assert sorted(decoded) == sorted(EXPECTED)
    disagreements = {}
    for name, expected in EXPECTED.items():
        outcome = decoded[name]
        if expected["valid"]:
            agrees = outcome == {"claims": expected["claims"]}
        else:
            agrees = set(outcome) == {"error"} and bool(outcome["error"])
        if not agrees:
            disagreements[name] = (expected, outcome)
    assert disagreements == {}


def test_go_parses_a_certificate_the_operator_issued_with_claims(
    issued: conftest.Issued,
) -> None:
    server = issued.servers["ECDSA P-256"]
    output = processes.run_client([builds.go_peer("go"), "parse", server.cert])
    assert output == {"identity": server.identity, "claims": server.claims}


def _certificate_with_claims_under(oid: x509.ObjectIdentifier, path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "legacy")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier("spiffe://interop.test/ns/a/sa/b")]
            ),
            critical=False,
        )
        .add_extension(
            x509.UnrecognizedExtension(oid, claims.encode_claims({"role": ["reader"]})),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


def test_go_refuses_the_legacy_oid_and_accepts_the_current_one(tmp_path: Path) -> None:
    """Why the OID changed: Go's x509 parser cannot hold the legacy OID's 128-bit arc."""
    go = builds.go_peer("go")
    legacy = _certificate_with_claims_under(claims.LEGACY_CLAIMS_OID, tmp_path / "legacy.pem")
    current = _certificate_with_claims_under(claims.CLAIMS_OID, tmp_path / "current.pem")
    assert processes.run_failing([go, "parse", legacy]) == {
        "error": "x509: malformed extension OID field"
    }
    assert processes.run_client([go, "parse", current]) == {
        "identity": "spiffe://interop.test/ns/a/sa/b",
        "claims": {"role": ["reader"]},
    }


def test_an_organizations_own_claims_oid_is_read_by_the_go_peer(tmp_path: Path) -> None:
    own = x509.ObjectIdentifier("1.3.6.1.4.1.55555.9.1")
    path = _certificate_with_claims_under(own, tmp_path / "own.pem")
    go = builds.go_peer("go")
    assert processes.run_client([go, "-claims-oid", own.dotted_string, "parse", path])[
        "claims"
    ] == {"role": ["reader"]}
    assert processes.run_client([go, "parse", path])["claims"] == {}
