"""Mutual TLS between workloads, with certificates the running operator issued.

One Issuer signs a server certificate (ServiceAccount ``api``) and two client
certificates (``web`` with ``role=reader``, ``batch`` with ``role=writer``); a second
Issuer with its own CA signs a look-alike of ``web``. Their Secrets are written into
directories the way the kubelet does (see kubelet.py). The server is
``examples/workload/server.py`` (aiohttp with the library's middleware, allowing callers
whose ``role`` claim contains ``reader``) in its own process; this process is the client.
"""

from __future__ import annotations

import dataclasses
import datetime
import http.client
import json
import pathlib
import queue
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from certmint import workload
from tests.integration import kubelet
from tests.integration.support import (
    BIN,
    OperatorProcess,
    create,
    get_certificate,
    leaf_of,
    read_secret,
    service_account,
    wait_for_condition,
    wait_until,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
SERVER_SCRIPT = ROOT / "examples" / "workload" / "server.py"
TRUST_DOMAIN = "mesh.test"
ISSUER, STRANGER = "workloads", "stranger"


class ExampleServer:
    """``examples/workload/server.py`` running in its own process, its log collected."""

    def __init__(self, credentials: pathlib.Path, *policy: str) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(SERVER_SCRIPT),
                "--credentials",
                str(credentials),
                "--port",
                "0",
                *policy,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        self._log: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port = int(self.wait_for_line(r"listening on https://127\.0\.0\.1:(\d+)").group(1))

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._lines.put(line)

    def wait_for_line(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """Wait for a log line matching ``pattern``; fail with the log so far on the deadline."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            self._log.append(line)
            if match := re.search(pattern, line):
                return match
        raise AssertionError(f"the server never logged {pattern!r}; log:\n{self.log()}")

    def log(self) -> str:
        """Everything the server logged so far."""
        while not self._lines.empty():
            self._log.append(self._lines.get_nowait())
        return "".join(self._log)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self._reader.join(timeout=10)
        assert self.process.stderr is not None
        self.process.stderr.close()


@dataclasses.dataclass(frozen=True)
class Mesh:
    """The issued certificates, their volumes, and the server using one of them."""

    kube: client.ApiClient
    kubeconfig: pathlib.Path
    namespace: str
    volumes: pathlib.Path
    server: ExampleServer

    def identity(self, service_account_name: str) -> str:
        return f"spiffe://{TRUST_DOMAIN}/ns/{self.namespace}/sa/{service_account_name}"

    def volume(self, name: str) -> pathlib.Path:
        return self.volumes / name

    def credentials(self, name: str) -> workload.Credentials:
        return workload.load(self.volume(name), check_interval=datetime.timedelta(0))

    def client_context(self, name: str) -> ssl.SSLContext:
        # The server's certificate names api.<ns>.svc, not 127.0.0.1: check its SPIFFE ID.
        return self.credentials(name).client_context(server_identity=self.identity("api"))

    def secret(self, certificate: str) -> client.V1Secret:
        """The Certificate's Secret as the API server has it now."""
        secret = read_secret(self.kube, self.namespace, f"{certificate}-tls")
        assert secret is not None, f"the Secret of {certificate} is missing"
        return secret


@dataclasses.dataclass(frozen=True)
class Answer:
    """One ``GET /hello``: what the server answered, and who the client found serving."""

    status: int
    body: Any
    server: workload.Peer


def hello(connection: http.client.HTTPSConnection) -> Answer:
    """Send ``GET /hello`` on a connection (opening it if needed) and read the answer."""
    connection.request("GET", "/hello")
    response = connection.getresponse()
    text = response.read().decode()
    body = json.loads(text) if response.status == 200 else text
    assert isinstance(connection.sock, ssl.SSLSocket)
    # The peer of the socket, as the client's own handshake verified it.
    server = workload.peer(connection.sock, trust_domain=TRUST_DOMAIN)
    return Answer(response.status, body, server)


def connect(mesh: Mesh, context: ssl.SSLContext) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection("127.0.0.1", mesh.server.port, context=context, timeout=10)


def call(mesh: Mesh, context: ssl.SSLContext) -> Answer:
    """One request on a new connection."""
    connection = connect(mesh, context)
    try:
        return hello(connection)
    finally:
        connection.close()


def issuer(kube: client.ApiClient, namespace: str, name: str, claims: list[str]) -> None:
    create(
        kube,
        {
            "kind": "Issuer",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "ca": {"secretName": f"{name}-ca", "generate": {"commonName": f"{name} root"}},
                "trustDomain": TRUST_DOMAIN,
                "policy": {"claims": [{"key": "role", "values": claims}]},
            },
        },
    )


def certificate(
    kube: client.ApiClient,
    namespace: str,
    name: str,
    *,
    issuer_name: str,
    service_account_name: str,
    **spec: Any,
) -> None:
    create(
        kube,
        {
            "kind": "Certificate",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "secretName": f"{name}-tls",
                "issuerRef": {"name": issuer_name},
                "serviceAccountName": service_account_name,
                "duration": "2h",
                **spec,
            },
        },
    )


