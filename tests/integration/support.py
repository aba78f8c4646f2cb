"""Helpers for integration tests: waiting on conditions, running the operator, reading Secrets."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from kubernetes import client

T = TypeVar("T")
GROUP, VERSION = "certmint.io", "v1alpha1"
BIN = Path(sys.executable).parent


def wait_until(
    probe: Callable[[], T | None], *, timeout: float = 60.0, what: str = "condition"
) -> T:
    """Polls ``probe`` until it returns something truthy; fails with ``what`` on the deadline."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.1)  # polling interval for a condition with a deadline
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OperatorProcess:
    """``certmint run`` as a real subprocess, against the real control plane."""

    def __init__(
        self,
        kubeconfig: Path,
        log_dir: Path,
        name: str = "operator",
        *,
        lease_duration: float = 6.0,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.lease_duration = lease_duration
        self.extra_args = extra_args
        self.kubeconfig = kubeconfig
        self.log_dir = log_dir
        self.name = name
        self.process: subprocess.Popen[bytes] | None = None
        self.metrics_port = 0
        self.log_path = log_dir / f"{name}.log"
        self.starts = 0

    def start(
        self,
        *args: str,
        kubeconfig: Path | None = None,
        env: Mapping[str, str] | None = None,
        wait_healthy: bool = True,
    ) -> OperatorProcess:
        self.metrics_port = free_port()
        self.starts += 1
        self.log_path = self.log_dir / f"{self.name}-{self.starts}.log"
        argv = [
            str(BIN / "certmint"),
            "--kubeconfig",
            str(kubeconfig or self.kubeconfig),
            "run",
            *(args or ("-A",)),
            "--metrics-address=127.0.0.1",
            f"--metrics-port={self.metrics_port}",
            "--retry-base=1",
            "--retry-cap=8",
            "--issuer-resync=2",
            f"--lease-duration={self.lease_duration:g}",
            *self.extra_args,
        ]
        self.process = subprocess.Popen(
            argv,
            stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
            env={**os.environ, "CERTMINT_NAMESPACE": "certmint-system", **(env or {})},
        )
        if wait_healthy:
            wait_until(self.healthy, timeout=30, what=f"{self.name} /healthz")
        return self

    def healthy(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited; log:\n{self.log()[-3000:]}")
        return self.get("/healthz")[0] == 200

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}{path}", timeout=5
            ) as response:
                return int(response.status), response.read().decode()
        except urllib.error.HTTPError as err:
            return int(err.code), ""
        except OSError:
            return 0, ""

    def metrics(self) -> str:
        code, body = self.get("/metrics")
        assert code == 200, f"/metrics answered {code}"
        return body

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


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
