"""Peers in other languages accept what certmint issues: the handshake matrix.

For each key type (see conftest.KEY_TYPES) and each peer, a mutual-TLS handshake with a
Python service built on `certmint.workload`, in both directions where the peer has both
sides. Both ends verify the other's chain against the Secret's ``ca.crt`` and read the
other's SPIFFE ID and claims; the test compares what each end saw with what was issued.
docs/interop.md shows the matrix.
"""

from __future__ import annotations

import json
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.interop import builds, conftest, processes
from tests.interop.python_service import PythonServer, python_client

KEY_TYPES = list(conftest.KEY_TYPES)


@pytest.fixture(scope="session")
def go_peer() -> Path:
    return builds.go_peer("go")


@pytest.fixture(scope="session")
def spiffe_peer() -> Path:
    return builds.go_peer("gospiffe")


@pytest.fixture(scope="session")
def java_peer() -> list[str]:
    return builds.java_peer()


@pytest.fixture(scope="session")
def node_peer() -> list[str]:
    return builds.node_peer()


@pytest.fixture(scope="session")
def rustls_peer() -> Path:
    return builds.rustls_peer()


@pytest.fixture(scope="session")
def openssl() -> str:
    return builds.require_tool("openssl")


def seen_by_python(workload: conftest.Workload) -> dict[str, Any]:
    """What the Python service must read from a peer presenting ``workload``'s certificate."""
    return {"identity": workload.identity, "claims": workload.claims, "tls_version": "TLSv1.3"}


def assert_peer_saw(seen: dict[str, Any], workload: conftest.Workload) -> None:
    """The other language read ``workload``'s SPIFFE ID and claims from the verified peer."""
    assert (seen["identity"], seen["claims"]) == (workload.identity, workload.claims)


def serve_python_to(
    issued: conftest.Issued, key_type: str, client_argv: list[str | Path]
) -> dict[str, Any]:
    """Run the Python server for ``key_type``; the peer's client (argv + port) connects."""
    server, client = issued.servers[key_type], issued.clients[key_type]
    python = PythonServer(server.directory)
    try:
        output = processes.run_client([*client_argv, str(python.port)])
        assert python.result() == seen_by_python(client)
    finally:
        python.close()
    return output


def connect_python_to(
    issued: conftest.Issued, key_type: str, server: processes.ServerProcess
) -> dict[str, Any]:
    """The Python client connects to a peer's server for ``key_type``; the server's result."""
    expected_server, client = issued.servers[key_type], issued.clients[key_type]
    answer = python_client(client.directory, server.port, expected_server.identity)
    assert answer["peer"] == seen_by_python(expected_server)
    result = server.result()
    assert json.loads(answer["reply"]) == result["peer"]
    return result


def test_go_parses_a_certificate_the_operator_issued_with_claims(
    issued: conftest.Issued,
) -> None:
    server = issued.servers["ECDSA P-256"]
    output = processes.run_client([builds.go_peer("go"), "parse", server.cert])
    assert output == {"identity": server.identity, "claims": server.claims}


# Go, standard library only ---------------------------------------------------------------
@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_go_crypto_tls_server_accepts_a_python_client(
    issued: conftest.Issued, go_peer: Path, key_type: str
) -> None:
    server = issued.servers[key_type]
    with processes.ServerProcess([go_peer, "server", server.cert, server.key, server.ca]) as go:
        result = connect_python_to(issued, key_type, go)
    assert_peer_saw(result["peer"], issued.clients[key_type])


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_go_crypto_tls_client_connects_to_a_python_server(
    issued: conftest.Issued, go_peer: Path, key_type: str
) -> None:
    client = issued.clients[key_type]
    output = serve_python_to(
        issued, key_type, [go_peer, "client", client.cert, client.key, client.ca]
    )
    assert_peer_saw(output["peer"], issued.servers[key_type])
    assert output["reply"] == seen_by_python(client)


# go-spiffe v2 --------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["server", "client"])
@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_go_spiffe_parses_the_secret_as_an_x509_svid(
    issued: conftest.Issued, spiffe_peer: Path, key_type: str, role: str
) -> None:
    workload = (issued.servers if role == "server" else issued.clients)[key_type]
    output = processes.run_client([spiffe_peer, "parse", workload.cert, workload.key])
    assert output == {"identity": workload.identity, "chain_length": 1}


def spiffe_server(
    issued: conftest.Issued, spiffe_peer: Path, key_type: str, allowed: str
) -> processes.ServerProcess:
    server = issued.servers[key_type]
    return processes.ServerProcess(
        [
            spiffe_peer,
            "server",
            server.cert,
            server.key,
            issued.bundle,
            issued.trust_domain,
            allowed,
        ]
    )


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_go_spiffe_mtls_server_authorizes_the_right_id(
    issued: conftest.Issued, spiffe_peer: Path, key_type: str
) -> None:
    client = issued.clients[key_type]
    with spiffe_server(issued, spiffe_peer, key_type, client.identity) as go:
        answer = python_client(client.directory, go.port, issued.servers[key_type].identity)
        result = go.result()
    assert result == {"peer": {"identity": client.identity}}
    assert answer["peer"] == seen_by_python(issued.servers[key_type])
    assert json.loads(answer["reply"]) == {"identity": client.identity}


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_go_spiffe_mtls_server_refuses_a_wrong_id(
    issued: conftest.Issued, spiffe_peer: Path, key_type: str
) -> None:
    client = issued.clients[key_type]
    wrong = client.identity.replace("/sa/client", "/sa/someone-else")
    with spiffe_server(issued, spiffe_peer, key_type, wrong) as go:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            python_client(client.directory, go.port, issued.servers[key_type].identity)
        code, result = go.outcome()
    assert code == 1
    assert result["error"] == (f'handshake: unexpected ID "{client.identity}"')


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_go_spiffe_mtls_client_authorizes_the_python_server(
    issued: conftest.Issued, spiffe_peer: Path, key_type: str
) -> None:
    client, server = issued.clients[key_type], issued.servers[key_type]
    argv: list[str | Path] = [
        spiffe_peer, "client", client.cert, client.key, issued.bundle, issued.trust_domain,
        server.identity,
    ]  # fmt: skip
    output = serve_python_to(issued, key_type, argv)
    assert output["peer"] == {"identity": server.identity}
    assert output["reply"] == seen_by_python(client)


