"""``certmint run --claims-oid``: an organization's own OID, end to end.

The session operator stops for this module and an operator with ``--claims-oid`` takes
over (the same Lease, so never two at once); the session operator is back afterwards.
The certificate it issues carries the claims under the organization's OID only, and the
readers find them there when given the OID: Python's workload library, ``certmint
inspect`` and the Go peer.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from kubernetes import client

from certmint import workload
from certmint.pki import claims as pki_claims
from tests.integration import support
from tests.interop import builds, processes

OWN_OID = "1.3.6.1.4.1.55555.9.1"


@pytest.fixture(scope="module")
def own_oid_operator(
    operator: support.OperatorProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[support.OperatorProcess]:
    """An operator with ``--claims-oid``, in place of the session operator."""
    operator.stop()
    own = support.OperatorProcess(
        operator.kubeconfig,
        tmp_path_factory.mktemp("own-oid-operator"),
        "own-oid-operator",
        extra_args=("--claims-oid", OWN_OID),
    )
    try:
        yield own.start()
    finally:
        own.stop()
        operator.start()


def test_the_operator_writes_claims_under_its_claims_oid_and_readers_given_it_find_them(
    kube: client.ApiClient, own_oid_operator: support.OperatorProcess, tmp_path: Path
) -> None:
    namespace = f"claims-oid-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(kube)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    try:
        support.ca_issuer(
            kube, namespace, policy={"claims": [{"key": "role", "values": ["reader"]}]}
        )
        support.service_account(kube, namespace, "api")
        support.certificate(kube, namespace, serviceAccountName="api", claims={"role": ["reader"]})
        support.wait_for_condition(kube, namespace, "web", timeout=120)
        secret = support.read_secret(kube, namespace, "web-tls")
        assert secret is not None
        leaf = support.leaf_of(secret)
        files = support.write_files(secret, tmp_path / "web")
    finally:
        client.CustomObjectsApi(kube).delete_collection_namespaced_custom_object(
            "certmint.io", "v1alpha1", namespace, "certificates"
        )
        core.delete_namespace(namespace)

    unknown = [
        ext.oid.dotted_string
        for ext in leaf.extensions
        if isinstance(ext.value, x509.UnrecognizedExtension)
    ]
    assert unknown == [OWN_OID]  # neither certmint's OID nor the legacy one
    assert pki_claims.claims_of(leaf) == {}
    own = workload.peer_from_certificate(leaf, claims_oid=OWN_OID)
    assert own.claims == {"role": ["reader"]}

    inspected = subprocess.run(
        [str(support.BIN / "certmint"), "inspect", "--json", "--claims-oid", OWN_OID,
         str(files / "tls.crt")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert json.loads(inspected.stdout)["certificate"]["claims"] == {"role": ["reader"]}

    go = builds.go_peer("go")
    parsed = processes.run_client([go, "-claims-oid", OWN_OID, "parse", files / "tls.crt"])
    assert parsed["claims"] == {"role": ["reader"]}
