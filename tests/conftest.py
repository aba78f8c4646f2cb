"""Fixtures for integration and interop tests: a real etcd + kube-apiserver, never a mock.

They live at the root of tests/ so that tests/integration and tests/interop share one
control plane and one session operator. The control plane is session-scoped. One that
is already running (``make cluster-up``) is reused and left running; one this session
started is stopped at the end.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest
import yaml
from harness.control_plane import (
    CLUSTER,  # noqa: F401 - tests.integration.conftest re-exports it
    ControlPlane,
)
from kubernetes import client, config

from tests.integration.support import OperatorProcess

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
#: Where the control plane keeps its state; set it to run several clusters side by side.
LOCAL = Path(os.environ.get("CERTMINT_LOCAL_DIR", ROOT / ".local"))


class Kubectl(Protocol):
    def __call__(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        kubeconfig: Path | None = None,
    ) -> subprocess.CompletedProcess[str]: ...


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if {"integration", "interop"} & set(item.path.parts):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def local_control_plane() -> Iterator[ControlPlane]:
    """The local control plane in ``LOCAL`` (started if needed)."""
    plane = ControlPlane(LOCAL)
    already_running = plane.running()
    if not already_running:
        plane.up()
    yield plane
    if not already_running:
        plane.down(check=False)


@pytest.fixture(scope="session")
def kubeconfig_path(local_control_plane: ControlPlane) -> Path:
    """The admin kubeconfig of the running local control plane."""
    return local_control_plane.kubeconfig


@pytest.fixture(scope="session")
def kubectl(local_control_plane: ControlPlane) -> Kubectl:
    """Runs the pinned kubectl (built into .venv/bin by `make tools`)."""
    return local_control_plane.kubectl


@pytest.fixture(scope="session")
def crds_installed(local_control_plane: ControlPlane) -> None:
    """Applies crds/ and waits until the API server serves every CRD, category included."""
    local_control_plane.install_crds()


@pytest.fixture(scope="session")
def kube(kubeconfig_path: Path, crds_installed: None) -> client.ApiClient:
    """An admin API client; the CRDs from crds/ are installed and served."""
    return config.new_client_from_config(config_file=str(kubeconfig_path))


@pytest.fixture
def namespace(kube: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test."""
    name = f"t-{request.node.name[:30].lower().replace('_', '-').strip('-')}-{uuid.uuid4().hex[:6]}"
    name = "".join(c if c.isalnum() or c == "-" else "-" for c in name)
    core = client.CoreV1Api(kube)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    # Without a controller-manager nothing deletes a namespace's objects, and the operator
    # would go on renewing a test's short-lived certificates: delete them explicitly.
    custom = client.CustomObjectsApi(kube)
    for plural in ("certificates", "issuers"):
        custom.delete_collection_namespaced_custom_object("certmint.io", "v1alpha1", name, plural)
    # The namespace then stays Terminating; that is harmless.
    core.delete_namespace(name)


def _kubeconfig_for_token(admin_kubeconfig: Path, token: str) -> dict[str, Any]:
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    cluster = admin["clusters"][0]
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": cluster["name"], "user": "sa"}}],
        "current-context": "sa",
    }


@pytest.fixture(scope="session")
def service_account_kubeconfig(
    kube: client.ApiClient, kubeconfig_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str, str], Path]:
    """Returns a kubeconfig that authenticates as a ServiceAccount (via TokenRequest).

    The ServiceAccount is created when missing. The token is valid for one hour.
    """
    core = client.CoreV1Api(kube)

    def make(namespace: str, name: str) -> Path:
        try:
            core.create_namespaced_service_account(
                namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))
            )
        except client.ApiException as err:
            if err.status != 409:
                raise
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
        )
        token = core.create_namespaced_service_account_token(name, namespace, request).status.token
        path = tmp_path_factory.mktemp("sa") / f"{namespace}-{name}.kubeconfig"
        path.write_text(yaml.safe_dump(_kubeconfig_for_token(kubeconfig_path, token)))
        return path

    return make


def b64decode(data: dict[str, str], key: str) -> bytes:
    """Decodes one key of a Secret's data."""
    return base64.b64decode(data[key])


@pytest.fixture(scope="session")
def operator(
    kube: client.ApiClient, kubeconfig_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """One ``certmint run -A`` process for the session; tests may restart or kill it.

    A test that stopped it must start it again (``operator.start()``) before returning,
    or later tests find no operator.
    """
    core = client.CoreV1Api(kube)
    try:
        core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name="certmint-system"))
        )
    except client.ApiException as err:
        if err.status != 409:
            raise
    process = OperatorProcess(kubeconfig_path, tmp_path_factory.mktemp("operator"))
    process.start()
    yield process
    process.stop()


@pytest.fixture
def running_operator(operator: OperatorProcess) -> Iterator[OperatorProcess]:
    """The session operator, restarted if an earlier test left it stopped."""
    if not operator.running:
        operator.start()
    yield operator
    if not operator.running:
        operator.start()
