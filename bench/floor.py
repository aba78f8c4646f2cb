"""The floor: the least work that turns a Certificate into a Ready one (not certmint).

A plain script with the client library certmint uses (the synchronous ``kubernetes``
client, raw JSON, a thread pool as wide as the operator's ``--workers``). For each
Certificate name it reads on stdin it does only what cannot be avoided:

1. generate an ECDSA P-256 key and sign a leaf for ``<name>.<namespace>.svc`` with an
   ECDSA P-256 root CA (the same kind of CA the benchmark's ClusterIssuer generates);
2. create the ``kubernetes.io/tls`` Secret (``tls.crt``, ``tls.key``, ``ca.crt``, and the
   label and annotations certmint writes);
3. merge-patch the Certificate's status to Ready, with every field certmint writes.

No watch, no cache, no policy, no Events, no retries: two API writes per certificate.
The benchmark (``bench/phases.py``) waits for the line ``ready`` on stdout, pipes in each
name as soon as its Certificate has been created, as the operator would see it arrive,
and reads one JSON document from stdout at the end: when each name was done (by the
script's clock; the benchmark times Ready with its own watch, as for certmint), and the
failures.

Run alone: ``printf 'a\\nb\\n' | python bench/floor.py --kubeconfig K --namespace NS``
(the Certificates ``a`` and ``b`` must exist in ``NS``).
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import dataclasses
import datetime
import hashlib
import json
import sys
import threading
import time
import uuid
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes import client, config

LEAF_LIFETIME = datetime.timedelta(hours=24)
BACKDATE = datetime.timedelta(minutes=5)


@dataclasses.dataclass(frozen=True)
class FloorCA:
    """A root CA held in memory."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey = dataclasses.field(repr=False)

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


def generate_ca(now: datetime.datetime) -> FloorCA:
    """An ECDSA P-256 root CA valid for ten years from ``now``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench floor root")])
    public_key = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )
    return FloorCA(certificate, key)


def issue_leaf(ca: FloorCA, dns_name: str, now: datetime.datetime) -> tuple[bytes, bytes]:
    """A new key and a leaf for ``dns_name`` signed by ``ca``, with certmint's extensions.

    Returns:
        ``(certificate_pem, key_pem)``; the key as unencrypted PKCS#8 PEM.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    public_key = key.public_key()
    ca_ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca.certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + LEAF_LIFETIME)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=True)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski.value),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


#: The label and annotations certmint puts on a Secret (api/resources.py), as the same
#: bytes for the API server to store. The label has a key of its own: no operator watches
#: the references' Secrets.
LABEL = "bench.certmint.io/certificate-name"
ANNOTATIONS = ("certificate-name", "certificate-uid", "issuer-name", "issuer-kind",
               "identity", "serial", "revision", "spec-hash", "secret-deletion-policy")  # fmt: skip


def secret_body(
    namespace: str, name: str, certificate_pem: bytes, key_pem: bytes, ca_pem: bytes
) -> dict[str, Any]:
    """The ``kubernetes.io/tls`` Secret for one Certificate, in the shape certmint writes."""
    serial = format(x509.load_pem_x509_certificate(certificate_pem).serial_number, "x")
    values = (name, str(uuid.uuid4()), "bench", "ClusterIssuer", "", serial, "1",
              uuid.uuid4().hex, "Retain")  # fmt: skip
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {
            "name": f"{name}-tls",
            "namespace": namespace,
            "labels": {LABEL: name},
            "annotations": {
                f"certmint.io/{key}": value for key, value in zip(ANNOTATIONS, values, strict=True)
            },
        },
        "data": {
            "tls.crt": _b64(certificate_pem),
            "tls.key": _b64(key_pem),
            "ca.crt": _b64(ca_pem),
        },
    }


def stamp(moment: datetime.datetime) -> str:
    """A status timestamp as the API writes it (RFC 3339, seconds, UTC)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(
    type_: str, status: str, reason: str, message: str, at: datetime.datetime
) -> dict[str, Any]:
    """One status condition, first observed at ``at``, for generation 1."""
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": stamp(at),
        "observedGeneration": 1,
    }


def status_patch(now: datetime.datetime) -> dict[str, Any]:
    """The merge patch that makes a Certificate Ready: every field certmint writes.

    certmint's status after an issuance (docs/api.md): the ``Ready`` and ``Issuing``
    conditions, serial, validity, renewal time, revision and the signing CA's fingerprint
    (no identity: the benchmark's Certificates name no ServiceAccount).
    """
    up_to_date = "the certificate is up to date and has not expired"
    return {
        "status": {
            "conditions": [
                condition("Ready", "True", "Ready", up_to_date, now),
                condition("Issuing", "False", "Issued", "no issuance in progress", now),
            ],
            "serialNumber": hashlib.sha256(uuid.uuid4().bytes).hexdigest()[:40],  # 20 bytes
            "notBefore": stamp(now - BACKDATE),
            "notAfter": stamp(now + LEAF_LIFETIME),
            "renewalTime": stamp(now + LEAF_LIFETIME * 2 / 3),
            "revision": 1,
            "issuerFingerprint": hashlib.sha256(uuid.uuid4().bytes).hexdigest(),
        }
    }


class Floor:
    """Issues Certificates of one namespace with the minimum of work."""

    def __init__(self, api_client: client.ApiClient, namespace: str, ca: FloorCA) -> None:
        self.namespace = namespace
        self.ca = ca
        self._core = client.CoreV1Api(api_client)
        self._custom = client.CustomObjectsApi(api_client)

    def issue(self, name: str) -> float:
        """Issues one Certificate; returns the wall-clock time when it became Ready."""
        now = datetime.datetime.now(datetime.UTC)
        certificate_pem, key_pem = issue_leaf(self.ca, f"{name}.{self.namespace}.svc", now)
        body = secret_body(self.namespace, name, certificate_pem, key_pem, self.ca.certificate_pem)
        self._core.create_namespaced_secret(self.namespace, body, _preload_content=False)
        self._custom.patch_namespaced_custom_object_status(
            "certmint.io",
            "v1alpha1",
            self.namespace,
            "certificates",
            name,
            status_patch(now),
            _preload_content=False,
        )
        return time.time()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()

    configuration = client.Configuration()
    config.load_kube_config(config_file=args.kubeconfig, client_configuration=configuration)
    configuration.connection_pool_maxsize = args.workers
    floor = Floor(client.ApiClient(configuration), args.namespace, generate_ca(_utcnow()))
    done: dict[str, float] = {}
    failures: dict[str, str] = {}
    lock = threading.Lock()

    def one(name: str) -> None:
        try:
            finished = floor.issue(name)
        except Exception as err:
            with lock:
                failures[name] = f"{type(err).__name__}: {str(err)[:200]}"
            return
        with lock:
            done[name] = finished

    started: float | None = None
    print("ready", flush=True)  # set up (imports, CA, client): the timing may start
    with concurrent.futures.ThreadPoolExecutor(args.workers) as pool:
        for line in sys.stdin:
            name = line.strip()
            if name:
                started = started or time.time()
                pool.submit(one, name)
    json.dump({"started": started, "done": done, "failures": failures}, sys.stdout)
    return 0


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


if __name__ == "__main__":
    sys.exit(main())
