"""`kube.Kube` over aiohttp against a scripted API server on loopback.

What each call sends (method, path, query, content type, body) and how each answer is
mapped (2xx decoded, 404/409 typed, 429/5xx transient, no answer status 0). The
integration tests run the same calls against the real kube-apiserver; here the server is
a script, to reach answers a real one gives rarely.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from kubernetes import client

from certmint.k8s import informer, kube, rest

Json = dict[str, Any]
SECRET = {"metadata": {"name": "web-tls", "resourceVersion": "7"}, "data": {}}
STATUS = {"conditions": [{"type": "Ready", "status": "True"}]}


class ScriptedApi:
    """Records every request; answers each with the next scripted (status, body)."""

    def __init__(self) -> None:
        self.requests: list[Json] = []
        self.answers: list[tuple[int, bytes]] = []
        self.held = asyncio.Event()  # cleared: requests wait for it (a hanging API server)
        self.held.set()

    async def serve(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "content_type": request.headers.get("Content-Type", ""),
                "body": json.loads(raw) if raw else None,
                "authorization": request.headers.get("Authorization", ""),
            }
        )
        await self.held.wait()
        status, body = self.answers.pop(0) if self.answers else (200, b'{"kind":"Ok"}')
        return web.Response(status=status, body=body, content_type="application/json")

    def answer(self, status: int, body: Json | bytes) -> None:
        self.answers.append(
            (status, body if isinstance(body, bytes) else json.dumps(body).encode())
        )


@contextlib.asynccontextmanager
async def serving(scripted: ScriptedApi, concurrency: int = 2) -> AsyncIterator[kube.Kube]:
    """A `kube.Kube` whose requests ``scripted`` answers, on a loopback port."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", scripted.serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    configuration = client.Configuration(host=f"http://127.0.0.1:{runner.addresses[0][1]}")
    configuration.api_key = {"BearerToken": "token-1"}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    connection = informer.Connection(configuration)
    try:
        yield kube.Kube(connection, concurrency)
    finally:
        scripted.held.set()
        await connection.close()
        await runner.cleanup()


@pytest.fixture
async def served() -> AsyncIterator[tuple[ScriptedApi, kube.Kube]]:
    scripted = ScriptedApi()
    async with serving(scripted) as api:
        yield scripted, api


