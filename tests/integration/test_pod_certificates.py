"""Pod certificates on the real API server: a simulated kubelet asks, certmint signs.

The API server runs with the PodCertificateRequest API, the Node authorizer and
NodeRestriction (hack/cluster.py), so what it refuses (a bad proof of possession, another
node's pod) is refused by the real thing. Each test has its own namespace, an Issuer there
whose signer name is ``certmint.io/<namespace>``, and its own node.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
import ssl
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from kubernetes import client

from tests.integration.conftest import ROOT, Kubectl
from tests.integration.node_agent import Credential, NodeAgent, condition_of, generate_key
from tests.integration.support import (
    GROUP,
    VERSION,
    OperatorProcess,
    condition,
    create,
    custom,
    events_for,
    wait_until,
)
from tests.interop import builds, processes

CLAIMS = "certmint.io/claims"
TRUST_DOMAIN = "test.example"


# Fixtures --------------------------------------------------------------------------------
def signer_of(namespace: str) -> str:
    return f"certmint.io/{namespace}"


def pod_issuer(
    kube: client.ApiClient,
    namespace: str,
    *,
    pod_certificates: dict[str, Any] | None = None,
    policy: dict[str, Any] | None = None,
) -> None:
    """Issuer ``pods`` signing for ``certmint.io/<namespace>``; waits until it is Ready."""
    create(
        kube,
        {
            "kind": "Issuer",
            "metadata": {"name": "pods", "namespace": namespace},
            "spec": {
                "ca": {"secretName": "pods-ca", "generate": {"commonName": f"{namespace} pods"}},
                "trustDomain": TRUST_DOMAIN,
                "policy": policy or {"claims": [{"key": "role", "values": ["reader"]}]},
                "podCertificates": {"signerName": signer_of(namespace), **(pod_certificates or {})},
            },
        },
    )

    def ready() -> bool:
        body = custom(kube).get_namespaced_custom_object(
            GROUP, VERSION, namespace, "issuers", "pods"
        )
        return condition(body).get("status") == "True"

    wait_until(ready, what=f"Issuer {namespace}/pods Ready")


def trust_bundle(kube: client.ApiClient, signer: str) -> bytes:
    """The ClusterTrustBundle of ``signer``, as a ``clusterTrustBundle`` projection selects it."""

    def published() -> str | None:
        listing = custom(kube).list_cluster_custom_object(
            "certificates.k8s.io",
            "v1beta1",
            "clustertrustbundles",
            field_selector=f"spec.signerName={signer}",
        )
        items = listing.get("items") or []
        return items[0]["spec"]["trustBundle"] if items else None

    return wait_until(published, what=f"a ClusterTrustBundle for {signer}").encode()


@pytest.fixture
def agent(kube: client.ApiClient, kubeconfig_path: Path, namespace: str) -> Iterator[NodeAgent]:
    """A registered node named after the test's namespace, and ServiceAccount ``api``."""
    client.CoreV1Api(kube).create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="api"))
    )
    node = NodeAgent(kube, kubeconfig_path, f"node-{namespace}"[:63])
    node.register()
    yield node
    node.close()


def write_bundle(credential: Credential, directory: Path, ca_pem: bytes) -> dict[str, Path]:
    """The files a pod sees: the credential bundle (key then chain) and the trust bundle."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "bundle": directory / "credentialbundle.pem",
        "chain": directory / "chain.pem",
        "ca": directory / "ca.crt",
    }
    files["bundle"].write_bytes(credential.bundle_pem)
    files["chain"].write_bytes(credential.chain_pem)
    files["ca"].write_bytes(ca_pem)
    return files


def openssl_verify(files: dict[str, Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", "verify", "-CAfile", str(files["ca"]), str(files["chain"])],
        capture_output=True,
        text=True,
        check=False,
    )


def metric(operator: OperatorProcess, name: str, **labels: str) -> float:
    """The value of one sample (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in operator.metrics().splitlines():
        if line.startswith(f"{name}{{"):
            sample, value = line.rsplit(" ", 1)
            found = ",".join(sorted(sample[len(name) + 1 : -1].split(",")))
            if found == wanted:
                return float(value)
    return 0.0


def spiffe_id(namespace: str, account: str = "api") -> str:
    return f"spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/{account}"


# Issued ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("form", "key_type"),
    [
        ("pkcs10", "ECDSAP256"),
        ("pkcs10", "ED25519"),
        ("pkcs10", "RSA3072"),
        ("proof", "ECDSAP384"),
        ("proof", "ED25519"),
        ("proof", "RSA3072"),
    ],
)
def test_a_pod_gets_an_svid_that_openssl_verifies_against_the_signer_trust_bundle(  # noqa: PLR0917  # pytest passes fixtures by name
    kube: client.ApiClient,
    namespace: str,
    agent: NodeAgent,
    running_operator: OperatorProcess,
    tmp_path: Path,
    form: str,
    key_type: str,
) -> None:
    pod_issuer(kube, namespace)
    pod = agent.bind_pod(namespace, "api-0", "api")
    before = metric(
        running_operator,
        "certmint_issuance_total",
        issuer_name="pods",
        issuer_kind="Issuer",
        result="success",
    )
    request = agent.request(
        pod,
        signer_of(namespace),
        key_type,
        form=form,
        annotations={CLAIMS: json.dumps({"role": ["reader"]})},
    )
    credential = agent.credential(request)
    files = write_bundle(credential, tmp_path, trust_bundle(kube, signer_of(namespace)))
    verified = openssl_verify(files)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    leaf = credential.leaf
    assert leaf.public_key() == credential.key.public_key()
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [spiffe_id(namespace)]
    status = credential.status
    assert status["notBefore"] == leaf.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert status["notAfter"] == leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == dt.timedelta(hours=24)
    wait_until(
        lambda: [e for e in events_for(kube, namespace, request.name) if e.reason == "Issued"],
        what="the Issued Event",
    )
    wait_until(
        lambda: (
            metric(
                running_operator,
                "certmint_issuance_total",
                issuer_name="pods",
                issuer_kind="Issuer",
                result="success",
            )
            == before + 1
        ),
        what="certmint_issuance_total to count the issuance",
    )


