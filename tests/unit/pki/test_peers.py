"""Real peers: the openssl command and Python's ssl module accept what certmint issues."""

from __future__ import annotations

import datetime
import ssl
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from certmint.pki import decode, issuing, keys

from .support import IDENTITY, NOW, Pki

CLAIMS = {"role": ("reader", "writer")}


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def _issue(
    pki: Pki, algorithm: str, through_intermediate: bool, **changes: object
) -> issuing.IssuedCertificate:
    signer = pki.intermediate(algorithm) if through_intermediate else pki.root(algorithm)
    request = pki.request(algorithm, claims=CLAIMS, dns_names=("api.payments.svc",), **changes)
    return issuing.issue(request, signer, NOW)


@pytest.mark.parametrize(
    "through_intermediate", [False, True], ids=["root to leaf", "root to intermediate to leaf"]
)
def test_openssl_verify_accepts_the_chain(
    pki: Pki, algorithm: str, through_intermediate: bool, openssl: str, tmp_path: Path
) -> None:
    issued = _issue(pki, algorithm, through_intermediate)
    command = [
        openssl,
        "verify",
        "-x509_strict",
        "-purpose",
        "sslclient",
        "-CAfile",
        _write(
            tmp_path / "root.pem", decode.certificates_to_pem([pki.root(algorithm).certificate])
        ),
    ]
    if issued.chain:
        command += [
            "-untrusted",
            _write(tmp_path / "inter.pem", decode.certificates_to_pem(issued.chain)),
        ]
    command.append(_write(tmp_path / "leaf.pem", issued.certificate_pem))
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert (result.returncode, result.stdout.strip(), result.stderr) == (
        0,
        f"{tmp_path / 'leaf.pem'}: OK",
        "",
    )


