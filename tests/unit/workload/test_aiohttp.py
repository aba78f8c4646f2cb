"""The aiohttp middleware, over real TLS on 127.0.0.1."""

from __future__ import annotations

import datetime
import pathlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from certmint import workload
from certmint.workload import aiohttp as workload_aiohttp
from tests.unit.workload import support

POLICY = workload.Authorizer(workload.allow(claims={"role": "reader"}, name="readers"))


def credentials_for(directory: pathlib.Path, leaf: support.Leaf) -> workload.Credentials:
    support.publish(directory, leaf.files)
    return workload.load(directory, check_interval=datetime.timedelta(0))


async def whoami(request: web.Request) -> web.Response:
    peer = request[workload_aiohttp.PEER]
    decision = request[workload_aiohttp.DECISION]
    return web.json_response(
        {"identity": peer.identity, "claims": peer.claims, "rule": decision.rule}
    )


@pytest.fixture
async def base_url(pki: support.Pki, tmp_path: pathlib.Path) -> AsyncIterator[str]:
    server = credentials_for(tmp_path / "server", pki.leaf("payments", "api"))
    app = web.Application(
        middlewares=[workload_aiohttp.middleware(POLICY, trust_domain=server.trust_domain)]
    )
    app.router.add_get("/whoami", whoami)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server.server_context())
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"https://{host}:{port}"
    await runner.cleanup()


async def get(base_url: str, client: workload.Credentials) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{base_url}/whoami", ssl=client.client_context()) as response,
    ):
        return response.status, await response.text()


async def test_an_allowed_peer_reaches_the_handler_with_its_identity(
    pki: support.Pki, tmp_path: pathlib.Path, base_url: str
) -> None:
    client = credentials_for(
        tmp_path / "c", pki.leaf("web", "frontend", claims={"role": ("reader",)})
    )

    status, body = await get(base_url, client)

    assert (status, body) == (
        200,
        '{"identity": "spiffe://cluster.local/ns/web/sa/frontend", '
        '"claims": {"role": ["reader"]}, "rule": "readers"}',
    )


@pytest.mark.parametrize(
    ("leaf_args", "body"),
    [
        pytest.param(
            {"claims": {"role": ("writer",)}},
            "forbidden: spiffe://cluster.local/ns/web/sa/frontend denied: "
            "rule 'readers': claim 'role' has writer, not 'reader'\n",
            id="deny a peer whose claims miss the policy, with the reason",
        ),
        pytest.param(
            {"claims": {"role": ("reader",)}, "trust_domain": "partner.example"},
            "forbidden: TrustDomainMismatch: spiffe://partner.example/ns/web/sa/frontend "
            "is not in the trust domain 'cluster.local'\n",
            id="deny a peer from another trust domain",
        ),
    ],
)
async def test_refused_peers_get_403_with_the_reason(
    pki: support.Pki,
    tmp_path: pathlib.Path,
    base_url: str,
    leaf_args: dict[str, object],
    body: str,
) -> None:
    client = credentials_for(tmp_path / "c", pki.leaf("web", "frontend", **leaf_args))  # type: ignore[arg-type]

    assert await get(base_url, client) == (403, body)


async def test_a_client_from_another_ca_cannot_connect(
    pki: support.Pki, other_pki: support.Pki, tmp_path: pathlib.Path, base_url: str
) -> None:
    foreign = other_pki.leaf("web", "frontend", claims={"role": ("reader",)})
    client = credentials_for(
        tmp_path / "c",
        support.Leaf(foreign.certificate, foreign.chain_pem, foreign.key_pem, pki.trust_pem),
    )

    # TLS 1.3: the client's handshake ends first; the server's alert arrives as a hang-up.
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await get(base_url, client)


@pytest.mark.parametrize(
    ("expected", "outcome"),
    [
        pytest.param("spiffe://cluster.local/ns/payments/*", 200, id="a matching server is used"),
        pytest.param(
            "spiffe://cluster.local/ns/billing/*",
            "certificate verify failed: the server is spiffe://cluster.local/ns/payments/sa/api, "
            "not spiffe://cluster.local/ns/billing/*",
            id="another server is refused before the request is sent",
        ),
    ],
)
async def test_an_aiohttp_client_checks_the_server_spiffe_id(
    pki: support.Pki, tmp_path: pathlib.Path, base_url: str, expected: str, outcome: int | str
) -> None:
    client = credentials_for(
        tmp_path / "c", pki.leaf("web", "frontend", claims={"role": ("reader",)})
    )
    context = client.client_context(server_identity=expected)

    async with aiohttp.ClientSession() as session:
        try:
            async with session.get(f"{base_url}/whoami", ssl=context) as response:
                result: int | str = response.status
        except aiohttp.ClientConnectorCertificateError as err:
            result = err.certificate_error.args[1]

    assert result == outcome
