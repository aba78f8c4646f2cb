"""Helpers for integration tests: the operator as they run it, certmint objects, Secrets.

Waiting on conditions and the operator process come from the shared harness (`harness`),
which the benchmarks use too.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from harness import operator_process
from harness.polling import wait_until
from kubernetes import client

GROUP, VERSION = "certmint.io", "v1alpha1"
BIN = Path(sys.executable).parent
#: Quick retries and issuer checks, so that a test waits seconds, not minutes.
QUICK_RETRIES = ("--retry-base=1", "--retry-cap=8", "--issuer-resync=2")
#: Tests count Events, some after issuing hundreds at once: no budget for Normal Events
#: (test_event_budget.py runs the budget on its own).
EVERY_EVENT = ("--event-qps=0",)
ISSUED = re.compile(r"^issued serial (?P<serial>[0-9a-f]+) \(revision (?P<revision>\d+)\)")


class OperatorProcess(operator_process.OperatorProcess):
    """``certmint run`` as the tests run it: quick retries, a short Lease, every Event."""

    def __init__(
        self,
        kubeconfig: Path,
        log_dir: Path,
        name: str = "operator",
        *,
        lease_duration: float = 6.0,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        options = (
            *QUICK_RETRIES, *EVERY_EVENT, f"--lease-duration={lease_duration:g}", *extra_args
        )  # fmt: skip
        super().__init__(kubeconfig, log_dir, name, options=options)


def issuances(json_log: str) -> list[tuple[float, str, str]]:
    """(time, "namespace/name", serial) of every "issued serial" line of a JSON log."""
    found: list[tuple[float, str, str]] = []
    for line in json_log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        match = ISSUED.match(str(entry.get("message", "")))
        if match:
            moment = datetime.fromisoformat(entry["time"]).timestamp()
            found.append((moment, f"{entry['namespace']}/{entry['certificate']}", match["serial"]))
    return found


# Objects ------------------------------------------------------------------------------
def custom(kube: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube)


def create(kube: client.ApiClient, body: dict[str, Any]) -> dict[str, Any]:
    """Creates a certmint object (namespaced or cluster-scoped) from a body."""
    plural = {
        "Certificate": "certificates",
        "Issuer": "issuers",
        "ClusterIssuer": "clusterissuers",
    }[body["kind"]]
    body = {"apiVersion": f"{GROUP}/{VERSION}", **body}
    namespace = body["metadata"].get("namespace")
    api = custom(kube)
    if namespace:
        return dict(api.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body))
    return dict(api.create_cluster_custom_object(GROUP, VERSION, plural, body))


def ca_issuer(
    kube: client.ApiClient,
    namespace: str,
    name: str = "ca",
    *,
    policy: Mapping[str, Any] | None = None,
    generate: bool = True,
) -> None:
    """A namespaced Issuer whose CA is the Secret ``<name>-ca`` (generated unless told not to)."""
    ca: dict[str, Any] = {"secretName": f"{name}-ca"}
    if generate:
        ca["generate"] = {"commonName": f"{namespace} {name} root"}
    create(
        kube,
        {
            "kind": "Issuer",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"ca": ca, "trustDomain": "test.example", "policy": dict(policy or {})},
        },
    )


def certificate(
    kube: client.ApiClient, namespace: str, name: str = "web", issuer: str = "ca", **spec: Any
) -> dict[str, Any]:
    """A Certificate ``name`` for Secret ``<name>-tls`` from Issuer ``issuer``, one DNS name."""
    body = {
        "kind": "Certificate",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "secretName": f"{name}-tls",
            "issuerRef": {"name": issuer},
            "dnsNames": [f"{name}.{namespace}.svc"],
            **spec,
        },
    }
    return create(kube, body)


def get_certificate(kube: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    return dict(
        custom(kube).get_namespaced_custom_object(GROUP, VERSION, namespace, "certificates", name)
    )


def patch_certificate(
    kube: client.ApiClient, namespace: str, name: str, patch: dict[str, Any]
) -> dict[str, Any]:
    return dict(
        custom(kube).patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "certificates", name, patch
        )
    )


def condition(body: Mapping[str, Any], type_: str = "Ready") -> dict[str, Any]:
    for item in (body.get("status") or {}).get("conditions") or ():
        if item.get("type") == type_:
            return dict(item)
    return {}


def wait_for_condition(
    kube: client.ApiClient,
    namespace: str,
    name: str,
    *,
    status: str = "True",
    reason: str | None = None,
    timeout: float = 60.0,
    where: Callable[[dict[str, Any]], bool] = lambda _: True,
) -> dict[str, Any]:
    """Waits until the Certificate's Ready condition has ``status`` (and ``reason``)."""

    def probe() -> dict[str, Any] | None:
        body = get_certificate(kube, namespace, name)
        ready = condition(body)
        if ready.get("status") != status or (reason and ready.get("reason") != reason):
            return None
        return body if where(body) else None

    return wait_until(
        probe, timeout=timeout, what=f"{namespace}/{name} Ready={status} {reason or ''}"
    )


def read_secret(kube: client.ApiClient, namespace: str, name: str) -> client.V1Secret | None:
    try:
        return client.CoreV1Api(kube).read_namespaced_secret(name, namespace)
    except client.ApiException as err:
        if err.status == 404:
            return None
        raise


def secret_file(secret: client.V1Secret, key: str) -> bytes:
    return base64.b64decode(secret.data[key])


def leaf_of(secret: client.V1Secret) -> x509.Certificate:
    return x509.load_pem_x509_certificates(secret_file(secret, "tls.crt"))[0]


def key_matches(secret: client.V1Secret) -> bool:
    key = serialization.load_pem_private_key(secret_file(secret, "tls.key"), password=None)
    return bool(key.public_key() == leaf_of(secret).public_key())


def write_files(
    secret: client.V1Secret, directory: Path, keys: Sequence[str] = ("tls.crt", "tls.key", "ca.crt")
) -> Path:
    """Writes Secret keys as files, as the kubelet would mount them."""
    directory.mkdir(parents=True, exist_ok=True)
    for key in keys:
        (directory / key).write_bytes(secret_file(secret, key))
    return directory


def openssl_verify(secret: client.V1Secret, directory: Path) -> subprocess.CompletedProcess[str]:
    write_files(secret, directory)
    return subprocess.run(
        ["openssl", "verify", "-CAfile", str(directory / "ca.crt"), str(directory / "tls.crt")],
        capture_output=True,
        text=True,
        check=False,
    )


def events_for(kube: client.ApiClient, namespace: str, name: str) -> list[client.CoreV1Event]:
    items = (
        client.CoreV1Api(kube)
        .list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}")
        .items
    )
    return list(items)


def service_account(kube: client.ApiClient, namespace: str, name: str) -> None:
    client.CoreV1Api(kube).create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))
    )
