"""``certmint inspect``: rendering a certificate file or a Secret's data."""

from __future__ import annotations

import datetime
import functools
import json
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from certmint.cli import inspect_cmd
from certmint.cli import main as cli
from certmint.pki import building, claims, decode, extensions, issuing, keys

from .support import IDENTITY, NOW, Pki

CLAIMS = {"env": ("prod",), "role": ("reader", "writer")}


def _secret(pki: Pki, *, trusted: str = "root") -> dict[str, bytes]:
    issued = issuing.issue(
        pki.request(claims=CLAIMS, dns_names=("api.payments.svc",)),
        pki.intermediate("ECDSA P-256"),
        NOW,
    )
    return {
        "tls.crt": issued.chain_pem,
        "tls.key": keys.private_key_to_pem(pki.key("ECDSA P-256")),
        "ca.crt": decode.certificates_to_pem([pki.root("ECDSA P-256", trusted).certificate]),
    }


def test_the_table_shows_identity_claims_sans_validity_and_a_verified_chain(pki: Pki) -> None:
    text, code = inspect_cmd.run(None, _secret(pki), as_json=False, now=NOW)
    assert code == 0
    assert text.splitlines()[0] == "Certificate from tls.crt"
    lines = [" ".join(line.split()) for line in text.splitlines()]
    assert f"Identity {IDENTITY}" in lines
    assert "Claims env=prod; role=reader,writer" in lines
    assert "DNS names api.payments.svc" in lines
    assert "Status valid, expires in 1h" in lines
    assert "Key ECDSA P-256" in lines
    assert (
        "Chain [1] CN=intermediate ECDSA P-256 (until "
        + _stamp(pki.intermediate("ECDSA P-256").not_after)
        + ")"
        in lines
    )
    assert "Chain check verified: verified against 1 trust anchor(s)" in lines


def _stamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_json_output_carries_the_same_facts(pki: Pki) -> None:
    text, code = inspect_cmd.run(None, _secret(pki), as_json=True, now=NOW)
    document = json.loads(text)
    assert code == 0
    assert document["certificate"]["identity"] == str(IDENTITY)
    assert document["certificate"]["claims"] == {"env": ["prod"], "role": ["reader", "writer"]}
    assert document["validity"] == {"status": "valid", "remainingSeconds": 3600}
    assert document["chainCheck"] == {
        "result": "verified",
        "message": "verified against 1 trust anchor(s)",
    }
    assert [view["subject"] for view in document["chain"]] == ["CN=intermediate ECDSA P-256"]
    assert [view["subject"] for view in document["trustAnchors"]] == ["CN=root ECDSA P-256"]


def test_the_private_key_is_never_printed(pki: Pki) -> None:
    secret = _secret(pki)
    key = pki.key("ECDSA P-256")
    secret_material = [
        line for line in secret["tls.key"].decode().splitlines() if not line.startswith("-----")
    ]
    raw_scalar = format(key.private_numbers().private_value, "x")  # type: ignore[union-attr]
    for as_json in (False, True):
        text, _ = inspect_cmd.run(None, secret, as_json=as_json, now=NOW)
        assert not [line for line in secret_material if line in text]
        assert raw_scalar not in text
        assert "PRIVATE KEY" not in text


def test_a_chain_that_does_not_verify_exits_with_1(pki: Pki) -> None:
    text, code = inspect_cmd.run(None, _secret(pki, trusted="stranger"), as_json=True, now=NOW)
    check = json.loads(text)["chainCheck"]
    assert (code, check["result"]) == (1, "failed")
    assert check["message"].startswith("tls.crt: chain verification failed:")


def test_an_expired_certificate_exits_with_1(pki: Pki) -> None:
    later = NOW + datetime.timedelta(hours=2)
    text, code = inspect_cmd.run(None, _secret(pki), as_json=False, now=later)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    assert code == 1
    assert "Status EXPIRED 1h ago" in lines


def test_a_pem_file_with_a_key_is_read_and_the_key_skipped(pki: Pki, tmp_path: Path) -> None:
    issued = issuing.issue(pki.request(), pki.root("ECDSA P-256"), NOW)
    path = tmp_path / "combined.pem"
    path.write_bytes(keys.private_key_to_pem(pki.key("ECDSA P-256")) + issued.chain_pem)
    text, code = inspect_cmd.run(str(path), None, as_json=True, now=NOW)
    document = json.loads(text)
    assert code == 0
    assert document["certificate"]["identity"] == str(IDENTITY)
    assert document["chainCheck"] == {
        "result": "skipped",
        "message": "no trust anchors given (ca.crt)",
    }
    assert "PRIVATE KEY" not in text


