"""Certificates for the interop suite, issued once per module by the session operator.

One namespace, one Issuer (trust distribution on, so the namespace gets the trust
ConfigMap with ``bundle.spiffe``), and for each key type the API offers a server and a
client Certificate with claims and a PKCS#12 keystore. Their Secrets are written into
directories the peers read: ``<key type>/<role>/`` with ``tls.crt``, ``tls.key``,
``ca.crt``, ``keystore.p12`` and ``password``; the bundle is ``bundle.spiffe``.
"""

from __future__ import annotations

import base64
import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.integration import support

TRUST_DOMAIN = "interop.test"
TRUST_CONFIGMAP = "certmint-trust"
KEYSTORE_PASSWORD = "interop-keystore-pass"  # a test password of a throwaway keystore

#: Every key type the API offers for a workload certificate, by the name the matrix uses.
KEY_TYPES: dict[str, dict[str, object]] = {
    "ECDSA P-256": {"algorithm": "ECDSA", "size": 256},
    "ECDSA P-384": {"algorithm": "ECDSA", "size": 384},
    "RSA 2048": {"algorithm": "RSA", "size": 2048},
    "RSA 4096": {"algorithm": "RSA", "size": 4096},
    "Ed25519": {"algorithm": "Ed25519"},
}
SERVER_CLAIMS = {"role": ["writer"], "tier": ["backend"]}
CLIENT_CLAIMS = {"env": ["test"], "role": ["reader", "writer"]}


@dataclasses.dataclass(frozen=True)
class Workload:
    """One issued certificate as files, and who it says it is."""

    directory: Path
    identity: str
    claims: dict[str, list[str]]

    @property
    def cert(self) -> Path:
        return self.directory / "tls.crt"

    @property
    def key(self) -> Path:
        return self.directory / "tls.key"

    @property
    def ca(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def keystore(self) -> Path:
        return self.directory / "keystore.p12"

    @property
    def password(self) -> Path:
        return self.directory / "password"


@dataclasses.dataclass(frozen=True)
class Issued:
    """Server and client workloads per key type, the SPIFFE bundle, and their namespace."""

    namespace: str
    servers: dict[str, Workload]
    clients: dict[str, Workload]
    bundle: Path
    trust_domain: str = TRUST_DOMAIN


def _slug(key_type: str) -> str:
    return key_type.lower().replace(" ", "").replace("-", "")


def _issuer(kube: client.ApiClient, namespace: str) -> None:
    support.create(
        kube,
        {
            "kind": "Issuer",
            "metadata": {"name": "interop", "namespace": namespace},
            "spec": {
                "ca": {"secretName": "interop-ca", "generate": {"commonName": "interop root"}},
                "trustDomain": TRUST_DOMAIN,
                "policy": {
                    "allowedIPAddresses": ["127.0.0.1/32"],
                    "claims": [
                        {"key": "role", "values": ["reader", "writer"]},
                        {"key": "env", "values": ["test"]},
                        {"key": "tier", "values": ["backend"]},
                    ],
                },
                "trustDistribution": {"configMapName": TRUST_CONFIGMAP},
            },
        },
    )


def _certificate(
    kube: client.ApiClient, namespace: str, name: str, *, account: str,
    key: dict[str, object], claims: dict[str, list[str]], server: bool,
) -> None:  # fmt: skip
    support.create(
        kube,
        {
            "kind": "Certificate",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "secretName": f"{name}-tls",
                "issuerRef": {"name": "interop"},
                "serviceAccountName": account,
                **({"ipAddresses": ["127.0.0.1"]} if server else {}),
                "claims": claims,
                "duration": "2h",
                "privateKey": key,
                "keystores": {
                    "pkcs12": {
                        "create": True,
                        "passwordSecretRef": {"name": "keystore-password", "key": "password"},
                    }
                },
            },
        },
    )


def _workload(
    kube: client.ApiClient, namespace: str, name: str, directory: Path, *,
    account: str, claims: dict[str, list[str]],
) -> Workload:  # fmt: skip
    support.wait_for_condition(kube, namespace, name, timeout=120)
    secret = support.read_secret(kube, namespace, f"{name}-tls")
    assert secret is not None
    support.write_files(secret, directory, ("tls.crt", "tls.key", "ca.crt", "keystore.p12"))
    (directory / "password").write_text(KEYSTORE_PASSWORD)
    identity = f"spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/{account}"
    return Workload(directory, identity, claims)


@pytest.fixture(scope="module")
def issued(
    kube: client.ApiClient,
    operator: support.OperatorProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Issued]:
    """Server and client certificates of every key type, issued by the session operator."""
    if not operator.running:
        operator.start()
    core = client.CoreV1Api(kube)
    namespace = f"interop-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    for account in ("server", "client"):
        support.service_account(kube, namespace, account)
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="keystore-password"),
            data={"password": base64.b64encode(KEYSTORE_PASSWORD.encode()).decode()},
        ),
    )
    _issuer(kube, namespace)
    for key_type, key in KEY_TYPES.items():
        slug = _slug(key_type)
        for role, claims in (("server", SERVER_CLAIMS), ("client", CLIENT_CLAIMS)):
            _certificate(
                kube, namespace, f"{role}-{slug}",
                account=role, key=key, claims=claims, server=role == "server",
            )  # fmt: skip
    root = tmp_path_factory.mktemp("interop")
    servers, clients = {}, {}
    for key_type in KEY_TYPES:
        slug = _slug(key_type)
        servers[key_type] = _workload(
            kube, namespace, f"server-{slug}", root / slug / "server",
            account="server", claims=SERVER_CLAIMS,
        )  # fmt: skip
        clients[key_type] = _workload(
            kube, namespace, f"client-{slug}", root / slug / "client",
            account="client", claims=CLIENT_CLAIMS,
        )  # fmt: skip
    trust = support.wait_until(
        lambda: _config_map(core, namespace), timeout=60, what="the trust ConfigMap"
    )
    bundle = root / "bundle.spiffe"
    bundle.write_text(trust["bundle.spiffe"])
    yield Issued(namespace, servers, clients, bundle)
    custom = client.CustomObjectsApi(kube)
    for plural in ("certificates", "issuers"):
        custom.delete_collection_namespaced_custom_object(
            "certmint.io", "v1alpha1", namespace, plural
        )
    core.delete_namespace(namespace)


def _config_map(core: client.CoreV1Api, namespace: str) -> dict[str, str] | None:
    try:
        body = core.read_namespaced_config_map(TRUST_CONFIGMAP, namespace)
    except client.ApiException as err:
        if err.status == 404:
            return None
        raise
    data: dict[str, str] | None = body.data
    return data if data and "bundle.spiffe" in data else None
