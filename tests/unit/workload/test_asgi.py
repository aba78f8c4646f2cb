"""The ASGI middleware with a Starlette app, over real TLS on 127.0.0.1."""

from __future__ import annotations

import asyncio
import datetime
import pathlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from certmint import workload
from certmint.workload import asgi
from tests.unit.workload import support
from tests.unit.workload.asgi_server import Exposure, SmallServer

POLICY = workload.Authorizer(workload.allow(claims={"role": "reader"}, name="readers"))
FRONTEND = "spiffe://cluster.local/ns/web/sa/frontend"


def credentials_for(directory: pathlib.Path, leaf: support.Leaf) -> workload.Credentials:
    support.publish(directory, leaf.files)
    return workload.load(directory, check_interval=datetime.timedelta(0))


async def whoami(request: Request) -> JSONResponse:
    peer = asgi.peer_of(request.scope)
    return JSONResponse(
        {
            "identity": peer.identity,
            "claims": peer.claims,
            "same": request.state.certmint_peer is peer,
        }
    )


def starlette_app() -> Starlette:
    return Starlette(
        routes=[Route("/whoami", whoami)],
        middleware=[
            Middleware(asgi.PeerMiddleware, authorizer=POLICY, trust_domain="cluster.local")
        ],
    )


async def get(url: str, client: workload.Credentials) -> tuple[int, str]:
    async with httpx.AsyncClient(verify=client.client_context(), trust_env=False) as http:
        response = await http.get(f"{url}/whoami")
        return response.status_code, response.text


async def serve_small(
    server: workload.Credentials, exposure: Exposure
) -> tuple[Callable[[], Any], str]:
    listener, port = await SmallServer(starlette_app(), exposure).start(server.server_context())

    async def stop() -> None:
        listener.close()
        await listener.wait_closed()

    return stop, f"https://127.0.0.1:{port}"


async def serve_uvicorn(server: workload.Credentials) -> tuple[Callable[[], Any], str]:
    uvicorn = pytest.importorskip("uvicorn")
    from uvicorn.protocols.http.h11_impl import H11Protocol

    config = uvicorn.Config(
        starlette_app(),
        host="127.0.0.1",
        port=0,
        http=asgi.expose_tls(H11Protocol),
        ssl_context_factory=lambda config, default: server.server_context(),
        lifespan="off",
        log_level="warning",
    )
    instance = uvicorn.Server(config)
    task = asyncio.create_task(instance.serve())
    deadline = asyncio.get_running_loop().time() + 10
    while not instance.started:
        assert asyncio.get_running_loop().time() < deadline, "uvicorn did not start"
        await asyncio.sleep(0.02)
    port = instance.servers[0].sockets[0].getsockname()[1]

    async def stop() -> None:
        instance.should_exit = True
        await task

    return stop, f"https://127.0.0.1:{port}"


SERVERS = [
    pytest.param("tls extension", id="a server that provides the ASGI TLS extension"),
    pytest.param("transport", id="a server that puts its transport in the scope"),
    pytest.param("uvicorn", id="uvicorn with expose_tls"),
]


@pytest.fixture(params=SERVERS)
async def url(
    request: pytest.FixtureRequest, pki: support.Pki, tmp_path: pathlib.Path
) -> AsyncIterator[str]:
    server = credentials_for(tmp_path / "server", pki.leaf("payments", "api"))
    if request.param == "uvicorn":
        stop, base = await serve_uvicorn(server)
    else:
        stop, base = await serve_small(server, request.param)
    yield base
    await stop()


async def test_an_allowed_peer_reaches_the_app_with_its_identity(
    pki: support.Pki, tmp_path: pathlib.Path, url: str
) -> None:
    client = credentials_for(
        tmp_path / "c", pki.leaf("web", "frontend", claims={"role": ("reader",)})
    )

    assert await get(url, client) == (
        200,
        f'{{"identity":"{FRONTEND}","claims":{{"role":["reader"]}},"same":true}}',
    )


