"""Test support: certificates from certmint.pki, and Secret volumes written the kubelet's way."""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import pathlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certmint.pki import ca, issuing, keys, spiffe

TRUST_DOMAIN = "cluster.local"
NOW = datetime.datetime.now(datetime.UTC)


@dataclasses.dataclass(frozen=True)
class Leaf:
    """One issued leaf: the three files a certmint Secret holds."""

    certificate: x509.Certificate
    chain_pem: bytes
    key_pem: bytes = dataclasses.field(repr=False)
    trust_pem: bytes

    @property
    def files(self) -> dict[str, bytes]:
        return {"tls.crt": self.chain_pem, "tls.key": self.key_pem, "ca.crt": self.trust_pem}

    @property
    def serial(self) -> int:
        return self.certificate.serial_number


class Pki:
    """A root CA that issues workload leaves the way the operator does."""

    def __init__(self, name: str = "workloads-root", trust_domain: str = TRUST_DOMAIN) -> None:
        self.trust_domain = trust_domain
        self.authority = ca.generate_root_ca(name, datetime.timedelta(days=1), keys.KeySpec(), NOW)
        self.trust_pem = self.authority.certificate.public_bytes(serialization.Encoding.PEM)

    def leaf(
        self,
        namespace: str = "default",
        service_account: str = "api",
        *,
        claims: Mapping[str, tuple[str, ...]] | None = None,
        dns_names: tuple[str, ...] = ("localhost",),
        loopback_ip: bool = True,
        key_spec: keys.KeySpec | None = None,
        trust_domain: str | None = None,
        usages: tuple[str, ...] = issuing.DEFAULT_USAGES,
    ) -> Leaf:
        key = keys.generate_private_key(key_spec or keys.KeySpec())
        request = issuing.LeafRequest(
            key.public_key(),
            datetime.timedelta(hours=1),
            spiffe_id=spiffe.workload_id(
                trust_domain or self.trust_domain, namespace, service_account
            ),
            dns_names=dns_names,
            ip_addresses=(ipaddress.ip_address("127.0.0.1"),) if loopback_ip else (),
            claims=dict(claims or {}),
            usages=usages,
        )
        issued = issuing.issue(request, self.authority, NOW)
        return Leaf(
            issued.certificate, issued.chain_pem, keys.private_key_to_pem(key), self.trust_pem
        )


def publish(directory: pathlib.Path, files: Mapping[str, bytes]) -> pathlib.Path:
    """Write a Secret volume update the way the kubelet's atomic writer does.

    The files go into a fresh timestamped directory; ``..data`` is then swapped to it
    with one rename; top-level names are symlinks through ``..data``; the previous
    timestamped directory is removed.

    Returns:
        The new timestamped directory.
    """
    directory.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y_%m_%d_%H_%M_%S", time.gmtime())
    generation = directory / f"..{stamp}.{time.monotonic_ns()}"
    generation.mkdir()
    for name, content in files.items():
        (generation / name).write_bytes(content)
    data = directory / "..data"
    previous = data.readlink() if data.is_symlink() else None
    staging = directory / "..data_tmp"
    staging.symlink_to(generation.name)
    staging.rename(data)
    for name in files:
        link = directory / name
        if not link.is_symlink():
            link.symlink_to(pathlib.Path("..data") / name)
    if previous is not None:
        old = directory / previous
        for child in old.iterdir():
            child.unlink()
        old.rmdir()
    return generation


def write_plain(directory: pathlib.Path, files: Mapping[str, bytes]) -> None:
    """Write the files in place, as a person copying them by hand would."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (directory / name).write_bytes(content)


@dataclasses.dataclass
class Handshake:
    """What each side of one loopback TLS connection saw."""

    server_error: BaseException | None = None
    client_error: BaseException | None = None
    server_saw: object = None
    client_saw: object = None


def handshake(
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    *,
    server_hostname: str = "127.0.0.1",
    on_server: Callable[[ssl.SSLSocket], object] = lambda tls: tls.getpeercert(True),
    on_client: Callable[[ssl.SSLSocket], object] = lambda tls: tls.getpeercert(True),
) -> Handshake:
    """Run one TLS connection over 127.0.0.1, the server side on a thread.

    Each side calls its ``on_*`` function after the handshake; the client then reads
    until the server closes, so a server-side refusal reaches the client as an error.
    """
    result = Handshake()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(10)

        def serve() -> None:
            connection, _ = listener.accept()
            connection.settimeout(10)
            try:
                with server_context.wrap_socket(connection, server_side=True) as tls:
                    result.server_saw = on_server(tls)
                    tls.sendall(b"done")
            except (ssl.SSLError, OSError) as err:
                result.server_error = err
            finally:
                connection.close()

        thread = threading.Thread(target=serve)
        thread.start()
        try:
            with (
                socket.create_connection(listener.getsockname(), timeout=10) as raw,
                client_context.wrap_socket(raw, server_hostname=server_hostname) as tls,
            ):
                result.client_saw = on_client(tls)
                while tls.recv(1024):
                    pass
        except (ssl.SSLError, OSError) as err:
            result.client_error = err
        thread.join(timeout=10)
    return result
