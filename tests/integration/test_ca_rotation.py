"""CA rotation with overlapping trust, and trust bundles in namespaces."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from kubernetes import client

from certmint.pki import decode
from tests.integration import kubelet
from tests.integration.support import (
    BIN,
    OperatorProcess,
    condition,
    create,
    events_for,
    leaf_of,
    read_secret,
    service_account,
    wait_for_condition,
    wait_until,
)

pytestmark = pytest.mark.usefixtures("running_operator")
PEERS = Path(__file__).with_name("rotation_peers.py")


def issuer_body(kube: client.ApiClient, namespace: str, name: str = "ca") -> dict[str, Any]:
    return dict(
        client.CustomObjectsApi(kube).get_namespaced_custom_object(
            "certmint.io", "v1alpha1", namespace, "issuers", name
        )
    )


def roles(body: dict[str, Any]) -> dict[str, list[str]]:
    """Fingerprints in the issuer's trust bundle, by role."""
    result: dict[str, list[str]] = {}
    for entry in body.get("status", {}).get("trustBundle") or ():
        result.setdefault(entry["role"], []).append(entry["fingerprintSHA256"])
    return result


def bundle_fingerprints(secret: client.V1Secret) -> set[str]:
    pem = base64.b64decode(secret.data["ca.crt"])
    return {decode.fingerprint_sha256(c) for c in x509.load_pem_x509_certificates(pem)}


def workload_certificate(
    kube: client.ApiClient, namespace: str, account: str, duration: str = "1m"
) -> None:
    service_account(kube, namespace, account)
    create(
        kube,
        {
            "kind": "Certificate",
            "metadata": {"name": account, "namespace": namespace},
            "spec": {
                "secretName": f"{account}-tls",
                "issuerRef": {"name": "ca"},
                "serviceAccountName": account,
                "duration": duration,
            },
        },
    )


class Kubelet:
    """Keeps Secret volumes in sync the way the kubelet does, from a background thread."""

    def __init__(self, kube: client.ApiClient, namespace: str, root: Path) -> None:
        self.kube, self.namespace, self.root = kube, namespace, root
        self.versions: dict[str, str] = {}
        self.updates = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def mount(self, secret_name: str) -> Path:
        secret = wait_until(
            lambda: read_secret(self.kube, self.namespace, secret_name), what=secret_name
        )
        directory = self.root / secret_name
        kubelet.publish(directory, kubelet.secret_files(secret))
        self.versions[secret_name] = secret.metadata.resource_version
        return directory

    def _run(self) -> None:
        while not self._stop.wait(0.25):  # the sync period, not a synchronization
            for name, version in list(self.versions.items()):
                secret = read_secret(self.kube, self.namespace, name)
                if secret is not None and secret.metadata.resource_version != version:
                    kubelet.publish(self.root / name, kubelet.secret_files(secret))
                    self.versions[name] = secret.metadata.resource_version
                    self.updates += 1

    def __enter__(self) -> Kubelet:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@pytest.fixture