def test_the_go_peer_verifies_a_pods_credential_bundle_in_mutual_tls(
    kube: client.ApiClient,
    namespace: str,
    agent: NodeAgent,
    running_operator: OperatorProcess,
    tmp_path: Path,
) -> None:
    """Go's crypto/tls loads the kubelet's bundle file as is and verifies the other pod."""
    go_peer = builds.go_peer("go")
    pod_issuer(kube, namespace)
    server_pod = agent.bind_pod(namespace, "server-0", "api")
    client_pod = agent.bind_pod(namespace, "client-0", "api")
    annotations = {CLAIMS: json.dumps({"role": "reader"})}
    server = agent.credential(agent.request(server_pod, signer_of(namespace)))
    client_ = agent.credential(
        agent.request(client_pod, signer_of(namespace), "ED25519", annotations=annotations)
    )
    ca_pem = trust_bundle(kube, signer_of(namespace))
    server_files = write_bundle(server, tmp_path / "server", ca_pem)
    client_files = write_bundle(client_, tmp_path / "client", ca_pem)
    parsed = processes.run_client([go_peer, "parse", client_files["chain"]])
    assert parsed == {"identity": spiffe_id(namespace), "claims": {"role": ["reader"]}}
    bundle = server_files["bundle"]
    with processes.ServerProcess([go_peer, "server", bundle, bundle, server_files["ca"]]) as go:
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(client_files["ca"])
        )
        context.check_hostname = False  # pod certificates name a SPIFFE ID, checked below
        context.load_cert_chain(client_files["bundle"])
        with (
            socket.create_connection(("127.0.0.1", go.port), timeout=20) as raw,
            context.wrap_socket(raw) as tls,
        ):
            peer = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True) or b"")
            tls.sendall(b"hello\n")
            tls.recv(4096)
        seen = go.result()["peer"]
    assert seen["identity"] == spiffe_id(namespace)
    assert seen["claims"] == {"role": ["reader"]}
    assert peer.serial_number == server.leaf.serial_number


def test_the_signer_trust_bundle_goes_with_its_issuer(
    kube: client.ApiClient, namespace: str, running_operator: OperatorProcess
) -> None:
    pod_issuer(kube, namespace)
    trust_bundle(kube, signer_of(namespace))
    custom(kube).delete_namespaced_custom_object(GROUP, VERSION, namespace, "issuers", "pods")
    wait_until(
        lambda: not custom(kube).list_cluster_custom_object(
            "certificates.k8s.io", "v1beta1", "clustertrustbundles",
            field_selector=f"spec.signerName={signer_of(namespace)}",
        )["items"],
        what="the ClusterTrustBundle to be deleted with its issuer",
    )  # fmt: skip


