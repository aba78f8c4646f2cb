"""The fixtures talk to a real API server that really enforces RBAC."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from kubernetes import client, config

from tests.integration.conftest import BIN, CLUSTER, Kubectl


def test_a_configmap_round_trips_through_the_api_server(
    kube: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube)
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="round-trip"), data={"k": "v"}),
    )

    read = core.read_namespaced_config_map("round-trip", namespace)

    assert read.data == {"k": "v"}
    assert read.metadata.uid


def test_the_server_reports_the_pinned_kubernetes_version(kubectl: Kubectl) -> None:
    result = kubectl("version", "-o", "yaml")

    assert "gitVersion: v1.36." in result.stdout.split("serverVersion:")[1]


def test_a_service_account_without_rights_is_forbidden(
    namespace: str, service_account_kubeconfig: Callable[[str, str], Path]
) -> None:
    kubeconfig = service_account_kubeconfig(namespace, "nobody")
    api = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))

    with pytest.raises(client.ApiException) as denied:
        api.list_namespaced_secret(namespace)

    assert denied.value.status == 403
    assert f"system:serviceaccount:{namespace}:nobody" in denied.value.body


def test_cluster_up_returns_only_once_the_api_server_is_live_and_ready(tmp_path: Path) -> None:
    """A second control plane beside the session's: the first probe after `up` succeeds."""
    environment = {**os.environ, "CERTMINT_LOCAL_DIR": str(tmp_path)}
    subprocess.run([*CLUSTER, "up"], env=environment, check=True, capture_output=True)
    try:
        for probe in ("/livez", "/readyz"):
            result = subprocess.run(
                [
                    str(BIN / "kubectl"),
                    f"--kubeconfig={tmp_path / 'kubeconfig'}",
                    "get",
                    "--raw",
                    probe,
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            assert (result.returncode, result.stdout) == (0, "ok"), result.stderr
    finally:
        subprocess.run([*CLUSTER, "down"], env=environment, check=False, capture_output=True)
