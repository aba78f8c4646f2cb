"""What the server and client contexts verify, and how they follow rotation."""

from __future__ import annotations

import datetime
import pathlib
import ssl

import pytest

from certmint import workload
from tests.unit.workload import support

ALWAYS = datetime.timedelta(0)


def credentials_for(directory: pathlib.Path, leaf: support.Leaf) -> workload.Credentials:
    support.publish(directory, leaf.files)
    return workload.load(directory, check_interval=ALWAYS)


@pytest.fixture
def server(pki: support.Pki, tmp_path: pathlib.Path) -> workload.Credentials:
    return credentials_for(tmp_path / "server", pki.leaf("payments", "api"))


@pytest.fixture
def client(pki: support.Pki, tmp_path: pathlib.Path) -> workload.Credentials:
    return credentials_for(tmp_path / "client", pki.leaf("web", "frontend"))


def test_the_server_context_requires_tls_1_2_and_client_certificates(
    server: workload.Credentials,
) -> None:
    context = server.server_context()

    assert (context.verify_mode, context.minimum_version) == (
        ssl.CERT_REQUIRED,
        ssl.TLSVersion.TLSv1_2,
    )


@pytest.mark.parametrize(
    ("hostname", "check", "error"),
    [
        pytest.param("localhost", True, None, id="accept a server whose DNS SAN matches"),
        pytest.param("127.0.0.1", True, None, id="accept a server whose IP SAN matches"),
        pytest.param(
            "api.other.svc",
            True,
            "Hostname mismatch, certificate is not valid for 'api.other.svc'.",
            id="refuse a server whose SANs do not match, by default",
        ),
        pytest.param(
            "api.other.svc",
            False,
            None,
            id="skip the name check when asked; the chain still counts",
        ),
    ],
)
def test_the_client_checks_the_server_hostname_unless_told_not_to(
    server: workload.Credentials,
    client: workload.Credentials,
    hostname: str,
    check: bool,
    error: str | None,
) -> None:
    result = support.handshake(
        server.server_context(),
        client.client_context(server_hostname_check=check),
        server_hostname=hostname,
        on_client=lambda tls: client.peer(tls).identity,
    )

    if error is None:
        assert result.client_saw == "spiffe://cluster.local/ns/payments/sa/api"
    else:
        assert isinstance(result.client_error, ssl.SSLCertVerificationError)
        assert result.client_error.verify_message == error


def test_a_client_without_the_name_check_still_refuses_a_server_from_another_ca(
    other_pki: support.Pki, tmp_path: pathlib.Path, client: workload.Credentials
) -> None:
    impostor = credentials_for(tmp_path / "impostor", other_pki.leaf("payments", "api"))

    result = support.handshake(
        impostor.server_context(), client.client_context(server_hostname_check=False)
    )

    assert isinstance(result.client_error, ssl.SSLCertVerificationError)
    # OpenSSL completes the impostor's chain with its own root from ca.crt.
    assert result.client_error.verify_message == "self-signed certificate in certificate chain"


def test_peer_refuses_a_connection_that_did_not_verify_the_peer(
    server: workload.Credentials, client: workload.Credentials
) -> None:
    unverifying = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    unverifying.check_hostname = False
    unverifying.verify_mode = ssl.CERT_NONE
    unverifying.load_cert_chain(*_files(client))

    def identify(tls: ssl.SSLSocket) -> object:
        try:
            return workload.peer(tls)
        except workload.PeerError as err:
            return (err.reason, err.message)

    result = support.handshake(server.server_context(), unverifying, on_client=identify)

    assert result.client_saw == (
        "NotVerified",
        "the connection's TLS context does not verify peer certificates",
    )


def _files(credentials: workload.Credentials) -> tuple[pathlib.Path, pathlib.Path]:
    return credentials.directory / "tls.crt", credentials.directory / "tls.key"