# Java 17 JSSE ---------------------------------------------------------------------------------
@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_keytool_opens_the_pkcs12_keystore_with_its_password(
    issued: conftest.Issued, key_type: str
) -> None:
    keytool = builds.require_tool("keytool")
    workload = issued.servers[key_type]
    listing = subprocess.run(
        [keytool, "-list", "-storetype", "PKCS12", "-keystore", str(workload.keystore),
         "-storepass", workload.password.read_text()],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert listing.returncode == 0, listing.stdout + listing.stderr
    assert "Your keystore contains 1 entry" in listing.stdout
    assert "PrivateKeyEntry" in listing.stdout


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_java_jsse_server_accepts_a_python_client(
    issued: conftest.Issued, java_peer: list[str], key_type: str
) -> None:
    server = issued.servers[key_type]
    argv = [*java_peer, "server", server.keystore, server.password, server.ca]
    with processes.ServerProcess(argv) as java:
        result = connect_python_to(issued, key_type, java)
    assert_peer_saw(result["peer"], issued.clients[key_type])


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_java_jsse_client_connects_to_a_python_server(
    issued: conftest.Issued, java_peer: list[str], key_type: str
) -> None:
    client = issued.clients[key_type]
    output = serve_python_to(
        issued, key_type, [*java_peer, "client", client.keystore, client.password, client.ca]
    )
    assert_peer_saw(output["peer"], issued.servers[key_type])
    assert output["reply"] == seen_by_python(client)


# Node 20 tls ----------------------------------------------------------------------------------
@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_node_tls_server_accepts_a_python_client(
    issued: conftest.Issued, node_peer: list[str], key_type: str
) -> None:
    server = issued.servers[key_type]
    argv = [*node_peer, "server", server.cert, server.key, server.ca]
    with processes.ServerProcess(argv) as node:
        result = connect_python_to(issued, key_type, node)
    client = issued.clients[key_type]
    assert_peer_saw(result["peer"], client)
    assert result["peer"]["peer_certificate_uri"] == f"URI:{client.identity}"


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_node_tls_client_connects_to_a_python_server(
    issued: conftest.Issued, node_peer: list[str], key_type: str
) -> None:
    client, server = issued.clients[key_type], issued.servers[key_type]
    output = serve_python_to(
        issued, key_type, [*node_peer, "client", client.cert, client.key, client.ca]
    )
    assert_peer_saw(output["peer"], server)
    assert output["peer"]["peer_certificate_uri"] == f"URI:{server.identity}, IP Address:127.0.0.1"
    assert output["reply"] == seen_by_python(client)


# rustls ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_rustls_client_connects_to_a_python_server(
    issued: conftest.Issued, rustls_peer: Path, key_type: str
) -> None:
    client = issued.clients[key_type]
    output = serve_python_to(issued, key_type, [rustls_peer, client.cert, client.key, client.ca])
    assert output == {"tls_version": "TLS 1.3", "reply": seen_by_python(client)}


# OpenSSL s_server / s_client ------------------------------------------------------------------
@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_openssl_s_server_accepts_a_python_client(
    issued: conftest.Issued, openssl: str, key_type: str
) -> None:
    server, client = issued.servers[key_type], issued.clients[key_type]
    argv = [
        openssl, "s_server", "-accept", "127.0.0.1:0", "-naccept", "1", "-rev",
        "-cert", server.cert, "-key", server.key, "-CAfile", server.ca,
        "-Verify", "1", "-verify_return_error",
    ]  # fmt: skip
    with processes.ServerProcess(argv, port_pattern=r"^ACCEPT 127\.0\.0\.1:(\d+)") as s_server:
        answer = python_client(client.directory, s_server.port, server.identity)
        assert s_server.process.wait(timeout=processes.DEADLINE) == 0
    assert answer["peer"] == seen_by_python(server)
    assert answer["reply"] == "olleh\n"  # -rev: the line, reversed, after both sides verified


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_openssl_s_client_connects_to_a_python_server(
    issued: conftest.Issued, openssl: str, key_type: str
) -> None:
    server, client = issued.servers[key_type], issued.clients[key_type]
    python = PythonServer(server.directory)
    try:
        s_client = subprocess.run(
            [openssl, "s_client", "-connect", f"127.0.0.1:{python.port}", "-brief",
             "-cert", str(client.cert), "-key", str(client.key), "-CAfile", str(client.ca),
             "-verify_return_error", "-verify_ip", "127.0.0.1", "-ign_eof"],
            input="hello\n", capture_output=True, text=True, timeout=processes.DEADLINE,
            check=False,
        )  # fmt: skip
        assert python.result() == seen_by_python(client)
    finally:
        python.close()
    assert s_client.returncode == 0, s_client.stdout + s_client.stderr
    assert "Verification: OK" in s_client.stderr
    assert json.loads(s_client.stdout.strip().splitlines()[-1]) == seen_by_python(client)
