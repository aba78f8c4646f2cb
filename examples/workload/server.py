"""A small HTTPS service: mutual TLS with certmint credentials, authorization on claims.

It serves ``GET /hello`` to callers whose certificate chains to ``ca.crt`` and whose
claims or identity the policy allows, and answers with what it learned about them.
When the mounted files change, new connections use the new certificate at once.

Usage::

    python server.py --credentials ./api-tls --port 8443 --allow-claim role=reader

The credentials directory defaults to ``$CERTMINT_CREDENTIALS``, then
``/var/run/secrets/certmint``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os

from aiohttp import web

from certmint import workload
from certmint.workload import aiohttp as workload_aiohttp

log = logging.getLogger("example.server")


async def hello(request: web.Request) -> web.Response:
    peer = request[workload_aiohttp.PEER]
    return web.json_response(
        {
            "hello": peer.identity,
            "claims": peer.claims,
            "allowed_by": request[workload_aiohttp.DECISION].rule,
        }
    )


def policy_from(args: argparse.Namespace) -> workload.Authorizer:
    rules = [workload.allow(identity=pattern) for pattern in args.allow_identity]
    for claim in args.allow_claim:
        key, _, value = claim.partition("=")
        rules.append(workload.allow(claims={key: value}))
    return workload.Authorizer(*rules)


async def serve(args: argparse.Namespace) -> None:
    credentials = workload.load(args.credentials)
    log.info("serving as %s", credentials.identity)
    app = web.Application(
        middlewares=[
            workload_aiohttp.middleware(policy_from(args), trust_domain=credentials.trust_domain)
        ]
    )
    app.router.add_get("/hello", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, ssl_context=credentials.server_context())
    await site.start()
    host, port = runner.addresses[0][:2]
    log.info("listening on https://%s:%d", host, port)
    try:
        await asyncio.Event().wait()  # until interrupted
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--credentials",
        default=os.environ.get("CERTMINT_CREDENTIALS", "/var/run/secrets/certmint"),
        help="the mounted certmint Secret (tls.crt, tls.key, ca.crt)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443, help="0 picks a free port")
    parser.add_argument(
        "--allow-claim", action="append", default=[], metavar="KEY=VALUE", help="repeatable"
    )
    parser.add_argument(
        "--allow-identity", action="append", default=[], metavar="PATTERN", help="repeatable"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