Call = Callable[[kube.Kube], Awaitable[Any]]
SHAPES: list[Any] = [
    pytest.param(
        lambda api: api.create_secret("shop", SECRET),
        ("POST", "/api/v1/namespaces/shop/secrets", {}, "application/json", SECRET),
        id="a Secret is created with a POST of its body",
    ),
    pytest.param(
        lambda api: api.replace_secret("shop", "web-tls", SECRET),
        ("PUT", "/api/v1/namespaces/shop/secrets/web-tls", {}, "application/json", SECRET),
        id="a Secret is replaced with a PUT carrying its resourceVersion",
    ),
    pytest.param(
        lambda api: api.delete_secret("shop", "web-tls", uid="u-1"),
        (
            "DELETE",
            "/api/v1/namespaces/shop/secrets/web-tls",
            {},
            "application/json",
            {"preconditions": {"uid": "u-1"}},
        ),
        id="a Secret is deleted on the precondition of its UID",
    ),
    pytest.param(
        lambda api: api.patch_status("Certificate", "shop", "web", STATUS),
        (
            "PATCH",
            "/apis/certmint.io/v1alpha1/namespaces/shop/certificates/web/status",
            {},
            "application/merge-patch+json",
            {"status": STATUS},
        ),
        id="a Certificate's status is merge-patched on the status subresource",
    ),
    pytest.param(
        lambda api: api.patch_status("ClusterIssuer", None, "ca", STATUS),
        (
            "PATCH",
            "/apis/certmint.io/v1alpha1/clusterissuers/ca/status",
            {},
            "application/merge-patch+json",
            {"status": STATUS},
        ),
        id="a ClusterIssuer's status is patched at its cluster-scoped path",
    ),
    pytest.param(
        lambda api: api.patch_annotations("Issuer", "shop", "ca", {"a": "b"}),
        (
            "PATCH",
            "/apis/certmint.io/v1alpha1/namespaces/shop/issuers/ca",
            {},
            "application/merge-patch+json",
            {"metadata": {"annotations": {"a": "b"}}},
        ),
        id="annotations are merge-patched onto the object",
    ),
    pytest.param(
        lambda api: api.list_config_maps("certmint.io/issuer", "shop"),
        (
            "GET",
            "/api/v1/namespaces/shop/configmaps",
            {"labelSelector": "certmint.io/issuer"},
            "",
            None,
        ),
        id="ConfigMaps of one namespace are listed by label",
    ),
    pytest.param(
        lambda api: api.list_config_maps("certmint.io/issuer"),
        ("GET", "/api/v1/configmaps", {"labelSelector": "certmint.io/issuer"}, "", None),
        id="ConfigMaps of every namespace are listed at the cluster-wide path",
    ),
    pytest.param(
        lambda api: api.replace_cluster_trust_bundle("b", SECRET),
        (
            "PUT",
            "/apis/certificates.k8s.io/v1beta1/clustertrustbundles/b",
            {},
            "application/json",
            SECRET,
        ),
        id="a ClusterTrustBundle is replaced at its cluster-scoped path",
    ),
    pytest.param(
        lambda api: api.answer_pod_certificate_request("shop", "pcr-1", "9", STATUS),
        (
            "PUT",
            "/apis/certificates.k8s.io/v1beta1/namespaces/shop/podcertificaterequests/pcr-1/status",
            {},
            "application/json",
            {
                "apiVersion": "certificates.k8s.io/v1beta1",
                "kind": "PodCertificateRequest",
                "metadata": {"name": "pcr-1", "namespace": "shop", "resourceVersion": "9"},
                "status": STATUS,
            },
        ),
        id="a PodCertificateRequest is answered with a PUT of its status over its version",
    ),
    pytest.param(
        lambda api: api.create_lease("certmint-system", SECRET),
        (
            "POST",
            "/apis/coordination.k8s.io/v1/namespaces/certmint-system/leases",
            {},
            "application/json",
            SECRET,
        ),
        id="a Lease is created in the operator namespace",
    ),
]


@pytest.mark.parametrize(("call", "expected"), SHAPES)
async def test_each_call_sends_the_request_the_api_expects(
    served: tuple[ScriptedApi, kube.Kube], call: Call, expected: tuple[Any, ...]
) -> None:
    scripted, api = served
    await call(api)
    sent = scripted.requests[0]
    assert (
        sent["method"],
        sent["path"],
        sent["query"],
        sent["content_type"],
        sent["body"],
        sent["authorization"],
    ) == (*expected, "Bearer token-1")


async def test_the_written_object_comes_back_with_its_new_resource_version(
    served: tuple[ScriptedApi, kube.Kube],
) -> None:
    scripted, api = served
    scripted.answer(201, {"metadata": {"name": "web-tls", "resourceVersion": "8"}})
    assert await api.create_secret("shop", SECRET) == {
        "metadata": {"name": "web-tls", "resourceVersion": "8"}
    }


def status_body(code: int, message: str) -> Json:
    return {"kind": "Status", "status": "Failure", "message": message, "code": code}


