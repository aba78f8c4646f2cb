"""Fixtures of the fault suite: a control plane of its own, the CRDs and RBAC from deploy/.

The suite starts its own etcd + kube-apiserver (``CERTMINT_LOCAL_DIR`` in a temporary
directory) because its tests kill and pause them. The operator runs as the ServiceAccount
``certmint`` with exactly the RBAC ``deploy/`` grants, so the API priority and fairness test
can single it out.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from harness.control_plane import ControlPlane
from kubernetes import client, config

from tests.faults import harness
from tests.faults.harness import ROOT
from tests.integration.support import OperatorProcess, wait_until

SYSTEM_NAMESPACE = "certmint-system"
OPERATOR_ACCOUNT = "certmint"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "faults" in item.path.parts:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A control plane only the fault suite uses; stopped at the end of the session."""
    plane = ControlPlane(tmp_path_factory.mktemp("control-plane"))
    plane.up()
    yield plane
    plane.down()


@pytest.fixture(scope="session")
def kube(control_plane: ControlPlane) -> client.ApiClient:
    """An admin client of the fault control plane, with deploy/ (CRDs, RBAC) applied."""
    harness.kubectl(control_plane, "apply", "--server-side", "-k", str(ROOT / "deploy"))
    harness.kubectl(control_plane, "wait", "--for=condition=Established", "--timeout=60s",
            "-f", str(ROOT / "crds"))  # fmt: skip
    api = config.new_client_from_config(config_file=str(control_plane.kubeconfig))

    def served() -> bool:
        custom = client.CustomObjectsApi(api)
        try:
            for plural in ("certificates", "issuers"):
                custom.list_cluster_custom_object("certmint.io", "v1alpha1", plural, limit=1)
        except client.ApiException:
            return False
        return True

    wait_until(served, timeout=60, what="discovery to serve the certmint kinds")
    return api


@pytest.fixture(scope="session")
def operator_kubeconfig(
    control_plane: ControlPlane, kube: client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A kubeconfig that is the ServiceAccount certmint/certmint-system and nothing else."""
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
    )
    token = (
        client.CoreV1Api(kube)
        .create_namespaced_service_account_token(OPERATOR_ACCOUNT, SYSTEM_NAMESPACE, request)
        .status.token
    )
    admin = yaml.safe_load(control_plane.kubeconfig.read_text())
    cluster = admin["clusters"][0]
    path = tmp_path_factory.mktemp("operator") / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": "certmint", "user": {"token": token}}],
                "contexts": [
                    {
                        "name": "certmint",
                        "context": {"cluster": cluster["name"], "user": "certmint"},
                    }
                ],
                "current-context": "certmint",
            }
        )
    )
    return path


@pytest.fixture
def namespace(
    kube: client.ApiClient, control_plane: ControlPlane, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A fresh namespace; its Certificates are deleted afterwards so nothing renews them."""
    name = (
        f"f-{request.node.name[5:25].lower().replace('_', '-').strip('-')}-{uuid.uuid4().hex[:5]}"
    )
    name = "".join(c if c.isalnum() or c == "-" else "-" for c in name)
    core = client.CoreV1Api(kube)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    control_plane.heal()  # whatever the test stopped or paused, even when it failed
    custom = client.CustomObjectsApi(kube)
    for plural in ("certificates", "issuers"):
        custom.delete_collection_namespaced_custom_object("certmint.io", "v1alpha1", name, plural)


@pytest.fixture
def start_operator(operator_kubeconfig: Path, tmp_path: Path) -> Iterator[harness.StartOperator]:
    """Starts ``certmint run -A`` processes as the certmint ServiceAccount; stops them after."""
    started: list[OperatorProcess] = []

    def start(
        name: str = "operator",
        *,
        wait_healthy: bool = True,
        lease_duration: float = harness.PRODUCTION_LEASE_S,
        extra: tuple[str, ...] = (),
    ) -> OperatorProcess:
        process = OperatorProcess(
            operator_kubeconfig,
            tmp_path,
            name=name,
            lease_duration=lease_duration,
            extra_args=("--log-format=json", *harness.PRODUCTION_RETRY, *extra),
        )
        started.append(process)
        process.start(wait_healthy=wait_healthy)
        return process

    yield start
    for process in started:
        process.stop()
