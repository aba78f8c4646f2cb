"""The fault suite's helpers, and what every fault test checks afterwards.

The suite's control plane is a `harness.control_plane.ControlPlane` in a directory of its
own, so killing its kube-apiserver or pausing its etcd never disturbs the control plane
that the integration tests share.
"""

from __future__ import annotations

import base64
import concurrent.futures
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from harness.control_plane import ControlPlane
from kubernetes import client

from tests.integration.support import GROUP, VERSION, OperatorProcess, create, wait_until

ROOT = Path(__file__).resolve().parents[2]
#: The production defaults of `certmint run` (the integration tests' OperatorProcess uses
#: shorter ones), so that the recovery times measured here are those of a real deployment.
PRODUCTION_RETRY = ("--retry-base=5", "--retry-cap=300")
PRODUCTION_LEASE_S = 15.0
#: The ``start_operator`` fixture: starts ``certmint run -A`` as the certmint ServiceAccount.
StartOperator = Callable[..., OperatorProcess]
#: Foreign objects: certmint must leave them exactly as they are.
FOREIGN = 3


def kubectl(plane: ControlPlane, *args: str) -> str:
    """Runs the pinned kubectl against ``plane``; fails the test when it fails."""
    return plane.kubectl(*args).stdout


def hold(seconds: float) -> None:
    """Keeps a fault in place for its duration (the fault's definition, not a synchronization)."""
    time.sleep(seconds)


# A burst of Certificates ---------------------------------------------------------------
def issuer(kube: client.ApiClient, namespace: str) -> None:
    """An Issuer ``ca`` whose root CA certmint generates."""
    create(
        kube,
        {
            "kind": "Issuer",
            "metadata": {"name": "ca", "namespace": namespace},
            "spec": {
                "ca": {"secretName": "ca", "generate": {"commonName": f"{namespace} root"}},
                "trustDomain": "faults.example",
            },
        },
    )


def wait_issuer_ready(kube: client.ApiClient, namespace: str) -> None:
    """Waits until the Issuer ``ca`` has generated its CA and says Ready."""

    def probe() -> bool:
        body = client.CustomObjectsApi(kube).get_namespaced_custom_object(
            GROUP, VERSION, namespace, "issuers", "ca"
        )
        conditions = (body.get("status") or {}).get("conditions") or ()
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    wait_until(probe, timeout=60, what=f"Issuer {namespace}/ca Ready")


def burst(kube: client.ApiClient, namespace: str, count: int, prefix: str = "c") -> list[str]:
    """Creates ``count`` Certificates (a few requests in parallel); returns their names."""
    names = [f"{prefix}-{index:03d}" for index in range(count)]

    def one(name: str) -> None:
        create(
            kube,
            {
                "kind": "Certificate",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {
                    "secretName": f"{name}-tls",
                    "issuerRef": {"name": "ca"},
                    "dnsNames": [f"{name}.{namespace}.svc"],
                    "duration": "24h",
                },
            },
        )

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(one, names))
    return names


def ready_names(kube: client.ApiClient, namespace: str) -> set[str]:
    """Certificates of ``namespace`` whose Ready condition is True."""
    listing = client.CustomObjectsApi(kube).list_namespaced_custom_object(
        GROUP, VERSION, namespace, "certificates"
    )
    return {
        item["metadata"]["name"]
        for item in listing["items"]
        if any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (item.get("status") or {}).get("conditions") or ()
        )
    }


def wait_all_ready(
    kube: client.ApiClient, namespace: str, names: Sequence[str], timeout: float
) -> float:
    """Waits until every Certificate is Ready; returns the seconds it took."""
    started = time.monotonic()
    wanted = set(names)

    def probe() -> bool:
        try:
            return wanted <= ready_names(kube, namespace)
        except (client.ApiException, OSError):
            return False  # the API server is still coming back

    wait_until(probe, timeout=timeout, what=f"all {len(names)} Certificates Ready")
    return time.monotonic() - started


def wait_some_ready(
    kube: client.ApiClient, namespace: str, names: Sequence[str], count: int = 10
) -> int:
    """Waits until ``count`` Certificates are Ready (issuing is under way).

    Returns:
        How many were not Ready yet at that moment, when the fault begins.
    """
    ready = wait_until(
        lambda: (found := ready_names(kube, namespace)) and len(found) >= count and found,
        timeout=90,
        what=f"{count} Certificates Ready",
    )
    return len(set(names) - ready)


# Checks --------------------------------------------------------------------------------
def foreign_objects(kube: client.ApiClient, namespace: str) -> dict[str, str]:
    """Creates Secrets and ConfigMaps certmint does not own; returns their resourceVersions."""
    core = client.CoreV1Api(kube)
    versions: dict[str, str] = {}
    for index in range(FOREIGN):
        secret = core.create_namespaced_secret(
            namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name=f"foreign-{index}"),
                string_data={"note": "not certmint's"},
            ),
        )
        versions[f"Secret/foreign-{index}"] = secret.metadata.resource_version
        config_map = core.create_namespaced_config_map(
            namespace,
            client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name=f"foreign-{index}"), data={"note": "mine"}
            ),
        )
        versions[f"ConfigMap/foreign-{index}"] = config_map.metadata.resource_version
    return versions


def current_versions(kube: client.ApiClient, namespace: str, names: Mapping[str, str]) -> dict:
    """The resourceVersions of the objects named like `foreign_objects` names them."""
    core = client.CoreV1Api(kube)
    readers = {
        "Secret": core.read_namespaced_secret,
        "ConfigMap": core.read_namespaced_config_map,
    }
    result: dict[str, str] = {}
    for key in names:
        kind, name = key.split("/")
        result[key] = readers[kind](name, namespace).metadata.resource_version
    return result


def issued_state(kube: client.ApiClient, namespace: str, names: Sequence[str]) -> dict[str, Any]:
    """Per Certificate: (status revision, Secret revision, key matches, serials agree)."""
    core = client.CoreV1Api(kube)
    secrets = {item.metadata.name: item for item in core.list_namespaced_secret(namespace).items}
    listing = client.CustomObjectsApi(kube).list_namespaced_custom_object(
        GROUP, VERSION, namespace, "certificates"
    )
    result: dict[str, Any] = {}
    for item in listing["items"]:
        name = item["metadata"]["name"]
        if name not in names:
            continue
        status = item.get("status") or {}
        secret = secrets.get(f"{name}-tls")
        result[name] = _secret_facts(status, secret)
    return result


def _secret_facts(status: Mapping[str, Any], secret: client.V1Secret | None) -> tuple[Any, ...]:
    if secret is None:
        return (status.get("revision"), None, False, False)

    leaf = x509.load_pem_x509_certificates(base64.b64decode(secret.data["tls.crt"]))[0]
    key = serialization.load_pem_private_key(base64.b64decode(secret.data["tls.key"]), None)
    annotations = secret.metadata.annotations or {}
    serial = format(leaf.serial_number, "x")
    return (
        status.get("revision"),
        annotations.get("certmint.io/revision"),
        key.public_key() == leaf.public_key(),
        status.get("serialNumber") == annotations.get("certmint.io/serial") == serial,
    )


def expected_state(names: Sequence[str]) -> dict[str, Any]:
    """Every Certificate issued exactly once: revision 1, its key and serials agree."""
    return dict.fromkeys(names, (1, "1", True, True))


def operator_alive(process: OperatorProcess) -> dict[str, Any]:
    """What the operator process says about itself after a fault."""
    return {
        "running": process.running,
        "livez": process.get("/livez")[0],
        "readyz": process.get("/readyz")[0],
    }