# Refresh ---------------------------------------------------------------------------------
def test_the_kubelet_refreshes_at_begin_refresh_at_with_a_new_key(
    kube: client.ApiClient,
    namespace: str,
    agent: NodeAgent,
    running_operator: OperatorProcess,
    tmp_path: Path,
) -> None:
    """One-hour certificates (the API's shortest): the node's clock is moved to
    beginRefreshAt, because the API server allows no refresh earlier than ten minutes
    after notBefore; the signing, the bounds and the refresh are all real."""
    offset = [dt.timedelta(0)]
    agent.clock = lambda: dt.datetime.now(dt.UTC) + offset[0]
    pod_issuer(kube, namespace)
    pod = agent.bind_pod(namespace, "api-0", "api")
    first = agent.credential(agent.request(pod, signer_of(namespace), max_expiration_seconds=3600))
    leaf = first.leaf
    not_before, not_after = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    assert not_after - not_before == dt.timedelta(hours=1)
    # A third of the lifetime before notAfter, moved earlier by up to 10 % of that window.
    window = dt.timedelta(minutes=20)
    assert not_after - window * 1.1 - dt.timedelta(seconds=1) <= first.begin_refresh_at
    assert first.begin_refresh_at <= not_after - window
    assert agent.clock() < first.begin_refresh_at
    offset[0] = first.begin_refresh_at - dt.datetime.now(dt.UTC)
    second = agent.refresh_when_due(pod, first, signer_of(namespace), "ECDSAP256")
    assert second.leaf.serial_number != leaf.serial_number
    assert second.key.public_key() != first.key.public_key()
    ca_pem = trust_bundle(kube, signer_of(namespace))
    for index, credential in enumerate((first, second)):
        verified = openssl_verify(write_bundle(credential, tmp_path / str(index), ca_pem))
        assert verified.returncode == 0, verified.stdout + verified.stderr


# Denied ----------------------------------------------------------------------------------
DENIALS = [
    pytest.param(
        {"policy": {"allowedNamespaces": ["elsewhere"]}},
        {},
        "NamespaceNotAllowed",
        r'namespace "{ns}" may not use Issuer "pods"; its policy allows namespaces matching '
        r"elsewhere",
        id="a namespace the policy does not serve",
    ),
    pytest.param(
        {},
        {"annotations": {CLAIMS: json.dumps({"role": ["admin"]})}},
        "ClaimNotAllowed",
        r'claim role="admin" is not granted to namespace "{ns}" by Issuer "pods"; values of '
        r'role granted here: "reader"',
        id="a claim the policy does not grant",
    ),
    pytest.param(
        {"pod_certificates": {"keyTypes": ["ECDSAP256"]}},
        {"key_type": "RSA3072"},
        "UnsupportedKeyType",
        r'key type RSA3072 is not accepted by Issuer "{ns}/pods"; use one of ECDSAP256',
        id="a key type the issuer refuses",
    ),
]


@pytest.mark.parametrize(("issuer", "ask", "reason", "message"), DENIALS)
def test_a_request_the_policy_refuses_is_denied_with_an_event_and_a_metric(  # noqa: PLR0917  # pytest passes fixtures by name
    kube: client.ApiClient,
    namespace: str,
    agent: NodeAgent,
    running_operator: OperatorProcess,
    issuer: dict[str, Any],
    ask: dict[str, Any],
    reason: str,
    message: str,
) -> None:
    pod_issuer(kube, namespace, **issuer)
    pod = agent.bind_pod(namespace, "api-0", "api")
    denials = metric(running_operator, "certmint_policy_denials_total", reason=reason)
    request = agent.request(pod, signer_of(namespace), **ask)
    answer = condition_of(agent.wait(request))
    expected = message.replace("{ns}", namespace)
    assert (answer["type"], answer["reason"], answer["message"]) == ("Denied", reason, expected)
    event = wait_until(
        lambda: [e for e in events_for(kube, namespace, request.name) if e.reason == "Denied"],
        what="the Denied Event",
    )[0]
    assert (event.type, event.message) == ("Warning", f"{reason}: {expected}")
    if reason != "UnsupportedKeyType":
        wait_until(
            lambda: (
                metric(running_operator, "certmint_policy_denials_total", reason=reason)
                == denials + 1
            ),
            what=f"certmint_policy_denials_total{{reason={reason}}} to count it",
        )


# Refused by the API server ------------------------------------------------------------------
def test_a_wrong_proof_of_possession_is_refused_by_the_api_server_with_422(
    kube: client.ApiClient, namespace: str, agent: NodeAgent
) -> None:
    pod = agent.bind_pod(namespace, "api-0", "api")
    key, other = generate_key("ECDSAP256"), generate_key("ECDSAP256")
    body = agent.request_body(pod, signer_of(namespace), key, form="proof")
    forged = agent.request_body(pod, signer_of(namespace), other, form="proof")
    body["spec"]["proofOfPossession"] = forged["spec"]["proofOfPossession"]
    with pytest.raises(client.ApiException) as refused:
        agent.create(body, key)
    assert refused.value.status == 422
    assert "spec.proofOfPossession: Invalid value: could not verify proof-of-possession" in str(
        refused.value.body
    )