def test_a_der_file_and_a_separate_ca_file_are_accepted(pki: Pki, tmp_path: Path) -> None:
    issued = issuing.issue(pki.request(), pki.root("ECDSA P-256"), NOW)
    path = tmp_path / "tls.der"
    path.write_bytes(issued.certificate.public_bytes(serialization.Encoding.DER))
    ca_pem = decode.certificates_to_pem([pki.root("ECDSA P-256").certificate])
    text, code = inspect_cmd.run(str(path), None, as_json=True, now=NOW, ca_pem=ca_pem)
    assert (code, json.loads(text)["chainCheck"]["result"]) == (0, "verified")


@pytest.mark.parametrize(
    ("path", "secret", "message"),
    [
        pytest.param(
            "/nonexistent/cert.pem",
            None,
            "error: cannot read /nonexistent/cert.pem: No such file or directory",
            id="a missing file",
        ),
        pytest.param(
            None, {"ca.crt": b""}, "error: the Secret has no tls.crt", id="a Secret without tls.crt"
        ),
        pytest.param(
            None,
            {"tls.crt": b"-----BEGIN NOTHING-----"},
            "error: tls.crt: no readable PEM certificate",
            id="PEM without a certificate",
        ),
        pytest.param(
            None,
            {"tls.crt": b"\x00\x01"},
            "error: tls.crt: neither PEM nor DER certificate data",
            id="binary garbage",
        ),
        pytest.param(
            None, None, "error: give a certificate file or a Secret", id="no input at all"
        ),
    ],
)
def test_unreadable_input_exits_with_2(
    path: str | None, secret: dict[str, bytes] | None, message: str
) -> None:
    assert inspect_cmd.run(path, secret, as_json=False, now=NOW) == (message, 2)


def test_malformed_claims_are_reported_not_fatal(pki: Pki) -> None:
    root = pki.root("ECDSA P-256")
    key = pki.key("ECDSA P-256")
    ski, aki = building.key_identifiers(key.public_key(), root.certificate)
    certificate = building.sign(
        building.Blueprint(
            subject=x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "bad claims")]),
            issuer=root.certificate.subject,
            public_key=key.public_key(),
            not_before=NOW - datetime.timedelta(minutes=1),
            not_after=NOW + datetime.timedelta(hours=1),
            extensions=[
                building.Extension(
                    x509.BasicConstraints(ca=False, path_length=None), critical=True
                ),
                ski,
                aki,
                building.Extension(
                    x509.UnrecognizedExtension(claims.CLAIMS_OID, b"\x05\x00"), critical=False
                ),
            ],
        ),
        root.private_key,
    )
    secret = {"tls.crt": decode.certificates_to_pem([certificate])}
    text, code = inspect_cmd.run(None, secret, as_json=True, now=NOW)
    document = json.loads(text)
    assert code == 1
    assert document["certificate"]["claims"] == {}
    assert document["claimsError"].startswith("claims: not a DER WorkloadClaims value (")


def _no_extensions(pki: Pki) -> x509.Certificate:
    key = pki.key("ECDSA P-256", "bare")
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "bare")])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(minutes=1))
        .not_valid_after(NOW + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())  # type: ignore[arg-type]
    )


