"""Mutual TLS between two processes with pki-issued certificates, including rotation.

The server is `mtls_server.py` in a subprocess; this process is the client.
"""

from __future__ import annotations

import datetime
import json
import pathlib
import socket
import ssl
from collections.abc import Callable
from typing import Any

import pytest

from certmint import workload
from tests.unit.workload import support
from tests.unit.workload.conftest import ServerProcess

POLICY = [
    {"name": "readers", "claims": {"role": "reader"}},
    {"name": "ops", "identity": "spiffe://cluster.local/ns/ops/*"},
]

Serve = Callable[..., ServerProcess]


def exchange(
    credentials: workload.Credentials, port: int, context: ssl.SSLContext | None = None
) -> tuple[workload.Peer, dict[str, Any]]:
    """One connection: the server as this client sees it, and the server's report."""
    context = context or credentials.client_context()
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        server = credentials.peer(tls)
        received = b""
        while chunk := tls.recv(65536):
            received += chunk
    return server, json.loads(received)


def client(pki: support.Pki, tmp_path: pathlib.Path, leaf: support.Leaf) -> workload.Credentials:
    directory = tmp_path / "client"
    support.publish(directory, leaf.files)
    return workload.load(directory, check_interval=datetime.timedelta(0))


@pytest.fixture
def server_leaf(pki: support.Pki) -> support.Leaf:
    return pki.leaf("payments", "api")


@pytest.fixture
def server(serve: Serve, tmp_path: pathlib.Path, server_leaf: support.Leaf) -> ServerProcess:
    support.publish(tmp_path / "server", server_leaf.files)
    return serve(tmp_path / "server", POLICY)


def test_the_server_sees_the_client_identity_and_claims(
    pki: support.Pki, tmp_path: pathlib.Path, server: ServerProcess, server_leaf: support.Leaf
) -> None:
    leaf = pki.leaf("web", "frontend", claims={"role": ("reader",), "env": ("prod",)})
    credentials = client(pki, tmp_path, leaf)

    seen_server, report = exchange(credentials, server.port)

    assert report == {
        "server_serial": server_leaf.serial,
        "reload_errors": [],
        "identity": "spiffe://cluster.local/ns/web/sa/frontend",
        "claims": {"env": ["prod"], "role": ["reader"]},
        "client_serial": leaf.serial,
        "decision": {
            "allowed": True,
            "reason": "spiffe://cluster.local/ns/web/sa/frontend allowed by rule 'readers'",
            "rule": "readers",
        },
    }
    assert (seen_server.identity, seen_server.serial_number) == (
        "spiffe://cluster.local/ns/payments/sa/api",
        server_leaf.serial,
    )


def test_a_client_whose_claims_miss_the_policy_is_denied_with_the_reason(
    pki: support.Pki, tmp_path: pathlib.Path, server: ServerProcess
) -> None:
    credentials = client(pki, tmp_path, pki.leaf("batch", "report", claims={"role": ("writer",)}))

    _, report = exchange(credentials, server.port)

    assert report["decision"] == {
        "allowed": False,
        "reason": (
            "spiffe://cluster.local/ns/batch/sa/report denied: "
            "rule 'readers': claim 'role' has writer, not 'reader'; "
            "rule 'ops': identity does not match spiffe://cluster.local/ns/ops/*"
        ),
        "rule": None,
    }


def test_a_client_with_a_certificate_from_another_ca_is_refused(
    pki: support.Pki, other_pki: support.Pki, tmp_path: pathlib.Path, server: ServerProcess
) -> None:
    foreign = other_pki.leaf("web", "frontend", claims={"role": ("reader",)})
    # It trusts the right CA, so it can verify the server; its own certificate is foreign.
    leaf = support.Leaf(foreign.certificate, foreign.chain_pem, foreign.key_pem, pki.trust_pem)
    credentials = client(pki, tmp_path, leaf)

    with pytest.raises(ssl.SSLError) as refused:
        exchange(credentials, server.port)

    assert refused.value.reason == "TLSV1_ALERT_UNKNOWN_CA"
    assert server.next_event() == {
        "handshake_error": {
            "reason": "CERTIFICATE_VERIFY_FAILED",
            "verify": "unable to get local issuer certificate",
        }
    }


def test_a_client_without_a_certificate_is_refused(
    pki: support.Pki, tmp_path: pathlib.Path, server: ServerProcess
) -> None:
    context = ssl.create_default_context(cadata=pki.trust_pem.decode())

    with (
        pytest.raises(ssl.SSLError) as refused,
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.recv(1)

    assert refused.value.reason == "TLSV13_ALERT_CERTIFICATE_REQUIRED"
    assert server.next_event() == {
        "handshake_error": {"reason": "PEER_DID_NOT_RETURN_A_CERTIFICATE", "verify": None}
    }


def test_the_running_server_uses_rotated_files_for_new_connections(
    pki: support.Pki, tmp_path: pathlib.Path, server: ServerProcess, server_leaf: support.Leaf
) -> None:
    credentials = client(pki, tmp_path, pki.leaf("web", "frontend", claims={"role": ("reader",)}))
    before, _ = exchange(credentials, server.port)
    renewed = pki.leaf("payments", "api")

    support.publish(tmp_path / "server", renewed.files)
    after, report = exchange(credentials, server.port)

    assert (before.serial_number, after.serial_number) == (server_leaf.serial, renewed.serial)
    assert (report["server_serial"], report["reload_errors"]) == (renewed.serial, [])


def test_a_torn_update_is_not_loaded_and_the_old_pair_keeps_serving(
    pki: support.Pki, tmp_path: pathlib.Path, server: ServerProcess, server_leaf: support.Leaf
) -> None:
    credentials = client(pki, tmp_path, pki.leaf("web", "frontend", claims={"role": ("reader",)}))
    renewed = pki.leaf("payments", "api")
    torn = {**renewed.files, "tls.key": server_leaf.key_pem}

    support.publish(tmp_path / "server", torn)
    during, report = exchange(credentials, server.port)
    support.publish(tmp_path / "server", renewed.files)
    healed, _ = exchange(credentials, server.port)

    assert (during.serial_number, report["reload_errors"]) == (server_leaf.serial, ["KeyMismatch"])
    assert healed.serial_number == renewed.serial


def test_the_client_presents_rotated_credentials_on_new_connections(
    pki: support.Pki, tmp_path: pathlib.Path, server: ServerProcess
) -> None:
    first = pki.leaf("web", "frontend", claims={"role": ("reader",)})
    credentials = client(pki, tmp_path, first)
    context = credentials.client_context()  # one context for the life of the client
    _, before = exchange(credentials, server.port, context)
    renewed = pki.leaf("web", "frontend", claims={"role": ("reader", "writer")})

    support.publish(tmp_path / "client", renewed.files)
    _, after = exchange(credentials, server.port, context)

    assert (before["client_serial"], before["claims"]) == (first.serial, {"role": ["reader"]})
    assert (after["client_serial"], after["claims"]) == (
        renewed.serial,
        {"role": ["reader", "writer"]},
    )
