"""Two workload processes for the CA-rotation test, using ``certmint.workload``.

``python rotation_peers.py serve DIR LOG`` prints ``{"port": N}`` and answers every mTLS
connection with one JSON line about the client, also appended to LOG; failed handshakes
are printed as ``{"handshake_error": ...}``.

``python rotation_peers.py call DIR PORT SERVER_ID STOP_FILE`` connects again and again
(a new connection each time, as a service calling a peer would) until STOP_FILE exists,
then prints ``{"calls": N, "failures": M, "errors": [...], "server_serials": [...],
"client_serials": [...]}``.
"""

from __future__ import annotations

import datetime
import json
import pathlib
import socket
import ssl
import sys
import time

from certmint import workload


def serve(directory: str, log: str) -> None:
    credentials = workload.load(directory, check_interval=datetime.timedelta(0))
    context = credentials.server_context()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        print(json.dumps({"port": listener.getsockname()[1]}), flush=True)
        while True:
            connection, _ = listener.accept()
            connection.settimeout(10)
            try:
                with context.wrap_socket(connection, server_side=True) as tls:
                    peer = credentials.peer(tls)
                    report = {
                        "client": peer.identity,
                        "client_serial": peer.serial_number,
                        "server_serial": credentials.certificate.serial_number,
                    }
                    line = json.dumps(report)
                    tls.sendall(line.encode() + b"\n")
                    with pathlib.Path(log).open("a") as served:
                        served.write(line + "\n")
            except (ssl.SSLError, OSError, workload.PeerError) as err:
                print(json.dumps({"handshake_error": str(err)}), flush=True)
                connection.close()


def call(directory: str, port: int, server_id: str, stop_file: str) -> None:
    credentials = workload.load(directory, check_interval=datetime.timedelta(0))
    context = credentials.client_context(server_identity=server_id)
    calls = failures = 0
    errors: list[str] = []
    server_serials: set[int] = set()
    client_serials: set[int] = set()
    while not pathlib.Path(stop_file).exists():
        calls += 1
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
                context.wrap_socket(raw, server_hostname="localhost") as tls,
            ):
                answer = json.loads(tls.makefile().readline())
                server_serials.add(answer["server_serial"])
                client_serials.add(answer["client_serial"])
        except (ssl.SSLError, OSError, ValueError, KeyError) as err:
            failures += 1
            errors.append(f"{time.time():.1f}: {err}")
        time.sleep(0.05)  # pacing: about 20 calls a second, not synchronization
    print(
        json.dumps(
            {
                "calls": calls,
                "failures": failures,
                "errors": errors[:20],
                "server_serials": sorted(server_serials),
                "client_serials": sorted(client_serials),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3])
    else:
        call(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
