"""`helm install` of deploy/helm/certmint into the real control plane, the operator running
with the token of the chart's ServiceAccount, then `helm uninstall` leaving nothing behind.

No container runtime exists here, so (as test_rbac_operator.py does for kustomize) the
operator runs on the host with a TokenRequest token of the ServiceAccount the chart created.
The release uses the namespaced scope in the test's own namespace: the chart's cluster-scoped
objects (ClusterRoles) have the kustomize base's names, which test_deploy.py installs into
the same control plane, and the two installs are alternatives, not companions.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.integration import support
from tests.integration.conftest import BIN, ROOT, Kubectl
from tests.integration.test_rbac_operator import (
    ca_spec,
    certificate,
    is_leader,
    issued_by,
    refusals,
    verified_secret,
)

CHART = ROOT / "deploy" / "helm" / "certmint"
RELEASE = "certmint"
# Every namespaced kind the chart renders, to prove `helm uninstall` removed them all.
RELEASE_KINDS = (
    "serviceaccounts", "roles.rbac.authorization.k8s.io", "rolebindings.rbac.authorization.k8s.io",
    "deployments.apps", "poddisruptionbudgets.policy", "services",
    "networkpolicies.networking.k8s.io",
)  # fmt: skip


def helm(kubeconfig: Path, *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "helm"), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"helm {' '.join(args)}: {done.stderr}"
    return done.stdout


def release_objects(kubectl: Kubectl, ns: str) -> str:
    selector = f"app.kubernetes.io/instance={RELEASE}"
    return str(
        kubectl("get", ",".join(RELEASE_KINDS), "-n", ns, "-l", selector, "-o", "name").stdout
    )


@pytest.fixture
def operator_with_token(
    running_operator: support.OperatorProcess,
    service_account_kubeconfig: Callable[[str, str], Path],
    tmp_path: Path,
) -> Iterator[Callable[[str], support.OperatorProcess]]:
    """``certmint run -n NS`` as the chart's ServiceAccount; the session operator pauses."""
    running_operator.stop()
    started: list[support.OperatorProcess] = []

    def start(namespace: str) -> support.OperatorProcess:
        # The ServiceAccount exists (the chart made it); the fixture only mints a token.
        kubeconfig = service_account_kubeconfig(namespace, "certmint")
        process = support.OperatorProcess(kubeconfig, tmp_path, name="helm-certmint")
        started.append(process)
        process.start("-n", namespace, "--log-format=json", env={"CERTMINT_NAMESPACE": namespace})
        support.wait_until(lambda: is_leader(process), timeout=30, what="the chart's identity")
        return process

    yield start
    for process in started:
        process.stop()


def test_helm_install_runs_the_operator_and_uninstall_leaves_only_the_crds(
    *,
    kube: client.ApiClient,
    kubectl: Kubectl,
    kubeconfig_path: Path,
    namespace: str,
    operator_with_token: Callable[[str], support.OperatorProcess],
    tmp_path: Path,
) -> None:
    helm(kubeconfig_path, "install", RELEASE, str(CHART), "-n", namespace,
         "--set", "scope=namespaced", "--wait=false")  # fmt: skip
    installed = release_objects(kubectl, namespace)
    operator = operator_with_token(namespace)

    support.create(kube, {
        "kind": "Issuer",
        "metadata": {"name": "local", "namespace": namespace},
        "spec": {"ca": ca_spec("local-ca", "helm root"), "trustDomain": "test.example"},
    })  # fmt: skip
    support.service_account(kube, namespace, "api")
    certificate(kube, namespace, "api", {"name": "local"}, serviceAccountName="api")
    secret = verified_secret(kube, namespace, "api", tmp_path / "api")
    operator.stop()
    helm(kubeconfig_path, "uninstall", RELEASE, "-n", namespace, "--wait")

    assert sorted(installed.split()) == sorted([
        "serviceaccount/certmint",
        "role.rbac.authorization.k8s.io/certmint-leader-election",
        "role.rbac.authorization.k8s.io/certmint-controller",
        "rolebinding.rbac.authorization.k8s.io/certmint-leader-election",
        "rolebinding.rbac.authorization.k8s.io/certmint-controller",
        "deployment.apps/certmint",
        "poddisruptionbudget.policy/certmint",
        "service/certmint-metrics",
        "networkpolicy.networking.k8s.io/certmint",
    ])  # fmt: skip
    assert secret.metadata.annotations["certmint.io/identity"] == (
        f"spiffe://test.example/ns/{namespace}/sa/api"
    )
    assert issued_by(operator) == [(namespace, "api")]
    assert refusals(operator) == []
    assert release_objects(kubectl, namespace) == ""
    # The CRDs stay (Helm never deletes what it installed from crds/), and with them the
    # Certificates and the Secrets the workloads mount.
    assert kubectl("get", "crd", "certificates.certmint.io", "-o", "name").stdout.strip()
    assert support.read_secret(kube, namespace, "api-tls") is not None