def test_a_node_asking_for_another_nodes_pod_is_refused_by_the_api_server_with_403(
    kube: client.ApiClient, kubeconfig_path: Path, namespace: str, agent: NodeAgent
) -> None:
    pod = agent.bind_pod(namespace, "api-0", "api")
    intruder = NodeAgent(kube, kubeconfig_path, f"intruder-{namespace}"[:63])
    intruder.register()
    try:
        for node in (None, (agent.name, agent.uid)):  # its own name, then the pod's node
            with pytest.raises(client.ApiException) as refused:
                intruder.request(pod, signer_of(namespace), node=node)
            assert refused.value.status == 403
            message = json.loads(refused.value.body)["message"]
            assert re.search(r"is not running on node|which is not the requesting node", message)
    finally:
        intruder.close()


# Ignored ---------------------------------------------------------------------------------
def test_requests_for_other_signers_are_left_alone(
    kube: client.ApiClient, namespace: str, agent: NodeAgent, running_operator: OperatorProcess
) -> None:
    pod_issuer(kube, namespace)
    pod = agent.bind_pod(namespace, "api-0", "api")
    others = [
        agent.request(pod, "example.com/other-signer"),
        agent.request(pod, f"certmint.io/nobody-{namespace}"[:75]),
    ]
    # Created after the others, answered through the same watch and queue: once it is
    # issued, certmint has seen the others and answered nothing.
    agent.credential(agent.request(pod, signer_of(namespace)))
    for other in others:
        assert condition_of(agent.read(other)) == {}
        assert events_for(kube, namespace, other.name) == []


# Restart ---------------------------------------------------------------------------------
ISSUED_LINE = re.compile(r"issued pod certificate serial ([0-9a-f]+) to ([\w.-]+)/([\w.-]+) for")


def answered_names(kube: client.ApiClient, namespace: str) -> set[str]:
    """The requests of a namespace that have an answer, in one LIST."""
    listing = custom(kube).list_namespaced_custom_object(
        "certificates.k8s.io", "v1beta1", namespace, "podcertificaterequests"
    )
    return {item["metadata"]["name"] for item in listing["items"] if condition_of(item)}


def test_an_operator_killed_mid_flight_signs_each_request_once_after_its_restart(
    kube: client.ApiClient, namespace: str, agent: NodeAgent, running_operator: OperatorProcess
) -> None:
    pod_issuer(kube, namespace)
    pods = [agent.bind_pod(namespace, f"api-{index}", "api") for index in range(4)]
    running_operator.stop()
    requests = [agent.request(pods[index % 4], signer_of(namespace)) for index in range(200)]
    first_log = running_operator.start(wait_healthy=False).log_path
    wait_until(lambda: answered_names(kube, namespace), timeout=60, what="the first answer")
    running_operator.kill()
    answered_before_restart = answered_names(kube, namespace)
    second_log = running_operator.start().log_path
    credentials = {r.name: agent.credential(r, timeout=90) for r in requests}
    signed: dict[str, list[str]] = {}
    for log in (first_log, second_log):
        for serial, pcr_namespace, name in ISSUED_LINE.findall(log.read_text()):
            if pcr_namespace == namespace:
                signed.setdefault(name, []).append(serial)
    assert 0 < len(answered_before_restart) < len(requests), "the kill was not mid-flight"
    # Every request answered exactly once, each with the serial its one signing logged.
    assert {name: serials for name, serials in signed.items() if len(serials) > 1} == {}
    assert set(signed) | answered_before_restart == set(credentials)
    for name, credential in credentials.items():
        if name in signed:
            assert signed[name] == [format(credential.leaf.serial_number, "x")]


# With the deploy RBAC only -------------------------------------------------------------------
FORBIDDEN = re.compile(r"forbidden|HTTP 403|\"code\":\s*403", re.IGNORECASE)


def test_the_operator_signs_with_nothing_but_the_rbac_deploy_grants(  # noqa: PLR0917  # pytest passes fixtures by name
    kube: client.ApiClient,
    kubectl: Kubectl,
    service_account_kubeconfig: Callable[[str, str], Path],
    running_operator: OperatorProcess,
    namespace: str,
    agent: NodeAgent,
    tmp_path: Path,
) -> None:
    """``sign`` on certmint.io/* answers the request, ``attest`` publishes the bundle."""
    kubectl("apply", "-k", str(ROOT / "deploy"))
    running_operator.stop()  # it would hold the Lease; the fixture starts it again
    identity = service_account_kubeconfig("certmint-system", "certmint")
    process = OperatorProcess(identity, tmp_path, name="certmint-sa")
    try:
        process.start("-A")
        pod_issuer(kube, namespace)
        pod = agent.bind_pod(namespace, "api-0", "api")
        credential = agent.credential(agent.request(pod, signer_of(namespace)))
        files = write_bundle(credential, tmp_path / "pod", trust_bundle(kube, signer_of(namespace)))
        verified = openssl_verify(files)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        refused = [line for line in process.log().splitlines() if FORBIDDEN.search(line)]
        assert [line for line in refused if "being terminated" not in line] == []
    finally:
        process.stop()
