"""ASGI integration (Starlette, FastAPI, ...): authorize each request by its TLS peer.

The middleware finds the client certificate in the request scope, in this order:

1. ``scope["extensions"]["tls"]``, the ASGI TLS extension: ``client_cert_chain``
   (PEM strings, leaf first; a single PEM string is accepted too) or ``client_cert``
   (DER bytes). A non-empty ``client_cert_error`` means the server did not verify
   the certificate, and the request is refused.
2. ``scope["transport"]``, an asyncio transport some servers or patches provide; the
   certificate is read from its ``ssl_object``.

Servers that do neither (uvicorn and hypercorn, as of uvicorn 0.54 and hypercorn
0.18) can be given the TLS extension with `expose_tls`, which works with any server
whose per-connection class is an `asyncio.Protocol` holding the application in an
``app`` attribute (uvicorn's HTTP and WebSocket protocols)::

    import uvicorn
    from uvicorn.protocols.http.h11_impl import H11Protocol
    from certmint.workload import asgi

    config = uvicorn.Config(
        asgi.PeerMiddleware(app, authorizer=policy, trust_domain=credentials.trust_domain),
        http=asgi.expose_tls(H11Protocol),
        ssl_context_factory=lambda config, default: credentials.server_context(),
    )

Allowed requests carry the peer in ``scope["state"]["certmint_peer"]`` (Starlette:
``request.state.certmint_peer``; or call `peer_of`). Refused HTTP requests get
``403 Forbidden`` with the reason as plain text; refused WebSocket connections are
closed with code 1008 (policy violation) before they are accepted.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certmint.workload import authz, errors, peers

__all__ = ["PeerMiddleware", "expose_tls", "peer_from_scope", "peer_of", "tls_extension"]

_log = logging.getLogger("certmint.workload")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PEER_STATE_KEY = "certmint_peer"
DECISION_STATE_KEY = "certmint_decision"
_WEBSOCKET_POLICY_VIOLATION = 1008
_CLOSE_REASON_BYTES = 123  # the most a WebSocket close frame can carry

_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}

_P = TypeVar("_P", bound=asyncio.BaseProtocol)


def _certificate_from_extension(tls: MutableMapping[str, Any]) -> x509.Certificate | None:
    error = tls.get("client_cert_error")
    if error:
        raise errors.PeerError("NotVerified", f"the server did not verify the client: {error}")
    der = tls.get("client_cert")
    chain = tls.get("client_cert_chain")
    try:
        if isinstance(der, bytes | bytearray) and der:
            return x509.load_der_x509_certificate(bytes(der))
        if isinstance(chain, str | bytes):
            text = chain.encode() if isinstance(chain, str) else chain
            return x509.load_pem_x509_certificates(text)[0] if text.strip() else None
        first = next(iter(chain or ()), None)
        if first is None:
            return None
        return x509.load_pem_x509_certificate(first.encode() if isinstance(first, str) else first)
    except ValueError:
        raise errors.PeerError(
            "CertificateUnreadable", "the client certificate in the TLS extension is unreadable"
        ) from None


def peer_from_scope(
    scope: Scope, *, trust_domain: str | None = None, claims_oid: str | None = None
) -> peers.Peer:
    """Identify the client of an ASGI request from its TLS certificate.

    Args:
        scope: An ``http`` or ``websocket`` scope.
        trust_domain: The trust domain the peer must belong to; ``None`` accepts any.
        claims_oid: The claims OID, when the operator runs with ``--claims-oid``;
            ``None`` reads certmint's.

    Returns:
        The peer.

    Raises:
        PeerError: ``NoCertificate`` when the scope offers no TLS information or no
            client certificate, or anything `certmint.workload.peer` raises.
    """
    tls = scope.get("extensions", {}).get("tls")
    if tls is not None:
        certificate = _certificate_from_extension(tls)
        if certificate is None:
            raise errors.PeerError("NoCertificate", "the client presented no certificate")
        return peers.peer_from_certificate(
            certificate, trust_domain=trust_domain, claims_oid=claims_oid
        )
    transport = scope.get("transport")
    ssl_object = None if transport is None else transport.get_extra_info("ssl_object")
    if isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return peers.peer(ssl_object, trust_domain=trust_domain, claims_oid=claims_oid)
    raise errors.PeerError(
        "NoCertificate",
        "the server gave the application no TLS information (no 'tls' extension or "
        "transport in the scope); see certmint.workload.asgi.expose_tls",
    )


def peer_of(scope: Scope) -> peers.Peer:
    """The peer `PeerMiddleware` stored for an allowed request.

    Args:
        scope: The request scope (Starlette: ``request.scope``).

    Returns:
        The peer.

    Raises:
        LookupError: The request did not pass through `PeerMiddleware`.
    """
    state = scope.get("state", {})
    if PEER_STATE_KEY not in state:
        raise LookupError("no certmint peer in this scope; is PeerMiddleware installed?")
    peer: peers.Peer = state[PEER_STATE_KEY]
    return peer


class PeerMiddleware:
    """ASGI middleware that lets through only peers the policy allows.

    Other scope types (``lifespan``) pass through untouched.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        authorizer: authz.Authorizer,
        trust_domain: str | None = None,
        claims_oid: str | None = None,
    ) -> None:
        """Wrap an application.

        Args:
            app: The ASGI application.
            authorizer: The policy.
            trust_domain: The trust domain peers must belong to; ``None`` accepts any
                the CA vouches for (pass ``credentials.trust_domain``).
            claims_oid: The claims OID, when the operator runs with ``--claims-oid``
                (pass ``credentials.claims_oid``); ``None`` reads certmint's.
        """
        self.app = app
        self.authorizer = authorizer
        self.trust_domain = trust_domain
        self.claims_oid = claims_oid

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection scope."""
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        try:
            peer = peer_from_scope(
                scope, trust_domain=self.trust_domain, claims_oid=self.claims_oid
            )
        except errors.PeerError as err:
            await self._refuse(scope, send, str(err))
            return
        decision = self.authorizer.authorize(peer)
        if not decision.allowed:
            await self._refuse(scope, send, decision.reason)
            return
        state = scope.setdefault("state", {})
        state[PEER_STATE_KEY] = peer
        state[DECISION_STATE_KEY] = decision
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, reason: str) -> None:
        _log.info("refused %s %s: %s", scope["type"], scope.get("path", ""), reason)
        if scope["type"] == "websocket":
            text = reason.encode()[:_CLOSE_REASON_BYTES].decode(errors="ignore")
            await send(
                {"type": "websocket.close", "code": _WEBSOCKET_POLICY_VIOLATION, "reason": text}
            )
            return
        body = f"forbidden: {reason}\n".encode()
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 403, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def tls_extension(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> dict[str, Any]:
    """The ASGI TLS extension entry for a connection, as a server would provide it.

    Args:
        ssl_object: The connection's TLS object, after the handshake.

    Returns:
        The ``scope["extensions"]["tls"]`` value: the client leaf (the only certificate
        Python exposes before 3.13) in ``client_cert_chain``, the TLS version, and
        ``None`` for what the `ssl` module cannot tell.
    """
    der = ssl_object.getpeercert(binary_form=True)
    chain = []
    if der:
        leaf = x509.load_der_x509_certificate(der)
        chain.append(leaf.public_bytes(serialization.Encoding.PEM).decode("ascii"))
    return {
        "server_cert": None,
        "client_cert_chain": chain,
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
    }


class _WithTLSExtension:
    """Adds one connection's TLS extension entry to every scope of that connection."""

    def __init__(self, app: ASGIApp, tls: dict[str, Any]) -> None:
        self.app = app
        self.tls = tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope = dict(scope)
        scope["extensions"] = {**scope.get("extensions", {}), "tls": dict(self.tls)}
        await self.app(scope, receive, send)


def expose_tls(protocol_class: type[_P]) -> type[_P]:
    """Make an asyncio-based ASGI server's connections provide the TLS extension.

    Returns a subclass whose ``connection_made`` (called by asyncio after the TLS
    handshake) wraps the per-connection ``app`` attribute so that every scope of the
    connection carries ``scope["extensions"]["tls"]`` (see `tls_extension`). Works
    with uvicorn's ``H11Protocol``, ``HttpToolsProtocol`` and WebSocket protocols.
    Plain-TCP connections are left as they are.

    Args:
        protocol_class: The server's per-connection protocol class.

    Returns:
        The subclass, to pass where the server takes its protocol class.
    """

    def connection_made(self: Any, transport: asyncio.BaseTransport) -> None:
        protocol_class.connection_made(self, transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.app = _WithTLSExtension(self.app, tls_extension(ssl_object))

    subclass: type[_P] = type(
        f"TLSExposing{protocol_class.__name__}",
        (protocol_class,),
        {"connection_made": connection_made, "__module__": __name__},
    )
    return subclass