def test_settings_a_framework_applies_carry_over_to_rotated_credentials(
    pki: support.Pki, server: workload.Credentials, client: workload.Credentials
) -> None:
    server_context = server.server_context()
    server_context.set_alpn_protocols(["h2", "http/1.1"])
    client_context = client.client_context()
    client_context.set_alpn_protocols(["h2"])
    renewed = pki.leaf("payments", "api")

    support.publish(server.directory, renewed.files)
    result = support.handshake(
        server_context,
        client_context,
        on_client=lambda tls: (tls.selected_alpn_protocol(), client.peer(tls).serial_number),
    )

    assert result.client_saw == ("h2", renewed.serial)


def test_a_server_stops_trusting_a_ca_removed_from_ca_crt(
    pki: support.Pki, other_pki: support.Pki, tmp_path: pathlib.Path
) -> None:
    # The server moves from trusting the old CA to trusting only the new one.
    leaf = pki.leaf("payments", "api")
    server = credentials_for(tmp_path / "server", leaf)
    old_ca_client = credentials_for(tmp_path / "old", pki.leaf("web", "frontend"))
    new_leaf = other_pki.leaf("web", "frontend")
    new_ca_client = credentials_for(
        tmp_path / "new",
        support.Leaf(new_leaf.certificate, new_leaf.chain_pem, new_leaf.key_pem, pki.trust_pem),
    )
    context = server.server_context()
    before = [
        support.handshake(context, c.client_context()).server_error
        for c in (old_ca_client, new_ca_client)
    ]

    support.publish(server.directory, {**leaf.files, "ca.crt": other_pki.trust_pem})
    after = [
        support.handshake(context, c.client_context()).server_error
        for c in (old_ca_client, new_ca_client)
    ]

    assert [error is None for error in before] == [True, False]
    assert [error is None for error in after] == [False, True]


@pytest.mark.parametrize(
    ("expected", "error"),
    [
        pytest.param(
            "spiffe://cluster.local/ns/payments/sa/api",
            None,
            id="accept a server with the expected SPIFFE ID, whatever host name was used",
        ),
        pytest.param(
            "spiffe://cluster.local/ns/payments/*",
            None,
            id="accept a server whose SPIFFE ID matches the pattern",
        ),
        pytest.param(
            "spiffe://cluster.local/ns/billing/*",
            "the server is spiffe://cluster.local/ns/payments/sa/api, "
            "not spiffe://cluster.local/ns/billing/*",
            id="refuse a server with another SPIFFE ID during the handshake",
        ),
    ],
)
def test_the_client_checks_the_server_spiffe_id_when_given_one(
    server: workload.Credentials, client: workload.Credentials, expected: str, error: str | None
) -> None:
    result = support.handshake(
        server.server_context(),
        client.client_context(server_identity=expected),
        server_hostname="api.other.svc",
        on_client=lambda tls: client.peer(tls).identity,
    )

    if error is None:
        assert (result.client_error, result.client_saw) == (
            None,
            "spiffe://cluster.local/ns/payments/sa/api",
        )
    else:
        assert isinstance(result.client_error, ssl.SSLCertVerificationError)
        assert (result.client_error.verify_message, result.client_saw) == (error, None)


def test_a_server_identity_check_can_be_combined_with_the_hostname_check(
    server: workload.Credentials, client: workload.Credentials
) -> None:
    context = client.client_context(
        server_identity="spiffe://cluster.local/ns/payments/*", server_hostname_check=True
    )

    result = support.handshake(server.server_context(), context, server_hostname="api.other.svc")

    assert isinstance(result.client_error, ssl.SSLCertVerificationError)
    assert result.client_error.verify_message == (
        "Hostname mismatch, certificate is not valid for 'api.other.svc'."
    )


def test_the_server_refuses_a_client_certificate_not_meant_for_clients(
    pki: support.Pki, tmp_path: pathlib.Path, server: workload.Credentials
) -> None:
    server_only = pki.leaf("web", "frontend", usages=("digital signature", "server auth"))
    client = credentials_for(tmp_path / "server-only", server_only)

    result = support.handshake(server.server_context(), client.client_context())

    assert isinstance(result.server_error, ssl.SSLCertVerificationError)
    assert result.server_error.verify_message == "unsuitable certificate purpose"