@pytest.fixture(scope="module")
def mesh(
    kube: client.ApiClient,
    kubeconfig_path: pathlib.Path,
    operator: OperatorProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Mesh]:
    """Issuers, certificates, mounted volumes and the running example server, once."""
    if not operator.running:
        operator.start()
    namespace = f"t-workload-mtls-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(kube)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    try:
        issuer(kube, namespace, ISSUER, ["reader", "writer"])
        issuer(kube, namespace, STRANGER, ["reader"])
        for name in ("api", "web", "batch"):
            service_account(kube, namespace, name)
        certificate(
            kube,
            namespace,
            "api",
            issuer_name=ISSUER,
            service_account_name="api",
            dnsNames=[f"api.{namespace}.svc"],
            claims={"role": ["reader"]},
        )
        certificate(
            kube,
            namespace,
            "web",
            issuer_name=ISSUER,
            service_account_name="web",
            claims={"role": ["reader"]},
        )
        certificate(
            kube,
            namespace,
            "batch",
            issuer_name=ISSUER,
            service_account_name="batch",
            claims={"role": ["writer"]},
        )
        # The same identity and claims as "web", signed by a CA the server does not trust.
        certificate(
            kube,
            namespace,
            "impostor",
            issuer_name=STRANGER,
            service_account_name="web",
            claims={"role": ["reader"]},
        )
        volumes = tmp_path_factory.mktemp("volumes")
        for name in ("api", "web", "batch", "impostor"):
            wait_for_condition(kube, namespace, name)
            secret = read_secret(kube, namespace, f"{name}-tls")
            assert secret is not None
            kubelet.mount(secret, volumes / name)
        server = ExampleServer(volumes / "api", "--allow-claim", "role=reader")
        try:
            yield Mesh(kube, kubeconfig_path, namespace, volumes, server)
        finally:
            server.stop()
    finally:
        core.delete_namespace(namespace)


def test_a_reader_is_served_and_the_server_sees_its_identity_and_claims(mesh: Mesh) -> None:
    answer = call(mesh, mesh.client_context("web"))

    assert (answer.status, answer.body) == (
        200,
        {
            "hello": mesh.identity("web"),
            "claims": {"role": ["reader"]},
            "allowed_by": "role=reader",
        },
    )
    assert (answer.server.identity, answer.server.dns_names, answer.server.serial_number) == (
        mesh.identity("api"),
        (f"api.{mesh.namespace}.svc",),
        leaf_of(mesh.secret("api")).serial_number,
    )