def peers(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_generated_ca_rotates_by_itself_without_a_failed_handshake(
    kube: client.ApiClient,
    namespace: str,
    tmp_path: Path,
    running_operator: OperatorProcess,
    peers: list[subprocess.Popen[str]],
) -> None:
    # A CA of 3 minutes: prepare when 60% remains (after 72 s), activate when 25% remains
    # (after 135 s), which is also more than the longest leaf (1 minute) after prepare.
    create(
        kube,
        {
            "kind": "Issuer",
            "metadata": {"name": "ca", "namespace": namespace},
            "spec": {
                "ca": {
                    "secretName": "ca",
                    "generate": {
                        "commonName": "rotating root",
                        "duration": "3m",
                        "rotation": {
                            "prepareBeforePercentage": 60,
                            "activateBeforePercentage": 25,
                        },
                    },
                },
                "trustDomain": "rotation.test",
                "policy": {"minDuration": "1m", "defaultDuration": "1m", "maxDuration": "1m"},
            },
        },
    )
    workload_certificate(kube, namespace, "api")
    workload_certificate(kube, namespace, "web")
    wait_for_condition(kube, namespace, "api")
    wait_for_condition(kube, namespace, "web")
    first_root = issuer_body(kube, namespace)["status"]["ca"]["fingerprintSHA256"]
    stop_file = tmp_path / "stop"
    served = tmp_path / "served.jsonl"

    with Kubelet(kube, namespace, tmp_path / "volumes") as sync:
        server_dir, client_dir = sync.mount("api-tls"), sync.mount("web-tls")
        server = subprocess.Popen(
            [sys.executable, str(PEERS), "serve", str(server_dir), str(served)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        peers.append(server)
        assert server.stdout is not None
        port = json.loads(server.stdout.readline())["port"]
        server_id = f"spiffe://rotation.test/ns/{namespace}/sa/api"
        caller = subprocess.Popen(
            [sys.executable, str(PEERS), "call", str(client_dir), str(port), server_id,
             str(stop_file)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        peers.append(caller)

        prepared = wait_until(
            lambda: (
                (body := issuer_body(kube, namespace)).get("status", {}).get("rotation") and body
            ),
            timeout=120,
            what="the rotation to be prepared",
        )
        next_root = roles(prepared)["next"][0]
        assert prepared["status"]["rotation"]["reason"] == "Scheduled"
        assert roles(prepared)["current"] == [first_root]

        # Killing the operator between prepare and activate loses nothing.
        running_operator.kill()
        running_operator.start()
        after_restart = wait_until(
            lambda: (
                (body := issuer_body(kube, namespace)).get("status", {}).get("rotation")
                and roles(body).get("next")
                and body
            ),
            what="the prepared rotation after a restart",
        )
        assert roles(after_restart)["next"] == [next_root]

        activated = wait_until(
            lambda: issuer_body(kube, namespace)["status"]["ca"]["fingerprintSHA256"] == next_root,
            timeout=150,
            what="activation",
        )
        assert activated
        rotated = issuer_body(kube, namespace)
        # The promoted CA has run since prepare, so its own successor may already be
        # published as "next" (a 3-minute CA prepares when 72 s of it remain).
        settled = {role: fps for role, fps in roles(rotated).items() if role != "next"}
        assert settled == {"previous": [first_root], "current": [next_root]}
        for name in ("api", "web"):
            wait_for_condition(
                kube, namespace, name, timeout=60,
                where=lambda b: b["status"].get("issuerFingerprint") == next_root,
            )  # fmt: skip
        # The calls go on until the server has served the client's new leaf.
        new_client = leaf_of(
            wait_until(lambda: read_secret(kube, namespace, "web-tls"))
        ).serial_number

        def served_new_leaf() -> bool:
            lines = served.read_text().splitlines() if served.exists() else []
            return any(json.loads(line)["client_serial"] == new_client for line in lines)

        wait_until(served_new_leaf, timeout=30, what="a call with the client's new leaf")
        stop_file.write_text("stop")
        output, _ = caller.communicate(timeout=30)

    result = json.loads(output.strip().splitlines()[-1])
    print(
        f"\nmTLS calls across the rotation: {result['calls']}, failed: {result['failures']}, "
        f"server leaves seen: {len(result['server_serials'])}, "
        f"client leaves seen: {len(result['client_serials'])}, kubelet updates: {sync.updates}"
    )
    assert result["failures"] == 0, result["errors"]
    assert result["calls"] > 100
    assert len(result["server_serials"]) >= 2

    # ca.crt follows the issuer's bundle (by now the first root may have expired and
    # left it, and the short-lived new CA may be preparing its own successor).
    def ca_crt_matches_the_bundle() -> bool:
        bundle = {fp for fps in roles(issuer_body(kube, namespace)).values() for fp in fps}
        secret = read_secret(kube, namespace, "api-tls")
        return secret is not None and next_root in bundle and bundle_fingerprints(secret) == bundle

    wait_until(ca_crt_matches_the_bundle, what="ca.crt to equal the trust bundle")
    reasons = {e.reason for e in events_for(kube, namespace, "ca")}
    assert {"CARotationPrepared", "CARotated"} <= reasons


def test_rotate_ca_prepares_a_rotation_now(
    kube: client.ApiClient, namespace: str, kubeconfig_path: Path
) -> None:
    create(
        kube,
        {
            "kind": "Issuer",
            "metadata": {"name": "ca", "namespace": namespace},
            "spec": {
                "ca": {"secretName": "ca", "generate": {"commonName": "long root"}},
                "policy": {"maxDuration": "2h"},
            },
        },
    )
    ready = wait_until(
        lambda: condition(body := issuer_body(kube, namespace)).get("status") == "True" and body,
        what="the issuer",
    )

    result = subprocess.run(
        [str(BIN / "certmint"), "--kubeconfig", str(kubeconfig_path), "rotate-ca",
         f"{namespace}/ca"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "requested a CA rotation" in result.stdout

    prepared = wait_until(
        lambda: (body := issuer_body(kube, namespace))["status"].get("rotation") and body,
        what="the requested rotation",
    )
    rotation = prepared["status"]["rotation"]
    assert rotation["reason"] == "Requested"
    assert rotation["phase"] == "Prepared"
    prepared_at = decode_time(rotation["preparedAt"])
    assert decode_time(rotation["activateAfter"]) - prepared_at == 2 * 3600
    assert roles(prepared)["current"] == roles(ready)["current"]
    assert len(roles(prepared)["next"]) == 1
    next_secret = read_secret(kube, namespace, "ca-next")
    assert next_secret is not None


def decode_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_replacing_a_user_managed_ca_reissues_every_leaf_and_keeps_the_old_root(
    kube: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    def user_ca(name: str) -> dict[str, str]:
        key = tmp_path / f"{name}.key"
        subprocess.run(
            ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", str(key)],
            check=True, capture_output=True,
        )  # fmt: skip
        certificate = subprocess.run(
            ["openssl", "req", "-x509", "-new", "-key", str(key), "-subj", f"/CN={name}",
             "-days", "2", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
            check=True, capture_output=True,
        ).stdout  # fmt: skip
        return {
            "tls.crt": base64.b64encode(certificate).decode(),
            "tls.key": base64.b64encode(key.read_bytes()).decode(),
        }

    core = client.CoreV1Api(kube)
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name="user-ca"), type="kubernetes.io/tls",
                        data=user_ca("root-a")),
    )  # fmt: skip
    create(
        kube,
        {
            "kind": "Issuer",
            "metadata": {"name": "ca", "namespace": namespace},
            "spec": {"ca": {"secretName": "user-ca"}, "policy": {"maxDuration": "1h"}},
        },
    )
    names = [f"leaf{i}" for i in range(3)]
    for name in names:
        workload_certificate(kube, namespace, name, duration="1h")
    for name in names:
        wait_for_condition(kube, namespace, name)
    root_a = issuer_body(kube, namespace)["status"]["ca"]["fingerprintSHA256"]

    core.patch_namespaced_secret("user-ca", namespace, {"data": user_ca("root-b")})

    root_b = wait_until(
        lambda: (
            (fp := issuer_body(kube, namespace)["status"]["ca"]["fingerprintSHA256"]) != root_a
            and fp
        ),
        what="the issuer to notice the new CA",
    )
    body = issuer_body(kube, namespace)
    assert roles(body) == {"previous": [root_a], "current": [root_b]}
    previous = next(e for e in body["status"]["trustBundle"] if e["role"] == "previous")
    assert "retainUntil" in previous
    for name in names:
        certificate = wait_for_condition(
            kube, namespace, name,
            where=lambda b: b["status"].get("issuerFingerprint") == root_b,
        )  # fmt: skip
        assert certificate["status"]["revision"] == 2
        secret = read_secret(kube, namespace, f"{name}-tls")
        assert secret is not None
        assert leaf_of(secret).issuer.rfc4514_string() == "CN=root-b"
        assert bundle_fingerprints(secret) == {root_a, root_b}
    assert "CARotated" in {e.reason for e in events_for(kube, namespace, "ca")}


@pytest.fixture
def cluster_issuer(kube: client.ApiClient) -> Iterator[str]:
    name = f"trust-{uuid.uuid4().hex[:6]}"
    yield name
    api = client.CustomObjectsApi(kube)
    try:
        api.delete_cluster_custom_object("certmint.io", "v1alpha1", "clusterissuers", name)
    except client.ApiException as err:
        if err.status != 404:
            raise


def trust_config_map(kube: client.ApiClient, namespace: str) -> client.V1ConfigMap | None:
    try:
        return client.CoreV1Api(kube).read_namespaced_config_map("team-trust", namespace)
    except client.ApiException as err:
        if err.status == 404:
            return None
        raise


def test_trust_bundles_follow_namespaces_and_the_selector(
    kube: client.ApiClient, cluster_issuer: str
) -> None:
    core = client.CoreV1Api(kube)
    prefix = f"trust-{uuid.uuid4().hex[:6]}"
    create(
        kube,
        {
            "kind": "ClusterIssuer",
            "metadata": {"name": cluster_issuer},
            "spec": {
                "ca": {"secretName": f"{cluster_issuer}-ca", "generate": {"commonName": "t"}},
                "trustDistribution": {
                    "namespaceSelector": {"matchLabels": {"trust": prefix}},
                    "configMapName": "team-trust",
                    "clusterTrustBundle": True,
                },
            },
        },
    )
    late = f"{prefix}-late"
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=late, labels={"trust": prefix}))
    )

    config_map = wait_until(lambda: trust_config_map(kube, late), what="the trust ConfigMap")

    issuer = client.CustomObjectsApi(kube).get_cluster_custom_object(
        "certmint.io", "v1alpha1", "clusterissuers", cluster_issuer
    )
    root = issuer["status"]["ca"]["fingerprintSHA256"]
    pem_roots = x509.load_pem_x509_certificates(config_map.data["ca.crt"].encode())
    assert [decode.fingerprint_sha256(c) for c in pem_roots] == [root]
    spiffe = json.loads(config_map.data["bundle.spiffe"])
    assert spiffe["spiffe_sequence"] > 0
    assert spiffe["spiffe_refresh_hint"] > 0
    [key] = spiffe["keys"]
    assert key["use"] == "x509-svid"
    assert key["kty"] == "EC"
    x5c = x509.load_der_x509_certificate(base64.b64decode(key["x5c"][0]))
    assert decode.fingerprint_sha256(x5c) == root
    bundle = client.CustomObjectsApi(kube).get_cluster_custom_object(
        "certificates.k8s.io", "v1beta1", "clustertrustbundles",
        f"certmint.clusterissuer.{cluster_issuer}",
    )  # fmt: skip
    assert bundle["spec"]["trustBundle"] == config_map.data["ca.crt"]

    # Moving the selector to another label removes the ConfigMap there and adds it here.
    other = f"{prefix}-other"
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=other, labels={"trust": "other"}))
    )
    client.CustomObjectsApi(kube).patch_cluster_custom_object(
        "certmint.io", "v1alpha1", "clusterissuers", cluster_issuer,
        {"spec": {"trustDistribution": {"namespaceSelector": {"matchLabels": {"trust": "other"}}}}},
    )  # fmt: skip

    wait_until(
        lambda: trust_config_map(kube, other), what="the ConfigMap in the newly selected one"
    )
    wait_until(
        lambda: trust_config_map(kube, late) is None, what="the ConfigMap to leave the old one"
    )


