"""A small HTTPS client: presents certmint credentials and checks who the server is.

Usage::

    python client.py https://api.payments.svc:8443/hello --credentials ./web-tls
    python client.py https://10.0.0.7:8443/hello --expect spiffe://cluster.local/ns/payments/*

Without ``--expect`` the server's DNS or IP SANs must match the URL's host, as for any
HTTPS client. With ``--expect PATTERN`` the server's SPIFFE ID must match the pattern
instead, checked during the TLS handshake (the chain is verified either way). The
credentials directory defaults to ``$CERTMINT_CREDENTIALS``, then
``/var/run/secrets/certmint``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

import aiohttp

from certmint import workload


async def call(args: argparse.Namespace) -> int:
    credentials = workload.load(args.credentials)
    # Every new connection made with this context uses the newest mounted files.
    # With --expect the server's SPIFFE ID is checked during the handshake.
    context = credentials.client_context(server_identity=args.expect)
    status = 0
    async with aiohttp.ClientSession() as session:
        for attempt in range(args.count):
            if attempt:
                await asyncio.sleep(args.every)
            async with session.get(args.url, ssl=context) as response:
                status = response.status
                body = await response.json() if status == 200 else await response.text()
            sys.stdout.write(json.dumps({"status": status, "body": body}) + "\n")
            sys.stdout.flush()
    return 0 if status == 200 else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument(
        "--credentials",
        default=os.environ.get("CERTMINT_CREDENTIALS", "/var/run/secrets/certmint"),
        help="the mounted certmint Secret (tls.crt, tls.key, ca.crt)",
    )
    parser.add_argument("--expect", metavar="PATTERN", help="the server's SPIFFE ID pattern")
    parser.add_argument("--count", type=int, default=1, help="how many requests")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between requests")
    args = parser.parse_args()
    try:
        raise SystemExit(asyncio.run(call(args)))
    except aiohttp.ClientConnectorCertificateError as err:
        sys.stderr.write(f"refused the server: {err.certificate_error.args[1]}\n")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