def test_a_caller_whose_claims_miss_the_policy_is_denied_with_the_reason(mesh: Mesh) -> None:
    answer = call(mesh, mesh.client_context("batch"))

    assert (answer.status, answer.body) == (
        403,
        f"forbidden: {mesh.identity('batch')} denied: "
        "rule 'role=reader': claim 'role' has writer, not 'reader'\n",
    )


def test_a_caller_with_a_certificate_from_another_ca_is_refused_in_the_handshake(
    mesh: Mesh, tmp_path: pathlib.Path
) -> None:
    impostor = mesh.credentials("impostor")
    # Everything but the signature matches an allowed caller.
    assert (impostor.identity, workload.peer_from_certificate(impostor.certificate).claims) == (
        mesh.identity("web"),
        {"role": ["reader"]},
    )
    # It trusts the server's CA, so it gets as far as presenting its own certificate.
    files = kubelet.secret_files(mesh.secret("impostor"), ("tls.crt", "tls.key"))
    files |= kubelet.secret_files(mesh.secret("web"), ("ca.crt",))
    kubelet.publish(tmp_path / "impostor", files)
    context = workload.load(tmp_path / "impostor").client_context(
        server_identity=mesh.identity("api")
    )
    # In TLS 1.3 a client finishes its side of the handshake before the server has
    # checked the client's certificate, and an asyncio server (aiohttp) drops the
    # connection without an alert, so the client would only see its request go
    # unanswered. In TLS 1.2 the client needs the server's Finished message, so the
    # refusal shows where it happens: in the handshake.
    context.maximum_version = ssl.TLSVersion.TLSv1_2

    with (
        socket.create_connection(("127.0.0.1", mesh.server.port), timeout=10) as raw,
        pytest.raises(ssl.SSLEOFError) as refused,
    ):
        context.wrap_socket(raw, server_hostname="127.0.0.1")

    assert refused.value.reason == "UNEXPECTED_EOF_WHILE_READING"
    # Why: OpenSSL, given the server's trust bundle, cannot chain the impostor's certificate.
    verified = subprocess.run(
        ["openssl", "verify", "-CAfile", str(mesh.volume("api") / "ca.crt"),
         str(tmp_path / "impostor" / "tls.crt")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert verified.returncode == 2
    assert "error 20 at 0 depth lookup: unable to get local issuer certificate" in (
        verified.stderr.splitlines()
    )


def test_a_renewed_server_certificate_reaches_new_connections_without_a_restart(
    mesh: Mesh,
) -> None:
    context = mesh.client_context("web")
    kept = connect(mesh, context)
    before = hello(kept)
    revision = get_certificate(mesh.kube, mesh.namespace, "api")["status"]["revision"]

    subprocess.run(
        [str(BIN / "certmint"), "--kubeconfig", str(mesh.kubeconfig), "renew",
         f"{mesh.namespace}/api"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    renewed = wait_for_condition(
        mesh.kube,
        mesh.namespace,
        "api",
        where=lambda body: body["status"].get("revision") == revision + 1,
    )
    secret = mesh.secret("api")
    new_serial = int(renewed["status"]["serialNumber"], 16)
    assert leaf_of(secret).serial_number == new_serial
    kubelet.mount(secret, mesh.volume("api"))

    # The server looks at its files when a connection opens, at most once a second.
    def served_renewed() -> Answer | None:
        answer = call(mesh, context)
        return answer if answer.server.serial_number == new_serial else None

    after = wait_until(
        served_renewed,
        timeout=15,
        what="a new connection served with the renewed certificate",
    )
    on_kept = hello(kept)
    kept.close()

    assert before.server.serial_number != new_serial
    assert (after.status, after.body) == (before.status, before.body)
    assert on_kept.server.serial_number == before.server.serial_number
    assert mesh.server.process.poll() is None
    mesh.server.wait_for_line(
        rf"loaded new credentials from {re.escape(str(mesh.volume('api')))}: "
        rf"{re.escape(mesh.identity('api'))} serial {new_serial:x},"
    )