async def test_a_peer_whose_claims_miss_the_policy_gets_403_with_the_reason(
    pki: support.Pki, tmp_path: pathlib.Path, url: str
) -> None:
    client = credentials_for(
        tmp_path / "c", pki.leaf("web", "frontend", claims={"role": ("writer",)})
    )

    assert await get(url, client) == (
        403,
        f"forbidden: {FRONTEND} denied: rule 'readers': claim 'role' has writer, not 'reader'\n",
    )


def _pem(leaf: support.Leaf) -> str:
    return leaf.certificate.public_bytes(serialization.Encoding.PEM).decode()


@pytest.mark.parametrize(
    ("make_tls", "reason"),
    [
        pytest.param(
            lambda leaf: {"client_cert_chain": [_pem(leaf)], "client_cert_error": None},
            None,
            id="read the leaf from client_cert_chain",
        ),
        pytest.param(
            lambda leaf: {"client_cert_chain": _pem(leaf)},
            None,
            id="read a chain given as one PEM string",
        ),
        pytest.param(
            lambda leaf: {"client_cert": leaf.certificate.public_bytes(serialization.Encoding.DER)},
            None,
            id="read client_cert given as DER",
        ),
        pytest.param(
            lambda leaf: {"client_cert_chain": [_pem(leaf)], "client_cert_error": "expired"},
            "NotVerified: the server did not verify the client: expired",
            id="refuse a certificate the server failed to verify",
        ),
        pytest.param(
            lambda leaf: {"client_cert_chain": []},
            "NoCertificate: the client presented no certificate",
            id="refuse a connection without a client certificate",
        ),
        pytest.param(
            lambda leaf: {"client_cert_chain": ["garbage"]},
            "CertificateUnreadable: the client certificate in the TLS extension is unreadable",
            id="refuse an unreadable certificate",
        ),
        pytest.param(
            None,
            "NoCertificate: the server gave the application no TLS information (no 'tls' "
            "extension or transport in the scope); see certmint.workload.asgi.expose_tls",
            id="refuse when the server exposes no TLS information",
        ),
    ],
)
def test_peer_from_scope(
    pki: support.Pki,
    make_tls: Callable[[support.Leaf], dict[str, Any]] | None,
    reason: str | None,
) -> None:
    leaf = pki.leaf("web", "frontend")
    scope: dict[str, Any] = {"type": "http", "extensions": {}}
    if make_tls is not None:
        scope["extensions"]["tls"] = make_tls(leaf)

    if reason is None:
        assert asgi.peer_from_scope(scope, trust_domain="cluster.local").identity == FRONTEND
    else:
        with pytest.raises(workload.PeerError) as refused:
            asgi.peer_from_scope(scope)
        assert str(refused.value) == reason


class Recorder:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.app_called = False

    async def app(self, scope: Any, receive: Any, send: Any) -> None:
        self.app_called = True

    async def send(self, message: Any) -> None:
        self.sent.append(message)

    @staticmethod
    async def receive() -> dict[str, Any]:
        return {}


async def test_a_refused_websocket_is_closed_with_policy_violation() -> None:
    recorder = Recorder()
    middleware = asgi.PeerMiddleware(recorder.app, authorizer=POLICY)

    await middleware({"type": "websocket", "path": "/ws"}, recorder.receive, recorder.send)

    full_reason = (
        "NoCertificate: the server gave the application no TLS information (no 'tls' "
        "extension or transport in the scope); see certmint.workload.asgi.expose_tls"
    )
    assert recorder.app_called is False
    # A WebSocket close frame carries at most 123 bytes of reason.
    assert recorder.sent == [{"type": "websocket.close", "code": 1008, "reason": full_reason[:123]}]


async def test_lifespan_passes_through() -> None:
    recorder = Recorder()
    middleware = asgi.PeerMiddleware(recorder.app, authorizer=POLICY)

    await middleware({"type": "lifespan"}, recorder.receive, recorder.send)

    assert (recorder.app_called, recorder.sent) == (True, [])
