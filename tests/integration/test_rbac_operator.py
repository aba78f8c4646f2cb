"""The operator running with nothing but the certmint ServiceAccount's rights.

test_deploy.py asks the API server what that identity may and may not do (it is refused
deleting namespaces, reading Pods and changing RBAC there). Here the real operator runs
with a TokenRequest token for the same identity and does its whole job: a ClusterIssuer
generates its CA in certmint-system, Certificates are issued from it and from a namespaced
Issuer, a Delete-policy Secret goes away with its Certificate, and nothing it tried was
forbidden. The single-namespace overlay gets the same treatment with its Roles only.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from certmint.pki import claims as pki_claims
from tests.integration.conftest import ROOT, Kubectl
from tests.integration.support import (
    OperatorProcess,
    create,
    leaf_of,
    openssl_verify,
    read_secret,
    secret_file,
    service_account,
    wait_for_condition,
    wait_until,
)

DEPLOY = ROOT / "deploy"
NAMESPACED_OVERLAY = DEPLOY / "overlays" / "namespaced"
SYSTEM_NAMESPACE = "certmint-system"
TRUST_DOMAIN = "test.example"
# What a refused request looks like in certmint's own lines ("HTTP 403: ...") and in the watches'
# ("403: ... is forbidden: ...").
REFUSAL = re.compile(r"forbidden|HTTP 403|permission|\"code\":\s*403", re.IGNORECASE)
# Not an RBAC refusal: earlier tests' namespaces stay Terminating (no controller-manager runs
# here), and the API server refuses new objects (Events) in them with a 403 for everyone.
TERMINATING = "because it is being terminated"

StartOperator = Callable[..., OperatorProcess]


# Helpers ------------------------------------------------------------------------------
def log_entries(process: OperatorProcess) -> list[dict[str, Any]]:
    """The operator's ``--log-format json`` lines; anything else becomes a ``raw`` entry."""
    entries: list[dict[str, Any]] = []
    for line in process.log().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            entry = {"raw": line}
        entries.append(entry if isinstance(entry, dict) else {"raw": line})
    return entries


def refusals(process: OperatorProcess) -> list[str]:
    """Every log line that reports a request RBAC refused."""
    return [
        line
        for line in process.log().splitlines()
        if REFUSAL.search(line) and TERMINATING not in line
    ]


def issued_by(process: OperatorProcess) -> list[tuple[str, str]]:
    """(namespace, certificate) of every "issued serial" line in the operator's log."""
    return [
        (entry["namespace"], entry["certificate"])
        for entry in log_entries(process)
        if str(entry.get("message", "")).startswith("issued serial ")
    ]


def is_leader(process: OperatorProcess) -> bool:
    return "certmint_leader 1.0" in process.metrics().splitlines()


def ca_spec(secret_name: str, common_name: str) -> dict[str, Any]:
    return {"secretName": secret_name, "generate": {"commonName": common_name}}


def certificate(
    kube: client.ApiClient, namespace: str, name: str, issuer_ref: Mapping[str, str], **spec: Any
) -> None:
    create(
        kube,
        {
            "kind": "Certificate",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"secretName": f"{name}-tls", "issuerRef": dict(issuer_ref), **spec},
        },
    )


def verified_secret(
    kube: client.ApiClient, namespace: str, name: str, directory: Path
) -> client.V1Secret:
    """Waits for Ready, then checks the Secret against the status and with openssl."""
    body = wait_for_condition(kube, namespace, name)
    secret = read_secret(kube, namespace, f"{name}-tls")
    assert secret is not None
    verified = openssl_verify(secret, directory)
    assert {
        "openssl": (verified.returncode, verified.stderr),
        "serial": secret.metadata.annotations["certmint.io/serial"],
        "revision": body["status"]["revision"],
    } == {
        "openssl": (0, ""),
        "serial": body["status"]["serialNumber"],
        "revision": 1,
    }
    return secret


def namespaced_overlay(directory: Path, namespace: str) -> Path:
    """An overlay of deploy/overlays/namespaced that installs into ``namespace``."""
    directory.mkdir()
    (directory / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": namespace,
                "resources": [os.path.relpath(NAMESPACED_OVERLAY, directory)],
            }
        )
    )
    return directory


# Fixtures -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def deployed(kubectl: Kubectl, crds_installed: None) -> None:
    """`kubectl apply -k deploy/`, as a platform team installs certmint."""
    kubectl("apply", "-k", str(DEPLOY))


@pytest.fixture
def operator_as(
    running_operator: OperatorProcess,
    service_account_kubeconfig: Callable[[str, str], Path],
    tmp_path: Path,
) -> Iterator[StartOperator]:
    """Runs ``certmint run`` as the ServiceAccount ``certmint`` of a namespace, and as nothing else.

    The session operator is stopped first: it would otherwise hold the Lease (and, for the
    namespaced overlay, issue in the test's namespace itself). ``running_operator`` starts
    it again afterwards.
    """
    running_operator.stop()
    started: list[OperatorProcess] = []

    def start(
        account_namespace: str, *args: str, env: Mapping[str, str] | None = None
    ) -> OperatorProcess:
        kubeconfig = service_account_kubeconfig(account_namespace, "certmint")
        process = OperatorProcess(kubeconfig, tmp_path, name=f"certmint-{len(started)}")
        started.append(process)
        process.start(*args, "--log-format=json", env=env)
        wait_until(lambda: is_leader(process), timeout=30, what="the certmint identity to lead")
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def cluster_issuer(kube: client.ApiClient) -> Iterator[str]:
    """A unique ClusterIssuer name; the ClusterIssuer and its CA Secret are removed afterwards."""
    name = f"rbac-{uuid.uuid4().hex[:8]}"
    yield name
    custom = client.CustomObjectsApi(kube)
    core = client.CoreV1Api(kube)
    for delete in (
        lambda: custom.delete_cluster_custom_object(
            "certmint.io", "v1alpha1", "clusterissuers", name
        ),
        lambda: core.delete_namespaced_secret(f"{name}-ca", SYSTEM_NAMESPACE),
    ):
        try:
            delete()
        except client.ApiException as err:
            if err.status != 404:
                raise


