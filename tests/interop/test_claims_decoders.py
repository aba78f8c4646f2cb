"""Claims decoders in Go, Java and Node agree with the committed vectors; Go and the OIDs.

Every decoder must produce the vector's JSON for a valid vector and refuse an invalid one
(tests/vectors/claims; the Python decoder is held to them in tests/vectors).
"""

from __future__ import annotations

import datetime
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from certmint.pki import claims
from tests.interop import builds, processes
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


DOC_DECODER_MAIN = """package main

import (
	"bytes"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"
)

func main() {
	paths, _ := filepath.Glob(filepath.Join(os.Args[1], "*.der"))
	for _, path := range paths {
		der, _ := os.ReadFile(path)
		name := strings.TrimSuffix(filepath.Base(path), ".der")
		line := map[string]any{"name": name}
		if claims, err := DecodeClaims(der); err != nil {
			line["error"] = err.Error()
		} else {
			line["claims"] = claims
		}
		encoded, _ := json.Marshal(line)
		fmt.Println(string(encoded))
	}
}

"""


def test_the_go_decoder_printed_in_docs_claims_md_agrees_with_every_vector(
    tmp_path: Path,
) -> None:
    claims_md = (builds.HERE.parents[1] / "docs" / "claims.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```go\n(.*?)```", claims_md, flags=re.DOTALL)
    decoder = next(block for block in blocks if "func DecodeClaims" in block)
    (tmp_path / "go.mod").write_text("module docdecoder\n\ngo 1.26\n")
    (tmp_path / "main.go").write_text(DOC_DECODER_MAIN + decoder)
    go = builds.require_tool("go")
    built = subprocess.run(
        [go, "build", "-o", str(tmp_path / "decoder"), "."],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    decoded = {
        line.pop("name"): line for line in processes.run_lines([tmp_path / "decoder", VECTORS])
    }
    assert {name: "claims" in outcome for name, outcome in decoded.items()} == {
        name: expected["valid"] for name, expected in EXPECTED.items()
    }
    for name, expected in EXPECTED.items():
        if expected["valid"]:
            assert decoded[name] == {"claims": expected["claims"]}, name