def _version_1(openssl: str, tmp_path: Path) -> x509.Certificate:
    """A v1 certificate (no extensions field at all), made by openssl's x509 -req."""
    key, request, out = (tmp_path / name for name in ("v1.key", "v1.csr", "v1.pem"))
    run = functools.partial(subprocess.run, check=True, capture_output=True)
    run([openssl, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key])
    run([openssl, "req", "-new", "-key", key, "-subj", "/CN=version one", "-out", request])
    run([openssl, "x509", "-req", "-in", request, "-key", key, "-days", "1", "-out", out])
    certificate = x509.load_pem_x509_certificate(out.read_bytes())
    assert certificate.version == x509.Version.v1, "this openssl wrote a v3 certificate"
    return certificate


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        pytest.param("root CA", ("CN=root ECDSA P-256", "ECDSA P-256"), id="a CA without SANs"),
        pytest.param("RSA root CA", ("CN=root RSA 2048", "RSA 2048"), id="an RSA CA"),
        pytest.param("Ed25519 root CA", ("CN=root Ed25519", "Ed25519"), id="an Ed25519 CA"),
        pytest.param("no extensions", ("CN=bare", "ECDSA P-256"), id="no extensions at all"),
        pytest.param("version 1", ("CN=version one", "ECDSA P-256"), id="a v1 certificate"),
    ],
)
def test_any_certificate_shape_is_described(
    pki: Pki, openssl: str, tmp_path: Path, shape: str, expected: tuple[str, str]
) -> None:
    subject, key = expected
    certificate = {
        "root CA": lambda: pki.root("ECDSA P-256").certificate,
        "RSA root CA": lambda: pki.root("RSA 2048").certificate,
        "Ed25519 root CA": lambda: pki.root("Ed25519").certificate,
        "no extensions": lambda: _no_extensions(pki),
        "version 1": lambda: _version_1(openssl, tmp_path),
    }[shape]()
    secret = {"tls.crt": decode.certificates_to_pem([certificate])}
    moment = certificate.not_valid_before_utc + datetime.timedelta(minutes=2)

    table, table_code = inspect_cmd.run(None, secret, as_json=False, now=moment)
    document = json.loads(inspect_cmd.run(None, secret, as_json=True, now=moment)[0])

    assert table_code == 0, table
    assert f"Subject {subject}" in [" ".join(line.split()) for line in table.splitlines()]
    view = document["certificate"]
    assert (view["subject"], view["key"]) == (subject, key)
    assert view["dnsNames"] == view["uris"] == view["ipAddresses"] == []
    assert view["identity"] is None
    assert view["claims"] == {}


def test_a_garbage_pem_body_is_a_clear_error() -> None:
    garbage = b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
    assert inspect_cmd.run(None, {"tls.crt": garbage}, as_json=False, now=NOW) == (
        "error: tls.crt: no readable PEM certificate",
        2,
    )


OWN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.55555.9.1")


@pytest.mark.parametrize(
    ("written_under", "claims_oid", "shown", "other_extensions"),
    [
        pytest.param(claims.LEGACY_CLAIMS_OID, None, CLAIMS, [],
                     id="claims under the legacy OID are shown"),
        pytest.param(OWN_OID, None, {}, [{"oid": OWN_OID.dotted_string, "critical": False}],
                     id="an organization's OID is just another extension by default"),
        pytest.param(OWN_OID, OWN_OID.dotted_string, CLAIMS, [],
                     id="an organization's OID is decoded with --claims-oid"),
    ],
)  # fmt: skip
def test_which_oids_inspect_reads_claims_under(
    pki: Pki,
    tmp_path: Path,
    *,
    written_under: x509.ObjectIdentifier,
    claims_oid: str | None,
    shown: dict[str, tuple[str, ...]],
    other_extensions: list[dict[str, object]],
) -> None:
    request = pki.request(claims=CLAIMS, claims_oid=written_under)
    issued = issuing.issue(request, pki.root("ECDSA P-256"), NOW)
    path = tmp_path / "tls.crt"
    path.write_bytes(issued.chain_pem)
    oids = extensions.claims_oids(claims_oid)
    text, code = inspect_cmd.run(str(path), None, as_json=True, now=NOW, claims_oids=oids)
    certificate = json.loads(text)["certificate"]
    assert code == 0
    assert certificate["claims"] == {key: list(values) for key, values in shown.items()}
    assert certificate["otherExtensions"] == other_extensions


@pytest.mark.parametrize(
    ("command", "oid", "message"),
    [
        pytest.param("run", "2.25.4294967296",
                     "2.25.4294967296: an arc above 2**31 - 1 makes certificates unparseable in Go",
                     id="run refuses an OID Go cannot parse"),
        pytest.param("inspect", "claims", "'claims' is not a dotted-decimal object identifier",
                     id="inspect refuses text that is no OID"),
    ],
)  # fmt: skip
def test_the_claims_oid_flag_refuses_unusable_oids(
    capsys: pytest.CaptureFixture[str], command: str, oid: str, message: str
) -> None:
    argv = [command, "--claims-oid", oid] + (["tls.crt"] if command == "inspect" else [])
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(argv)
    assert f"argument --claims-oid: {message}" in capsys.readouterr().err


def test_the_claims_oid_flag_sets_the_oid_new_certificates_carry() -> None:
    args = cli.build_parser().parse_args(["run", "--claims-oid", OWN_OID.dotted_string])
    assert args.claims_oid == claims.ClaimsOids(write=OWN_OID, read=(OWN_OID,))
    assert cli.build_parser().parse_args(["run"]).claims_oid == claims.DEFAULT_OIDS
