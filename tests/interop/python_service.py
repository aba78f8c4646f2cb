"""The Python side of every handshake: a service built on `certmint.workload`.

`PythonServer` serves one connection on 127.0.0.1 port 0 with
``Credentials.server_context()`` and answers the client's first line with what it read
from the verified peer (SPIFFE ID and claims). `python_client` connects with
``Credentials.client_context(server_identity=...)``, sends a line and returns the reply.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from pathlib import Path
from typing import Any

from certmint import workload

TIMEOUT = 30.0


def describe(credentials: workload.Credentials, connection: ssl.SSLSocket) -> dict[str, Any]:
    """What the service knows about its verified peer."""
    peer = credentials.peer(connection)
    return {"identity": peer.identity, "claims": peer.claims, "tls_version": connection.version()}


def close_gracefully(connection: ssl.SSLSocket) -> None:
    """Send TLS close_notify once the exchange is complete, as a well-behaved peer does.

    Some peers (OpenSSL's s_client) treat a close without it as an error. Whether the
    other side answers with its own close_notify does not matter any more: the exchange
    the test checks is complete, so a failure here is ignored.
    """
    try:
        connection.unwrap()
    except OSError:
        return


class PythonServer:
    """Accepts one mTLS client in a thread; `seen` or `error` tells what happened."""

    def __init__(self, credentials_dir: Path) -> None:
        self.credentials = workload.load(credentials_dir)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(TIMEOUT)
        self.port: int = self._listener.getsockname()[1]
        self.seen: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        context = self.credentials.server_context()
        try:
            raw, _ = self._listener.accept()
            raw.settimeout(TIMEOUT)
            with context.wrap_socket(raw, server_side=True) as connection:
                seen = describe(self.credentials, connection)
                connection.makefile("rb").readline()
                connection.sendall(json.dumps(seen).encode() + b"\n")
                self.seen = seen
                close_gracefully(connection)
        except (OSError, workload.WorkloadError) as err:
            self.error = err
        finally:
            self._listener.close()

    def result(self) -> dict[str, Any]:
        """What the server read from its client, once it has replied.

        Raises:
            AssertionError: The handshake or the exchange failed, or never finished.
        """
        self._thread.join(timeout=TIMEOUT + 5)
        assert not self._thread.is_alive(), "the Python server is still waiting"
        assert self.seen is not None, f"the Python server failed: {self.error!r}"
        return self.seen

    def close(self) -> None:
        """Stop listening (a test that failed before the client connected)."""
        self._listener.close()
        self._thread.join(timeout=TIMEOUT + 5)


def python_client(
    credentials_dir: Path, port: int, server_identity: str, line: bytes = b"hello\n"
) -> dict[str, Any]:
    """Connect to a peer on 127.0.0.1:port, check its SPIFFE ID, send a line, read the reply.

    Returns:
        ``{"peer": <what the client read from the server>, "reply": <the reply line>}``.

    Raises:
        OSError: The handshake or the exchange failed (ssl.SSLError is an OSError).
    """
    credentials = workload.load(credentials_dir)
    context = credentials.client_context(server_identity=server_identity)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as connection,
    ):
        seen = describe(credentials, connection)
        connection.sendall(line)
        reply = connection.makefile("rb").readline()
        if reply:
            close_gracefully(connection)
    if not reply:
        raise ConnectionError("the peer closed the connection without a reply")
    return {"peer": seen, "reply": reply.decode()}
