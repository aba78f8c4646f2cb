"""Explicit adoption of cert-manager Secrets, with Secrets shaped as cert-manager v1.21 writes them.

cert-manager's CA issuer writes a `kubernetes.io/tls` Secret with `tls.crt` (leaf, no root),
`tls.key`, `ca.crt` (the CA), the `controller.cert-manager.io/fao` label and the
`cert-manager.io/*` annotations below. certmint's Issuer uses cert-manager's CA Secret as
is; a Certificate with `spec.secretAdoption` takes over exactly that Secret.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes import client

from tests.integration import support

pytestmark = pytest.mark.usefixtures("running_operator")
KeyAndCert = tuple[ec.EllipticCurvePrivateKey, x509.Certificate]


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def sign(subject: str, issuer: KeyAndCert | None, *, ca: bool, sans: list[str]) -> KeyAndCert:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[1].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )  # fmt: skip
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(s) for s in sans if not s.startswith("spiffe:")]
                + [x509.UniformResourceIdentifier(s) for s in sans if s.startswith("spiffe:")]
            ),
            critical=False,
        )
    return key, builder.sign(issuer[0] if issuer else key, hashes.SHA256())


def tls_secret(
    name: str,
    key: ec.EllipticCurvePrivateKey,
    chain: bytes,
    ca: bytes,
    *,
    labels: dict[str, str],
    annotations: dict[str, str],
) -> client.V1Secret:
    data = {"tls.crt": chain, "tls.key": key_pem(key), "ca.crt": ca}
    return client.V1Secret(
        metadata=client.V1ObjectMeta(name=name, labels=labels, annotations=annotations),
        type="kubernetes.io/tls",
        data={k: base64.b64encode(v).decode() for k, v in data.items()},
    )


def cert_manager_secret(namespace: str, certificate: str, ca: KeyAndCert) -> client.V1Secret:
    """The Secret cert-manager v1.21's CA issuer writes for Certificate ``certificate``."""
    dns = f"{certificate}.{namespace}.svc"
    uri = f"spiffe://test.example/ns/{namespace}/sa/{certificate}"
    key, leaf = sign(dns, ca, ca=False, sans=[dns, uri])
    annotations = {
        "cert-manager.io/alt-names": dns,
        "cert-manager.io/certificate-name": certificate,
        "cert-manager.io/common-name": dns,
        "cert-manager.io/ip-sans": "",
        "cert-manager.io/issuer-group": "cert-manager.io",
        "cert-manager.io/issuer-kind": "Issuer",
        "cert-manager.io/issuer-name": "workloads",
        "cert-manager.io/uri-sans": uri,
        # A replication tool's annotation, which must survive the migration.
        "reflector.v1.k8s.emberstack.com/reflection-allowed": "true",
    }
    labels = {"controller.cert-manager.io/fao": "true", "team": "payments"}
    return tls_secret(
        f"{certificate}-tls", key, pem(leaf), pem(ca[1]), labels=labels, annotations=annotations
    )


@pytest.fixture
def migrated(kube: client.ApiClient, namespace: str) -> KeyAndCert:
    """cert-manager's CA Secret, as is, and a certmint Issuer that uses it."""
    ca = sign("workloads root", None, ca=True, sans=[])
    core = client.CoreV1Api(kube)
    core.create_namespaced_secret(
        namespace,
        tls_secret("workloads-ca", ca[0], pem(ca[1]), pem(ca[1]), labels={}, annotations={}),
    )
    support.ca_issuer(kube, namespace, "workloads", generate=False)
    return ca


def test_adoption_keeps_the_secret_its_mounts_and_foreign_metadata(
    kube: client.ApiClient, namespace: str, migrated: KeyAndCert
) -> None:
    core = client.CoreV1Api(kube)
    before = core.create_namespaced_secret(
        namespace, cert_manager_secret(namespace, "api", migrated)
    )
    old_serial = support.leaf_of(before).serial_number
    support.service_account(kube, namespace, "api")

    support.certificate(kube, namespace, "api", issuer="workloads", serviceAccountName="api",
                        secretAdoption={"certManagerCertificateName": "api"})  # fmt: skip
    support.wait_for_condition(kube, namespace, "api")
    after = support.read_secret(kube, namespace, "api-tls")

    assert after is not None
    assert after.metadata.uid == before.metadata.uid  # the same object: mounts keep working
    assert after.metadata.labels == {"team": "payments", "certmint.io/certificate-name": "api"}
    foreign = {k: v for k, v in after.metadata.annotations.items() if "certmint.io/" not in k}
    assert foreign == {"reflector.v1.k8s.emberstack.com/reflection-allowed": "true"}
    assert after.metadata.annotations["certmint.io/adopted-from"] == "cert-manager"
    leaf = support.leaf_of(after)
    assert leaf.serial_number != old_serial
    assert leaf.issuer == migrated[1].subject
    assert support.secret_file(after, "ca.crt") == pem(migrated[1])  # trust did not change
    assert support.key_matches(after)
    uris = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert uris.get_values_for_type(x509.UniformResourceIdentifier) == [
        f"spiffe://test.example/ns/{namespace}/sa/api"
    ]


@pytest.mark.parametrize(
    ("annotation", "why"),
    [
        pytest.param("other", 'has "other" cert-manager.io/certificate-name annotation, not "api"',
                     id="a cert-manager Secret of another Certificate stays a conflict"),
        pytest.param(None, 'has no cert-manager.io/certificate-name annotation, not "api"',
                     id="a foreign Secret without cert-manager's annotation stays a conflict"),
    ],
)  # fmt: skip
def test_adoption_never_takes_another_foreign_secret(
    kube: client.ApiClient, namespace: str, migrated: KeyAndCert, annotation: str | None, why: str
) -> None:
    body = cert_manager_secret(namespace, "api", migrated)
    if annotation is None:
        del body.metadata.annotations["cert-manager.io/certificate-name"]
    else:
        body.metadata.annotations["cert-manager.io/certificate-name"] = annotation
    before = client.CoreV1Api(kube).create_namespaced_secret(namespace, body)

    support.certificate(kube, namespace, "api", issuer="workloads",
                        secretAdoption={"certManagerCertificateName": "api"})  # fmt: skip
    ready = support.condition(
        support.wait_for_condition(kube, namespace, "api", status="False", reason="SecretConflict")
    )
    after = support.read_secret(kube, namespace, "api-tls")

    assert ready["message"] == (
        f'Secret "api-tls" already exists and {why}, so spec.secretAdoption does not cover it; '
        "certmint never overwrites it. Choose another spec.secretName or delete that Secret."
    )
    assert after is not None
    assert after.metadata.resource_version == before.metadata.resource_version


def test_without_secret_adoption_a_cert_manager_secret_is_a_conflict(
    kube: client.ApiClient, namespace: str, migrated: KeyAndCert
) -> None:
    client.CoreV1Api(kube).create_namespaced_secret(
        namespace, cert_manager_secret(namespace, "api", migrated)
    )

    support.certificate(kube, namespace, "api", issuer="workloads")

    support.wait_for_condition(kube, namespace, "api", status="False", reason="SecretConflict")


def test_the_api_server_refuses_adoption_of_another_certificates_secret(
    kube: client.ApiClient, namespace: str
) -> None:
    with pytest.raises(client.ApiException) as refused:
        support.certificate(kube, namespace, "api", issuer="workloads",
                            secretAdoption={"certManagerCertificateName": "web"})  # fmt: skip

    assert refused.value.status == 422
    assert "secretAdoption.certManagerCertificateName must equal metadata.name" in (
        refused.value.body
    )
