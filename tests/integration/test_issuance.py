"""Issuance end to end: the real operator, the real API server, real peers checking output."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from kubernetes import client

from certmint.pki import claims as pki_claims
from tests.integration.support import (
    OperatorProcess,
    ca_issuer,
    certificate,
    condition,
    events_for,
    get_certificate,
    key_matches,
    leaf_of,
    openssl_verify,
    patch_certificate,
    read_secret,
    service_account,
    wait_for_condition,
    wait_until,
)

pytestmark = pytest.mark.usefixtures("running_operator")


def test_a_certificate_is_issued_into_a_secret_that_openssl_verifies(
    kube: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    ca_issuer(
        kube,
        namespace,
        policy={"claims": [{"key": "role", "values": ["reader", "writer"]}]},
    )
    service_account(kube, namespace, "api")
    certificate(
        kube,
        namespace,
        serviceAccountName="api",
        dnsNames=[f"api.{namespace}.svc"],
        claims={"role": ["reader"]},
        duration="2h",
        secretTemplate={"labels": {"team": "payments"}},
        additionalOutputFormats=[{"type": "CombinedPEM"}, {"type": "DER"}],
    )

    body = wait_for_condition(kube, namespace, "web")
    secret = read_secret(kube, namespace, "web-tls")

    assert secret is not None
    assert secret.type == "kubernetes.io/tls"
    assert sorted(secret.data) == [
        "ca.crt",
        "key.der",
        "tls-combined.pem",
        "tls.crt",
        "tls.der",
        "tls.key",
    ]
    identity = f"spiffe://test.example/ns/{namespace}/sa/api"
    assert secret.metadata.labels == {"certmint.io/certificate-name": "web", "team": "payments"}
    annotations = secret.metadata.annotations
    assert annotations["certmint.io/identity"] == identity
    assert annotations["certmint.io/issuer-name"] == "ca"
    assert annotations["certmint.io/issuer-kind"] == "Issuer"
    assert annotations["certmint.io/revision"] == "1"
    leaf = leaf_of(secret)
    assert annotations["certmint.io/serial"] == format(leaf.serial_number, "x")
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [identity]
    assert san.get_values_for_type(x509.DNSName) == [f"api.{namespace}.svc"]
    assert pki_claims.claims_of(leaf) == {"role": ("reader",)}
    assert key_matches(secret)
    verified = openssl_verify(secret, tmp_path)
    assert verified.returncode == 0, verified.stderr
    status = body["status"]
    assert status["identity"] == identity
    assert status["serialNumber"] == annotations["certmint.io/serial"]
    assert status["revision"] == 1
    assert {"notBefore", "notAfter", "renewalTime"} <= set(status)
    assert condition(body, "Issuing")["status"] == "False"
    issued = [e for e in events_for(kube, namespace, "web") if e.reason == "Issued"]
    assert len(issued) == 1
    assert "BEGIN" not in issued[0].message


DENIALS = [
    pytest.param(
        {"allowedNamespaces": ["payments"]},
        {},
        "NamespaceNotAllowed",
        id="a namespace outside allowedNamespaces is denied",
    ),
    pytest.param(
        {"maxDuration": "2h"},
        {"duration": "3h"},
        "DurationOutOfRange",
        id="a lifetime above maxDuration is denied",
    ),
    pytest.param(
        {},
        {"dnsNames": ["db.other.svc"]},
        "DNSNameNotAllowed",
        id="a DNS name of another namespace is denied",
    ),
    pytest.param(
        {"allowedIPAddresses": ["10.1.0.0/16"]},
        {"ipAddresses": ["10.2.0.1"]},
        "IPAddressNotAllowed",
        id="an IP address outside the allowed CIDRs is denied",
    ),
    pytest.param(
        {"allowedURIs": ["https://{namespace}.example/*"]},
        {"uris": ["https://other.example/x"]},
        "URINotAllowed",
        id="a URI outside the allowed patterns is denied",
    ),
    pytest.param(
        {"claims": [{"key": "role", "values": ["reader"]}]},
        {"claims": {"role": ["admin"]}},
        "ClaimNotAllowed",
        id="a claim value that was not granted is denied",
    ),
    pytest.param(
        {"claims": [{"key": "role", "values": ["reader"], "namespaces": ["payments"]}]},
        {"claims": {"role": ["reader"]}},
        "ClaimNotAllowed",
        id="a claim granted only to another namespace is denied",
    ),
    pytest.param(
        {},
        {"extensions": [{"oid": "1.3.6.1.4.1.55555.1.7", "value": {"utf8String": "x"}}]},
        "ExtensionNotAllowed",
        id="a raw extension whose OID is not allow-listed is denied",
    ),
    pytest.param(
        {}, {"isCA": True}, "CANotAllowed", id="a CA certificate is denied unless allowCA"
    ),
]


@pytest.mark.parametrize(("policy", "spec", "denial"), DENIALS)
def test_policy_denials_issue_nothing_and_say_why(
    kube: client.ApiClient,
    namespace: str,
    policy: dict[str, Any],
    spec: dict[str, Any],
    denial: str,
) -> None:
    ca_issuer(kube, namespace, policy=policy)
    certificate(kube, namespace, **spec)

    body = wait_for_condition(kube, namespace, "web", status="False", reason="PolicyViolation")

    assert condition(body)["message"].startswith(f"{denial}: ")
    assert read_secret(kube, namespace, "web-tls") is None
    denied = wait_until(
        lambda: [e for e in events_for(kube, namespace, "web") if e.reason == "Denied"],
        what="a Denied event",
    )
    assert denied[0].type == "Warning"
    assert denied[0].message == condition(body)["message"]


ALLOWED = [
    pytest.param(
        {"allowedNamespaces": ["t-*"]}, {}, id="a namespace matching allowedNamespaces is allowed"
    ),
    pytest.param(
        {"maxDuration": "2h"}, {"duration": "90m"}, id="a lifetime within range is allowed"
    ),
    pytest.param(
        {}, {"dnsNames": ["api.{namespace}.svc"]}, id="a DNS name of its own namespace is allowed"
    ),
    pytest.param(
        {"allowedIPAddresses": ["10.1.0.0/16"]},
        {"ipAddresses": ["10.1.2.3"]},
        id="an IP inside an allowed CIDR is allowed",
    ),
    pytest.param(
        {"allowedURIs": ["https://{namespace}.example/*"]},
        {"uris": ["https://{namespace}.example/x"]},
        id="a URI matching its namespace pattern is allowed",
    ),
    pytest.param(
        {"claims": [{"key": "role", "values": ["reader"], "namespaces": ["t-*"]}]},
        {"claims": {"role": ["reader"]}},
        id="a claim granted to the namespace is allowed",
    ),
    pytest.param(
        {"extensions": [{"oid": "1.3.6.1.4.1.55555.1.7"}]},
        {"extensions": [{"oid": "1.3.6.1.4.1.55555.1.7", "value": {"integer": 7}}]},
        id="an allow-listed raw extension is allowed",
    ),
    pytest.param({"allowCA": True}, {"isCA": True}, id="a CA certificate is allowed with allowCA"),
]


@pytest.mark.parametrize(("policy", "spec"), ALLOWED)
def test_policy_allows_what_it_grants(
    kube: client.ApiClient, namespace: str, policy: dict[str, Any], spec: dict[str, Any]
) -> None:
    rendered = {
        key: [v.replace("{namespace}", namespace) for v in value]
        if isinstance(value, list) and value and isinstance(value[0], str)
        else value
        for key, value in spec.items()
    }
    ca_issuer(kube, namespace, policy=policy)
    certificate(kube, namespace, **rendered)

    wait_for_condition(kube, namespace, "web")

    assert read_secret(kube, namespace, "web-tls") is not None


def test_a_namespaced_issuer_cannot_serve_another_namespace(
    kube: client.ApiClient, namespace: str
) -> None:
    other = f"{namespace}-b"
    client.CoreV1Api(kube).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=other))
    )
    ca_issuer(kube, namespace)
    certificate(kube, other)

    body = wait_for_condition(kube, other, "web", status="False", reason="IssuerNotFound")

    assert condition(body)["message"] == f'Issuer "ca" does not exist in namespace "{other}"'
    assert read_secret(kube, other, "web-tls") is None


def test_a_spec_change_issues_a_new_revision(kube: client.ApiClient, namespace: str) -> None:
    ca_issuer(kube, namespace)
    certificate(kube, namespace, dnsNames=[f"a.{namespace}.svc"])
    first = wait_for_condition(kube, namespace, "web")

    patch_certificate(kube, namespace, "web", {"spec": {"dnsNames": [f"b.{namespace}.svc"]}})
    second = wait_for_condition(
        kube, namespace, "web", where=lambda b: b["status"].get("revision") == 2
    )

    assert second["status"]["serialNumber"] != first["status"]["serialNumber"]
    secret = read_secret(kube, namespace, "web-tls")
    assert secret is not None
    san = leaf_of(secret).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [f"b.{namespace}.svc"]


def test_a_deleted_secret_is_recreated(kube: client.ApiClient, namespace: str) -> None:
    ca_issuer(kube, namespace)
    certificate(kube, namespace)
    first = wait_for_condition(kube, namespace, "web")

    client.CoreV1Api(kube).delete_namespaced_secret("web-tls", namespace)

    wait_until(lambda: read_secret(kube, namespace, "web-tls"), what="the Secret to come back")
    body = wait_for_condition(kube, namespace, "web", where=lambda b: b["status"]["revision"] == 2)
    assert body["status"]["serialNumber"] != first["status"]["serialNumber"]


def test_a_secret_whose_key_was_replaced_is_reissued(
    kube: client.ApiClient, namespace: str
) -> None:
    ca_issuer(kube, namespace)
    certificate(kube, namespace)
    first = wait_for_condition(kube, namespace, "web")
    other_key = subprocess.run(
        ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        capture_output=True,
        check=True,
    ).stdout

    client.CoreV1Api(kube).patch_namespaced_secret(
        "web-tls", namespace, {"data": {"tls.key": base64.b64encode(other_key).decode()}}
    )

    body = wait_for_condition(kube, namespace, "web", where=lambda b: b["status"]["revision"] == 2)
    assert body["status"]["serialNumber"] != first["status"]["serialNumber"]
    secret = read_secret(kube, namespace, "web-tls")
    assert secret is not None
    assert key_matches(secret)


def test_a_secret_certmint_does_not_own_is_never_overwritten(
    kube: client.ApiClient, namespace: str
) -> None:
    client.CoreV1Api(kube).create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="web-tls"), string_data={"password": "hunter2"}
        ),
    )
    ca_issuer(kube, namespace)
    certificate(kube, namespace)

    body = wait_for_condition(kube, namespace, "web", status="False", reason="SecretConflict")

    assert "never overwrites" in condition(body)["message"]
    secret = read_secret(kube, namespace, "web-tls")
    assert secret is not None
    assert sorted(secret.data) == ["password"]


def test_without_its_ca_secret_the_issuer_waits_and_recovers(
    kube: client.ApiClient, namespace: str
) -> None:
    ca_issuer(kube, namespace, generate=False)
    certificate(kube, namespace)

    body = wait_for_condition(kube, namespace, "web", status="False", reason="IssuerNotReady")
    assert "CASecretMissing" in condition(body)["message"]
    issuer = client.CustomObjectsApi(kube).get_namespaced_custom_object(
        "certmint.io", "v1alpha1", namespace, "issuers", "ca"
    )
    assert condition(issuer)["reason"] == "CASecretMissing"

    root_key = subprocess.run(
        ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    key_file = Path(f"/tmp/{namespace}-ca.key")
    key_file.write_bytes(root_key)
    root = subprocess.run(
        ["openssl", "req", "-x509", "-new", "-key", str(key_file), "-subj", "/CN=user root",
         "-days", "2", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    key_file.unlink()
    client.CoreV1Api(kube).create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="ca-ca"),
            type="kubernetes.io/tls",
            data={
                "tls.crt": base64.b64encode(root).decode(),
                "tls.key": base64.b64encode(root_key).decode(),
            },
        ),
    )

    wait_for_condition(kube, namespace, "web")
    secret = read_secret(kube, namespace, "web-tls")
    assert secret is not None
    assert leaf_of(secret).issuer.rfc4514_string() == "CN=user root"


@pytest.mark.parametrize(
    ("policy", "deleted"),
    [
        pytest.param(
            "Delete", True, id="secretDeletionPolicy Delete removes the Secret with the Certificate"
        ),
        pytest.param("Retain", False, id="secretDeletionPolicy Retain keeps the Secret"),
    ],
)
def test_secret_deletion_policy(
    kube: client.ApiClient,
    namespace: str,
    running_operator: OperatorProcess,
    policy: str,
    deleted: bool,
) -> None:
    ca_issuer(kube, namespace)
    certificate(kube, namespace, secretDeletionPolicy=policy)
    wait_for_condition(kube, namespace, "web")

    # The operator has seen the deletion once the Certificate is gone from its metrics: the
    # count of its namespace (a healthy Certificate has no per-certificate series).
    def counted() -> bool:
        return any(
            line.startswith("certmint_certificates{") and f'namespace="{namespace}"' in line
            for line in running_operator.metrics().splitlines()
        )

    assert counted()

    client.CustomObjectsApi(kube).delete_namespaced_custom_object(
        "certmint.io", "v1alpha1", namespace, "certificates", "web"
    )

    wait_until(
        lambda: not counted(),
        what="the operator to forget the Certificate",
    )
    if deleted:
        wait_until(lambda: read_secret(kube, namespace, "web-tls") is None, what="the Secret to go")
    else:
        assert read_secret(kube, namespace, "web-tls") is not None


def test_an_operator_restart_reissues_nothing(
    kube: client.ApiClient, namespace: str, running_operator: OperatorProcess
) -> None:
    ca_issuer(kube, namespace)
    for index in range(5):
        certificate(kube, namespace, name=f"c{index}")
    serials = {
        f"c{i}": wait_for_condition(kube, namespace, f"c{i}")["status"]["serialNumber"]
        for i in range(5)
    }

    running_operator.stop()
    running_operator.start()
    # A Certificate created after the restart is queued behind the five existing ones, so
    # once it is Ready the operator has reconciled them all.
    certificate(kube, namespace, name="sentinel")
    wait_for_condition(kube, namespace, "sentinel")

    after = {
        f"c{i}": get_certificate(kube, namespace, f"c{i}")["status"]["serialNumber"]
        for i in range(5)
    }
    assert after == serials
    assert running_operator.log().count("issued serial") == 1  # the sentinel's


def test_kill_during_a_burst_of_issuances_converges(
    kube: client.ApiClient, namespace: str, running_operator: OperatorProcess
) -> None:
    ca_issuer(kube, namespace)
    wait_until(
        lambda: (
            condition(
                client.CustomObjectsApi(kube).get_namespaced_custom_object(
                    "certmint.io", "v1alpha1", namespace, "issuers", "ca"
                )
            ).get("status")
            == "True"
        ),
        what="the issuer",
    )
    running_operator.stop()
    running_operator.start()
    for index in range(50):
        certificate(kube, namespace, name=f"burst{index}")
    wait_until(lambda: "issued serial" in running_operator.log(), what="the first issuance")

    running_operator.kill()
    running_operator.start()

    for index in range(50):
        wait_for_condition(kube, namespace, f"burst{index}", timeout=90)
        secret = read_secret(kube, namespace, f"burst{index}-tls")
        assert secret is not None
        assert key_matches(secret), f"burst{index}: key does not match its certificate"
        status = get_certificate(kube, namespace, f"burst{index}")["status"]
        assert status["serialNumber"] == secret.metadata.annotations["certmint.io/serial"]