# Tests --------------------------------------------------------------------------------
@pytest.mark.usefixtures("deployed")
def test_the_operator_does_its_whole_job_as_the_certmint_service_account_alone(
    kube: client.ApiClient,
    operator_as: StartOperator,
    cluster_issuer: str,
    namespace: str,
    tmp_path: Path,
) -> None:
    operator = operator_as(SYSTEM_NAMESPACE, "-A")

    create(
        kube,
        {
            "kind": "ClusterIssuer",
            "metadata": {"name": cluster_issuer},
            "spec": {
                "ca": ca_spec(f"{cluster_issuer}-ca", "rbac cluster root"),
                "trustDomain": TRUST_DOMAIN,
                "policy": {"claims": [{"key": "role", "values": ["reader", "writer"]}]},
            },
        },
    )
    create(
        kube,
        {
            "kind": "Issuer",
            "metadata": {"name": "local", "namespace": namespace},
            "spec": {"ca": ca_spec("local-ca", "rbac namespace root"), "trustDomain": TRUST_DOMAIN},
        },
    )
    service_account(kube, namespace, "api")
    from_cluster_issuer = {"name": cluster_issuer, "kind": "ClusterIssuer"}
    certificate(
        kube,
        namespace,
        "api",
        from_cluster_issuer,
        serviceAccountName="api",
        dnsNames=[f"api.{namespace}.svc"],
        claims={"role": ["reader"]},
    )
    certificate(kube, namespace, "local", {"name": "local"}, dnsNames=[f"local.{namespace}.svc"])
    certificate(
        kube,
        namespace,
        "doomed",
        from_cluster_issuer,
        dnsNames=[f"doomed.{namespace}.svc"],
        secretDeletionPolicy="Delete",
    )

    api = verified_secret(kube, namespace, "api", tmp_path / "api")
    verified_secret(kube, namespace, "local", tmp_path / "local")
    verified_secret(kube, namespace, "doomed", tmp_path / "doomed")
    client.CustomObjectsApi(kube).delete_namespaced_custom_object(
        "certmint.io", "v1alpha1", namespace, "certificates", "doomed"
    )
    wait_until(
        lambda: read_secret(kube, namespace, "doomed-tls") is None,
        timeout=30,
        what="the Delete-policy Secret to go",
    )

    ca_secret = read_secret(kube, SYSTEM_NAMESPACE, f"{cluster_issuer}-ca")
    assert ca_secret is not None
    assert {
        "CA generated for": ca_secret.metadata.annotations["certmint.io/generated-for"],
        "leaf chains to it": secret_file(api, "ca.crt") == secret_file(ca_secret, "tls.crt"),
        "identity": api.metadata.annotations["certmint.io/identity"],
        "claims": pki_claims.claims_of(leaf_of(api)),
        "issued by this process": sorted(issued_by(operator)),
        "refused requests": refusals(operator),
    } == {
        "CA generated for": f"ClusterIssuer/{cluster_issuer}",
        "leaf chains to it": True,
        "identity": f"spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/api",
        "claims": {"role": ("reader",)},
        "issued by this process": [(namespace, "api"), (namespace, "doomed"), (namespace, "local")],
        "refused requests": [],
    }


def test_the_namespaced_overlay_runs_the_operator_with_roles_only(
    kube: client.ApiClient,
    kubectl: Kubectl,
    operator_as: StartOperator,
    namespace: str,
    tmp_path: Path,
) -> None:
    kubectl("apply", "-k", str(namespaced_overlay(tmp_path / "overlay", namespace)))
    operator = operator_as(namespace, "-n", namespace, env={"CERTMINT_NAMESPACE": namespace})

    create(
        kube,
        {
            "kind": "Issuer",
            "metadata": {"name": "local", "namespace": namespace},
            "spec": {"ca": ca_spec("local-ca", "namespaced root"), "trustDomain": TRUST_DOMAIN},
        },
    )
    service_account(kube, namespace, "api")
    certificate(
        kube,
        namespace,
        "api",
        {"name": "local"},
        serviceAccountName="api",
        dnsNames=[f"api.{namespace}.svc"],
    )

    secret = verified_secret(kube, namespace, "api", tmp_path / "api")
    lease = client.CoordinationV1Api(kube).read_namespaced_lease("certmint-leader", namespace)
    assert {
        "identity": secret.metadata.annotations["certmint.io/identity"],
        "issued by this process": issued_by(operator),
        "Lease in its own namespace": bool(lease.spec.holder_identity),
        "refused requests": refusals(operator),
    } == {
        "identity": f"spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/api",
        "issued by this process": [(namespace, "api")],
        "Lease in its own namespace": True,
        "refused requests": [],
    }