def test_openssl_verify_refuses_a_leaf_from_another_root(
    pki: Pki, openssl: str, tmp_path: Path
) -> None:
    issued = _issue(pki, "ECDSA P-256", through_intermediate=False)
    stranger = pki.root("ECDSA P-256", "stranger").certificate
    result = subprocess.run(
        [
            openssl,
            "verify",
            "-CAfile",
            _write(tmp_path / "root.pem", decode.certificates_to_pem([stranger])),
            _write(tmp_path / "leaf.pem", issued.certificate_pem),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "unable to get local issuer certificate" in result.stdout + result.stderr


def test_openssl_x509_shows_the_profile(pki: Pki, algorithm: str, openssl: str) -> None:
    issued = _issue(pki, algorithm, through_intermediate=True)
    text = subprocess.run(
        [openssl, "x509", "-text", "-noout"],
        input=issued.certificate_pem,
        capture_output=True,
        check=True,
    ).stdout.decode()
    lines = [line.strip() for line in text.splitlines()]

    def after(heading: str) -> str:
        return lines[lines.index(heading) + 1]

    assert after("X509v3 Basic Constraints: critical") == "CA:FALSE"
    expected_usage = (
        "Digital Signature, Key Encipherment" if algorithm == "RSA 2048" else "Digital Signature"
    )
    assert after("X509v3 Key Usage: critical") == expected_usage
    assert (
        after("X509v3 Extended Key Usage:")
        == "TLS Web Server Authentication, TLS Web Client Authentication"
    )
    assert (
        after("X509v3 Subject Alternative Name: critical")
        == f"URI:{IDENTITY}, DNS:api.payments.svc"
    )
    # The claims extension is listed by OID and without "critical".
    assert "1.2.840.113556.1.8000.2554.49118.29815.48385.17178.39665.9535742.3088872.1:" in lines
    assert (
        "1.2.840.113556.1.8000.2554.49118.29815.48385.17178.39665.9535742.3088872.1: critical"
        not in lines
    )


def _context(
    purpose: ssl.Purpose,
    issued: issuing.IssuedCertificate,
    key: keys.PrivateKey,
    *,
    trusted: x509.Certificate,
    tmp_path: Path,
    name: str,
) -> ssl.SSLContext:
    context = ssl.create_default_context(
        purpose, cadata=decode.certificates_to_pem([trusted]).decode()
    )
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    context.verify_mode = ssl.CERT_REQUIRED
    # Workloads authenticate each other by SPIFFE ID, not by host name.
    context.check_hostname = False
    context.load_cert_chain(
        _write(tmp_path / f"{name}.crt", issued.chain_pem),
        _write(tmp_path / f"{name}.key", keys.private_key_to_pem(key)),
    )
    return context


def _handshake(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> tuple[bytes, bytes, str]:
    """Run a TLS handshake through memory buffers.

    Returns:
        The client's certificate as the server saw it, the server's as the client saw it
        (both DER), and the TLS version.
    """
    client_in, client_out, server_in, server_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_context.wrap_bio(client_in, client_out)
    server = server_context.wrap_bio(server_in, server_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):  # a TLS 1.3 handshake needs three flights
        for name, end in (("client", client), ("server", server)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        server_in.write(client_out.read())
        client_in.write(server_out.read())
        if all(done.values()):
            break
    assert done == {"client": True, "server": True}
    client_sees, server_sees = (
        server.getpeercert(binary_form=True),
        client.getpeercert(binary_form=True),
    )
    assert client_sees is not None
    assert server_sees is not None
    return client_sees, server_sees, str(client.version())


def test_mutual_tls_handshake_with_issued_leaves(pki: Pki, algorithm: str, tmp_path: Path) -> None:
    root = pki.root(algorithm).certificate
    server_key, client_key = pki.key(algorithm, "tls server"), pki.key(algorithm, "tls client")
    server_issued = issuing.issue(
        pki.request(algorithm, public_key=server_key.public_key(), dns_names=("api.payments.svc",)),
        pki.intermediate(algorithm),
        NOW,
    )
    client_issued = issuing.issue(
        pki.request(algorithm, public_key=client_key.public_key(), claims=CLAIMS),
        pki.intermediate(algorithm),
        NOW,
    )
    server_context = _context(
        ssl.Purpose.CLIENT_AUTH,
        server_issued,
        server_key,
        trusted=root,
        tmp_path=tmp_path,
        name="server",
    )
    client_context = _context(
        ssl.Purpose.SERVER_AUTH,
        client_issued,
        client_key,
        trusted=root,
        tmp_path=tmp_path,
        name="client",
    )
    client_der, server_der, version = _handshake(client_context, server_context)
    client_view = decode.describe(x509.load_der_x509_certificate(client_der))
    server_view = decode.describe(x509.load_der_x509_certificate(server_der))
    assert (client_view.identity, client_view.claims) == (str(IDENTITY), CLAIMS)
    assert (server_view.identity, server_view.dns_names) == (str(IDENTITY), ("api.payments.svc",))
    assert version == "TLSv1.3"


def test_a_server_refuses_a_client_from_another_root(pki: Pki, tmp_path: Path) -> None:
    algorithm = "ECDSA P-256"
    server_key, client_key = pki.key(algorithm, "tls server"), pki.key(algorithm, "tls client")
    server_issued = issuing.issue(
        pki.request(algorithm, public_key=server_key.public_key()), pki.root(algorithm), NOW
    )
    stranger = pki.root(algorithm, "stranger")
    client_issued = issuing.issue(
        pki.request(algorithm, public_key=client_key.public_key()), stranger, NOW
    )
    server_context = _context(
        ssl.Purpose.CLIENT_AUTH,
        server_issued,
        server_key,
        trusted=pki.root(algorithm).certificate,
        tmp_path=tmp_path,
        name="server",
    )
    client_context = _context(
        ssl.Purpose.SERVER_AUTH,
        client_issued,
        client_key,
        trusted=pki.root(algorithm).certificate,
        tmp_path=tmp_path,
        name="client",
    )
    with pytest.raises(ssl.SSLError, match="certificate verify failed"):
        _handshake(client_context, server_context)


def test_issued_certificates_are_valid_for_the_real_clock() -> None:
    # The peer tests rely on NOW being the real time: openssl and ssl read the clock.
    assert abs(datetime.datetime.now(datetime.UTC) - NOW) < datetime.timedelta(minutes=30)