def test_an_emergency_rotation_distrusts_the_old_root_at_once(
    kube: client.ApiClient, namespace: str, kubeconfig_path: Path
) -> None:
    create(
        kube,
        {
            "kind": "Issuer",
            "metadata": {"name": "ca", "namespace": namespace},
            "spec": {
                "ca": {"secretName": "ca", "generate": {"commonName": "compromised root"}},
                "policy": {"maxDuration": "1h"},
            },
        },
    )
    workload_certificate(kube, namespace, "api", duration="1h")
    old_root = wait_for_condition(kube, namespace, "api")["status"]["issuerFingerprint"]

    result = subprocess.run(
        [str(BIN / "certmint"), "--kubeconfig", str(kubeconfig_path), "rotate-ca",
         "--emergency", f"{namespace}/ca"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr

    new_root = wait_until(
        lambda: (
            (fp := issuer_body(kube, namespace)["status"]["ca"]["fingerprintSHA256"]) != old_root
            and fp
        ),
        what="the emergency activation",
    )
    assert roles(issuer_body(kube, namespace)) == {"current": [new_root]}
    wait_for_condition(
        kube, namespace, "api", where=lambda b: b["status"].get("issuerFingerprint") == new_root
    )
    wait_until(
        lambda: bundle_fingerprints(read_secret(kube, namespace, "api-tls")) == {new_root},
        what="ca.crt without the distrusted root",
    )
    assert read_secret(kube, namespace, "ca-previous") is not None  # the old key, for forensics
    assert "CARotatedEmergency" in {e.reason for e in events_for(kube, namespace, "ca")}
