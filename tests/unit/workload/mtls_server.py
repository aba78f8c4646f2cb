"""A stand-alone mTLS server for the workload tests, run as a separate process.

Usage: ``python mtls_server.py CREDENTIALS_DIR POLICY_JSON``, where POLICY_JSON is a
list of ``{"identity": ..., "claims": {...}, "name": ...}`` rules. It prints
``{"port": N}`` once listening on 127.0.0.1, then for each connection that completes
the handshake writes one JSON line to the client: what it saw of the client, the
authorization decision, the serial of its own certificate and the reload errors it
reported so far. Failed handshakes are printed to stdout as ``{"handshake_error": ...}``.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import socket
import ssl
import sys

from certmint import workload


def main() -> None:
    directory, policy_json = sys.argv[1], sys.argv[2]
    reload_errors: list[str] = []
    credentials = workload.load(
        directory,
        check_interval=datetime.timedelta(0),
        on_reload_error=lambda err: reload_errors.append(err.reason),
    )
    policy = workload.Authorizer(*(workload.allow(**rule) for rule in json.loads(policy_json)))
    context = credentials.server_context()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        print(json.dumps({"port": listener.getsockname()[1]}), flush=True)
        while True:
            connection, _ = listener.accept()
            connection.settimeout(10)
            try:
                tls = context.wrap_socket(connection, server_side=True)
            except ssl.SSLError as err:
                failure = {"reason": err.reason, "verify": getattr(err, "verify_message", None)}
                print(json.dumps({"handshake_error": failure}), flush=True)
                connection.close()
                continue
            except OSError as err:
                print(json.dumps({"handshake_error": {"reason": str(err)}}), flush=True)
                connection.close()
                continue
            with tls:
                report: dict[str, object] = {
                    "server_serial": credentials.certificate.serial_number,
                    "reload_errors": reload_errors,
                }
                try:
                    peer = credentials.peer(tls)
                except workload.PeerError as err:
                    report["peer_error"] = str(err)
                else:
                    report["identity"] = peer.identity
                    report["claims"] = peer.claims
                    report["client_serial"] = peer.serial_number
                    report["decision"] = dataclasses.asdict(policy.authorize(peer))
                tls.sendall(json.dumps(report).encode() + b"\n")


if __name__ == "__main__":
    main()
