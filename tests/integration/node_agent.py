"""A simulated kubelet that asks for pod certificates, as the real one does for a
``podCertificate`` projected volume (KEP-4317).

It authenticates as a node: a client certificate ``CN=system:node:<name>, O=system:nodes``
minted from the local control plane's client CA (``.local/pki/client-ca.*``), so the API
server's Node authorizer and NodeRestriction admission judge it exactly as they judge a
kubelet. It registers its Node; a Pod is bound to it by the admin (the scheduler's job).
For each request it generates a fresh key of the projection's ``keyType``, creates a
PodCertificateRequest naming the pod, its ServiceAccount and the node with their UIDs, in
either form the v1.36 API accepts (``stubPKCS10Request``, or the deprecated
``pkixPublicKey`` + ``proofOfPossession`` over the pod UID), waits for a terminal
condition and, once issued, refreshes with a new key at ``beginRefreshAt``.

Time is read through ``clock`` so a test can move the node's notion of "now": the API
server refuses lifetimes under one hour and a ``beginRefreshAt`` earlier than ten minutes
after ``notBefore``, so a refresh in real time would hold a test for minutes.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes import client

from tests.integration.support import wait_until

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
Form = Literal["pkcs10", "proof"]
#: The ``keyType`` values of a ``podCertificate`` projection.
KEY_TYPES = ("RSA3072", "RSA4096", "ECDSAP256", "ECDSAP384", "ECDSAP521", "ED25519")
TERMINAL = ("Issued", "Denied", "Failed")
PLURAL = "podcertificaterequests"


def generate_key(key_type: str) -> PrivateKey:
    """A new private key of a projection ``keyType``, as the kubelet makes one."""
    if key_type.startswith("RSA"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))
    if key_type == "ED25519":
        return ed25519.Ed25519PrivateKey.generate()
    curve = {"ECDSAP256": ec.SECP256R1, "ECDSAP384": ec.SECP384R1, "ECDSAP521": ec.SECP521R1}
    return ec.generate_private_key(curve[key_type]())


def proof_of_possession(key: PrivateKey, pod_uid: str) -> bytes:
    """The deprecated form's proof: the key's signature over the pod UID's bytes."""
    data = pod_uid.encode()
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    return key.sign(data, pss, hashes.SHA256())


