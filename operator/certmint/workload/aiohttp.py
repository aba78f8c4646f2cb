"""aiohttp integration: authenticate and authorize each request by its TLS peer.

Usage::

    from aiohttp import web
    from certmint import workload
    from certmint.workload import aiohttp as workload_aiohttp

    credentials = workload.load("/var/run/secrets/certmint")
    policy = workload.Authorizer(workload.allow(claims={"role": "reader"}))
    app = web.Application(
        middlewares=[workload_aiohttp.middleware(policy, trust_domain=credentials.trust_domain)]
    )
    web.run_app(app, ssl_context=credentials.server_context())

A handler reads the peer with ``request[workload_aiohttp.PEER]``. A request that is not
over TLS, whose peer cannot be identified or is not allowed gets ``403 Forbidden``
with the reason as plain text.
"""

from __future__ import annotations

import logging

from aiohttp import typedefs, web

from certmint.workload import authz, errors, peers

_log = logging.getLogger("certmint.workload")

PEER = web.RequestKey("peer", peers.Peer)
"""Where the middleware stores the allowed request's `Peer`."""
DECISION = web.RequestKey("decision", authz.Decision)
"""Where the middleware stores the allowing `Decision`."""


def _forbidden(reason: str) -> web.Response:
    return web.Response(status=403, text=f"forbidden: {reason}\n")


def middleware(
    authorizer: authz.Authorizer,
    *,
    trust_domain: str | None = None,
    claims_oid: str | None = None,
) -> typedefs.Middleware:
    """An aiohttp middleware that lets through only peers the policy allows.

    Args:
        authorizer: The policy.
        trust_domain: The trust domain peers must belong to; ``None`` accepts any the
            CA vouches for (pass ``credentials.trust_domain``).
        claims_oid: The claims OID, when the operator runs with ``--claims-oid`` (pass
            ``credentials.claims_oid``); ``None`` reads certmint's.

    Returns:
        The middleware, for ``web.Application(middlewares=[...])``.
    """

    @web.middleware
    async def certmint_authorization(
        request: web.Request, handler: typedefs.Handler
    ) -> web.StreamResponse:
        transport = request.transport
        ssl_object = None if transport is None else transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return _forbidden("the request did not arrive over TLS")
        try:
            peer = peers.peer(ssl_object, trust_domain=trust_domain, claims_oid=claims_oid)
        except errors.PeerError as err:
            _log.info("refused %s %s: %s", request.method, request.path, err)
            return _forbidden(str(err))
        decision = authorizer.authorize(peer)
        if not decision.allowed:
            _log.info("refused %s %s: %s", request.method, request.path, decision.reason)
            return _forbidden(decision.reason)
        request[PEER] = peer
        request[DECISION] = decision
        return await handler(request)

    return certmint_authorization