@pytest.mark.parametrize(
    ("status", "body", "raised", "transient"),
    [
        pytest.param(
            409,
            status_body(409, "the object has been modified"),
            (kube.ConflictError, 409, "HTTP 409: the object has been modified"),
            False,
            id="a 409 on a stale resourceVersion is a ConflictError",
        ),
        pytest.param(
            404,
            status_body(404, 'namespaces "shop" not found'),
            (kube.NotFoundError, 404, 'HTTP 404: namespaces "shop" not found'),
            False,
            id="a 404 is a NotFoundError",
        ),
        pytest.param(
            422,
            status_body(422, "Secret is invalid"),
            (kube.KubeError, 422, "HTTP 422: Secret is invalid"),
            False,
            id="a 422 is an answer about the request, not retried",
        ),
        pytest.param(
            429,
            status_body(429, "Too many requests"),
            (kube.KubeError, 429, "HTTP 429: Too many requests"),
            True,
            id="a 429 from API priority and fairness is transient",
        ),
        pytest.param(
            503,
            b"upstream connect error",
            (kube.KubeError, 503, "HTTP 503: Service Unavailable"),
            True,
            id="a 503 without a Status body keeps the reason phrase and is transient",
        ),
        pytest.param(
            500,
            b"[]",
            (kube.KubeError, 500, "HTTP 500: Internal Server Error"),
            True,
            id="a 500 whose body is JSON but no Status keeps the reason phrase",
        ),
    ],
)
async def test_error_answers_are_mapped_to_what_the_reconcilers_expect(
    served: tuple[ScriptedApi, kube.Kube],
    status: int,
    body: Json | bytes,
    raised: tuple[type[kube.KubeError], int, str],
    transient: bool,
) -> None:
    scripted, api = served
    scripted.answer(status, body)
    with pytest.raises(kube.KubeError) as error:
        await api.replace_secret("shop", "web-tls", SECRET)
    assert (
        (type(error.value), error.value.status, str(error.value)),
        kube.is_transient(error.value),
    ) == (raised, transient)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda api: api.get_secret("shop", "web-tls"), id="a missing Secret"),
        pytest.param(lambda api: api.get_lease("certmint-system", "l"), id="a missing Lease"),
        pytest.param(lambda api: api.get_object("Issuer", "shop", "ca"), id="a missing Issuer"),
    ],
)
async def test_a_missing_object_is_none(served: tuple[ScriptedApi, kube.Kube], call: Call) -> None:
    scripted, api = served
    scripted.answer(404, status_body(404, "not found"))
    assert await call(api) is None


async def test_deleting_what_is_gone_already_is_not_an_error(
    served: tuple[ScriptedApi, kube.Kube],
) -> None:
    scripted, api = served
    scripted.answer(404, status_body(404, "not found"))
    await api.delete_config_map("shop", "trust", uid="u-1")
    assert (scripted.requests[0]["method"], scripted.answers) == ("DELETE", [])


async def test_a_body_cut_short_is_a_failure_without_an_answer(
    served: tuple[ScriptedApi, kube.Kube],
) -> None:
    scripted, api = served
    scripted.answer(200, b'{"metadata": {"na')
    with pytest.raises(kube.KubeError) as error:
        await api.get_secret("shop", "web-tls")
    assert (type(error.value), error.value.status) == (kube.KubeError, 0)
    assert str(error.value).startswith("HTTP 0: unreadable answer from the API server: ")


async def test_no_more_requests_than_the_concurrency_are_in_flight(
    served: tuple[ScriptedApi, kube.Kube],
) -> None:
    scripted, api = served  # concurrency 2
    scripted.held.clear()
    calls = [asyncio.create_task(api.get_secret("shop", f"s{i}")) for i in range(3)]
    await wait_for(lambda: len(scripted.requests) == 2)
    in_flight = len(scripted.requests)
    scripted.held.set()
    await asyncio.gather(*calls)
    assert (in_flight, len(scripted.requests)) == (2, 3)


async def test_a_hanging_api_server_fails_the_request_after_the_read_timeout(
    served: tuple[ScriptedApi, kube.Kube], monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted, api = served
    monkeypatch.setattr(rest, "REQUEST_TIMEOUT", rest.aiohttp.ClientTimeout(sock_read=0.2))
    scripted.held.clear()
    with pytest.raises(kube.KubeError) as error:
        await api.get_secret("shop", "web-tls")
    assert (type(error.value), error.value.status) == (kube.KubeError, 0)
    assert str(error.value).startswith("HTTP 0: no answer from the API server: ")


async def wait_for(condition: Callable[[], bool]) -> None:
    deadline = asyncio.get_running_loop().time() + 10
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_refused_connection_is_a_kube_error_with_status_0(closed_port: int) -> None:
    connection = informer.Connection(client.Configuration(host=f"http://127.0.0.1:{closed_port}"))
    with pytest.raises(kube.KubeError) as raised:
        await kube.Kube(connection, concurrency=1).get_lease("certmint-system", "certmint-leader")
    await connection.close()
    assert (type(raised.value), raised.value.status) == (kube.KubeError, 0)
    assert str(raised.value).startswith("HTTP 0: no answer from the API server: ")