def stub_csr_der(key: PrivateKey) -> bytes:
    """An empty PKCS#10 request signed by ``key``: what the kubelet sends."""
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    return csr.sign(key, algorithm).public_bytes(serialization.Encoding.DER)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _pem(obj: x509.Certificate | PrivateKey) -> bytes:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def node_identity(pki: Path, node: str, directory: Path) -> tuple[Path, Path]:
    """A client certificate and key for ``system:node:<node>`` from the client CA."""
    ca_cert = x509.load_pem_x509_certificate((pki / "client-ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((pki / "client-ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node}"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=4))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{node}.crt", directory / f"{node}.key"
    cert_path.write_bytes(_pem(cert))
    key_path.write_bytes(_pem(key))
    key_path.chmod(0o600)
    return cert_path, key_path


@dataclasses.dataclass
class Request:
    """One PodCertificateRequest this node made, with the key it holds for it."""

    namespace: str
    name: str
    key: PrivateKey
    created: dt.datetime


@dataclasses.dataclass
class Credential:
    """What the kubelet writes into the pod's volume, and when to refresh it."""

    key: PrivateKey
    chain_pem: bytes
    begin_refresh_at: dt.datetime
    request: Request
    status: Mapping[str, Any]

    @property
    def bundle_pem(self) -> bytes:
        """The ``credentialBundlePath`` file: the PKCS#8 key first, then the chain."""
        return _pem(self.key) + self.chain_pem

    @property
    def leaf(self) -> x509.Certificate:
        return x509.load_pem_x509_certificates(self.chain_pem)[0]


def condition_of(body: Mapping[str, Any]) -> dict[str, Any]:
    """The terminal condition of a PodCertificateRequest, {} while pending."""
    for item in (body.get("status") or {}).get("conditions") or ():
        if item.get("type") in TERMINAL and item.get("status") == "True":
            return dict(item)
    return {}


class NodeAgent:
    """The certificate side of one kubelet, on the real API server."""

    def __init__(
        self,
        admin: client.ApiClient,
        kubeconfig: Path,
        name: str,
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.admin = admin
        self.name = name
        self.clock = clock
        workdir = Path(tempfile.mkdtemp(prefix=f"node-{name}-"))
        cert, key = node_identity(kubeconfig.parent / "pki", name, workdir)
        configuration = client.Configuration()
        configuration.host = admin.configuration.host
        configuration.ssl_ca_cert = admin.configuration.ssl_ca_cert
        configuration.cert_file, configuration.key_file = str(cert), str(key)
        self.api = client.ApiClient(configuration)
        self.uid = ""

    def register(self) -> str:
        """Creates this node's Node object with its own identity; returns its UID."""
        core = client.CoreV1Api(self.api)
        body = client.V1Node(metadata=client.V1ObjectMeta(name=self.name))
        try:
            self.uid = str(core.create_node(body).metadata.uid)
        except client.ApiException as err:
            if err.status != 409:
                raise
            self.uid = str(core.read_node(self.name).metadata.uid)
        return self.uid

    def bind_pod(self, namespace: str, name: str, service_account: str) -> client.V1Pod:
        """A Pod on this node (created by the admin, as if scheduled); its SA must exist."""
        pod = client.V1Pod(
            metadata=client.V1ObjectMeta(name=name, namespace=namespace),
            spec=client.V1PodSpec(
                node_name=self.name,
                service_account_name=service_account,
                containers=[client.V1Container(name="app", image="app:1")],
            ),
        )
        return client.CoreV1Api(self.admin).create_namespaced_pod(namespace, pod)

    def request_body(
        self,
        pod: client.V1Pod,
        signer_name: str,
        key: PrivateKey,
        *,
        form: Form = "pkcs10",
        max_expiration_seconds: int | None = None,
        annotations: Mapping[str, str] | None = None,
        node: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        """The PodCertificateRequest the kubelet would create (``node`` overrides name/UID)."""
        account = client.CoreV1Api(self.admin).read_namespaced_service_account(
            pod.spec.service_account_name, pod.metadata.namespace
        )
        node_name, node_uid = node or (self.name, self.uid)
        spec: dict[str, Any] = {
            "signerName": signer_name,
            "podName": pod.metadata.name,
            "podUID": pod.metadata.uid,
            "serviceAccountName": account.metadata.name,
            "serviceAccountUID": account.metadata.uid,
            "nodeName": node_name,
            "nodeUID": node_uid,
        }
        if form == "pkcs10":
            spec["stubPKCS10Request"] = _b64(stub_csr_der(key))
        else:
            public_der = key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            spec["pkixPublicKey"] = _b64(public_der)
            spec["proofOfPossession"] = _b64(proof_of_possession(key, pod.metadata.uid))
        if max_expiration_seconds is not None:
            spec["maxExpirationSeconds"] = max_expiration_seconds
        if annotations:
            spec["unverifiedUserAnnotations"] = dict(annotations)
        return {
            "apiVersion": "certificates.k8s.io/v1beta1",
            "kind": "PodCertificateRequest",
            "metadata": {
                "generateName": f"{pod.metadata.name}-",
                "namespace": pod.metadata.namespace,
            },
            "spec": spec,
        }

    def create(self, body: Mapping[str, Any], key: PrivateKey) -> Request:
        """Creates a PodCertificateRequest as this node; ApiException on refusal."""
        namespace = body["metadata"]["namespace"]
        created = client.CustomObjectsApi(self.api).create_namespaced_custom_object(
            "certificates.k8s.io", "v1beta1", namespace, PLURAL, dict(body)
        )
        return Request(namespace, created["metadata"]["name"], key, self.clock())

    def request(
        self, pod: client.V1Pod, signer_name: str, key_type: str = "ECDSAP256", **options: Any
    ) -> Request:
        """Generates a key of ``key_type`` and asks ``signer_name`` for a certificate."""
        key = generate_key(key_type)
        return self.create(self.request_body(pod, signer_name, key, **options), key)

    def read(self, request: Request) -> dict[str, Any]:
        """The request as this node sees it, {} until it is listed.

        A list with a ``spec.nodeName`` field selector, as the kubelet's informer does: the
        Node authorizer allows it at once, while a GET waits for the authorizer's graph to
        learn the new request.
        """
        api = client.CustomObjectsApi(self.api)
        found = api.list_namespaced_custom_object(
            "certificates.k8s.io", "v1beta1", request.namespace, PLURAL,
            field_selector=f"spec.nodeName={self.name},metadata.name={request.name}",
        )  # fmt: skip
        items = found.get("items") or []
        return dict(items[0]) if items else {}

    def wait(self, request: Request, timeout: float = 60.0) -> dict[str, Any]:
        """Waits for a terminal condition (Issued, Denied or Failed); returns the object."""
        return wait_until(
            lambda: body if condition_of(body := self.read(request)) else None,
            timeout=timeout,
            what=f"PodCertificateRequest {request.namespace}/{request.name} to be answered",
        )

    def credential(self, request: Request, timeout: float = 60.0) -> Credential:
        """Waits until ``request`` is Issued; fails on Denied or Failed."""
        body = self.wait(request, timeout)
        answer = condition_of(body)
        assert answer["type"] == "Issued", f"not issued: {answer}"
        status = body["status"]
        return Credential(
            key=request.key,
            chain_pem=status["certificateChain"].encode(),
            begin_refresh_at=dt.datetime.fromisoformat(status["beginRefreshAt"]),
            request=request,
            status=status,
        )

    def refresh_when_due(
        self,
        pod: client.V1Pod,
        current: Credential,
        signer_name: str,
        key_type: str,
        **options: Any,
    ) -> Credential:
        """Waits (on ``clock``) until ``beginRefreshAt``, then requests again with a new key."""
        wait_until(
            lambda: self.clock() >= current.begin_refresh_at,
            timeout=60,
            what=f"the node clock to reach beginRefreshAt {current.begin_refresh_at}",
        )
        return self.credential(self.request(pod, signer_name, key_type, **options))

    def close(self) -> None:
        self.api.close()
