"""Bad input and foreign objects (issue #15): a clear answer, nothing lost, no retry loop.

Every test runs the real operator against the real control plane: objects certmint did
not create stay untouched, a conflict clears when its cause goes away, a CA that is not
valid yet signs nothing, and input the signer would refuse is refused once, up front.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from kubernetes import client

from certmint.pki import building, ca, decode, keys
from tests.integration.support import (
    ca_issuer,
    certificate,
    condition,
    create,
    events_for,
    leaf_of,
    read_secret,
    wait_for_condition,
    wait_until,
)

pytestmark = pytest.mark.usefixtures("running_operator")

CUSTOM_OID = "1.3.6.1.4.1.55555.1.7"


def issuer_body(kube: client.ApiClient, namespace: str, name: str = "ca") -> dict[str, Any]:
    return dict(
        client.CustomObjectsApi(kube).get_namespaced_custom_object(
            "certmint.io", "v1alpha1", namespace, "issuers", name
        )
    )


def cluster_issuer_body(kube: client.ApiClient, name: str) -> dict[str, Any]:
    return dict(
        client.CustomObjectsApi(kube).get_cluster_custom_object(
            "certmint.io", "v1alpha1", "clusterissuers", name
        )
    )


def read_config_map(kube: client.ApiClient, namespace: str, name: str) -> client.V1ConfigMap | None:
    try:
        return client.CoreV1Api(kube).read_namespaced_config_map(name, namespace)
    except client.ApiException as err:
        if err.status == 404:
            return None
        raise


def foreign_config_map(kube: client.ApiClient, namespace: str, name: str) -> client.V1ConfigMap:
    return client.CoreV1Api(kube).create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=name, labels={"app": "mine"}),
            data={"settings.yaml": "replicas: 3\n"},
        ),
    )


def with_condition(
    body: dict[str, Any], reason: str, type_: str = "TrustDistributed"
) -> dict[str, Any] | None:
    """The object when its condition ``type_`` has ``reason``, else None (a probe)."""
    return body if condition(body, type_).get("reason") == reason else None


def warning_events(kube: client.ApiClient, namespace: str, name: str, reason: str) -> list[Any]:
    return [
        event
        for event in events_for(kube, namespace, name)
        if event.reason == reason and event.type == "Warning"
    ]


# Problem 3: trust distribution never touches what certmint did not create --------------
def test_an_issuer_never_overwrites_or_deletes_a_config_map_it_did_not_create(
    kube: client.ApiClient, namespace: str
) -> None:
    original = foreign_config_map(kube, namespace, "app-config")
    create(
        kube,
        {
            "kind": "Issuer",
            "metadata": {"name": "ca", "namespace": namespace},
            "spec": {
                "ca": {"secretName": "ca-ca", "generate": {"commonName": "root"}},
                "trustDistribution": {"configMapName": "app-config"},
            },
        },
    )

    body = wait_until(
        lambda: with_condition(issuer_body(kube, namespace), "TrustDistributionConflict"),
        what="the TrustDistributionConflict condition",
    )
    assert condition(body, "TrustDistributed")["status"] == "False"
    assert condition(body, "TrustDistributed")["message"] == (
        f'ConfigMap "{namespace}/app-config" exists and was not created by certmint for '
        f'Issuer "ca"; certmint never overwrites it. Choose another '
        "trustDistribution.configMapName or delete that ConfigMap."
    )
    assert condition(body)["status"] == "True"  # signing is not affected
    wait_until(
        lambda: warning_events(kube, namespace, "ca", "TrustDistributionConflict"),
        what="a TrustDistributionConflict Warning Event",
    )
    untouched = read_config_map(kube, namespace, "app-config")
    assert untouched is not None
    assert untouched.data == {"settings.yaml": "replicas: 3\n"}
    assert untouched.metadata.resource_version == original.metadata.resource_version

    client.CustomObjectsApi(kube).patch_namespaced_custom_object(
        "certmint.io", "v1alpha1", namespace, "issuers", "ca",
        {"spec": {"trustDistribution": {"configMapName": "ca-trust"}}},
    )  # fmt: skip

    published = wait_until(
        lambda: read_config_map(kube, namespace, "ca-trust"), what="the renamed trust ConfigMap"
    )
    assert "ca.crt" in published.data
    wait_until(
        lambda: condition(issuer_body(kube, namespace), "TrustDistributed").get("status") == "True",
        what="the conflict to clear",
    )
    still = read_config_map(kube, namespace, "app-config")
    assert still is not None
    assert still.metadata.resource_version == original.metadata.resource_version


def test_a_trust_config_map_someone_deleted_comes_back(
    kube: client.ApiClient, namespace: str
) -> None:
    create(
        kube,
        {
            "kind": "Issuer",
            "metadata": {"name": "ca", "namespace": namespace},
            "spec": {
                "ca": {"secretName": "ca-ca", "generate": {"commonName": "root"}},
                "trustDistribution": {"configMapName": "ca-trust"},
            },
        },
    )
    first = wait_until(
        lambda: read_config_map(kube, namespace, "ca-trust"), what="the trust ConfigMap"
    )

    client.CoreV1Api(kube).delete_namespaced_config_map("ca-trust", namespace)

    # Listed again every 10 issuer resyncs: 20 s with --issuer-resync=2.
    again = wait_until(
        lambda: read_config_map(kube, namespace, "ca-trust"),
        timeout=45,
        what="the trust ConfigMap to come back",
    )
    assert again.metadata.uid != first.metadata.uid
    assert again.data["ca.crt"] == first.data["ca.crt"]


@pytest.fixture
def cluster_issuer(kube: client.ApiClient) -> Iterator[str]:
    name = f"guard-{uuid.uuid4().hex[:6]}"
    yield name
    try:
        client.CustomObjectsApi(kube).delete_cluster_custom_object(
            "certmint.io", "v1alpha1", "clusterissuers", name
        )
    except client.ApiException as err:
        if err.status != 404:
            raise


def test_a_cluster_issuer_publishes_around_foreign_config_maps_and_trust_bundles(
    kube: client.ApiClient, cluster_issuer: str
) -> None:
    core = client.CoreV1Api(kube)
    label = f"g{uuid.uuid4().hex[:6]}"
    mine, taken = f"{label}-mine", f"{label}-taken"
    for name in (mine, taken):
        core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"trust": label}))
        )
    original = foreign_config_map(kube, taken, "shared-trust")
    bundle_name = f"certmint.clusterissuer.{cluster_issuer}"
    bundles = client.CustomObjectsApi(kube)
    foreign_bundle = bundles.create_cluster_custom_object(
        "certificates.k8s.io", "v1beta1", "clustertrustbundles",
        {
            "apiVersion": "certificates.k8s.io/v1beta1",
            "kind": "ClusterTrustBundle",
            "metadata": {"name": bundle_name},
            "spec": {"trustBundle": _self_signed_pem()},
        },
    )  # fmt: skip
    try:
        create(
            kube,
            {
                "kind": "ClusterIssuer",
                "metadata": {"name": cluster_issuer},
                "spec": {
                    "ca": {"secretName": f"{cluster_issuer}-ca", "generate": {"commonName": "r"}},
                    "trustDistribution": {
                        "namespaceSelector": {"matchLabels": {"trust": label}},
                        "configMapName": "shared-trust",
                        "clusterTrustBundle": True,
                    },
                },
            },
        )

        wait_until(lambda: read_config_map(kube, mine, "shared-trust"), what="the ConfigMap")
        body = wait_until(
            lambda: with_condition(
                cluster_issuer_body(kube, cluster_issuer), "TrustDistributionConflict"
            ),
            what="the TrustDistributionConflict condition",
        )
        message = condition(body, "TrustDistributed")["message"]
        assert f'ConfigMap "{taken}/shared-trust" exists and was not created' in message
        assert f'ClusterTrustBundle "{bundle_name}" exists and was not created' in message
        untouched = read_config_map(kube, taken, "shared-trust")
        assert untouched is not None
        assert untouched.metadata.resource_version == original.metadata.resource_version
        bundle = bundles.get_cluster_custom_object(
            "certificates.k8s.io", "v1beta1", "clustertrustbundles", bundle_name
        )
        assert (
            bundle["metadata"]["resourceVersion"] == foreign_bundle["metadata"]["resourceVersion"]
        )
    finally:
        bundles.delete_cluster_custom_object(
            "certificates.k8s.io", "v1beta1", "clustertrustbundles", bundle_name
        )


def _self_signed_pem() -> str:
    return _root_pem(datetime.now(UTC) - timedelta(minutes=1))[0].decode()


# Problem 4: a SecretConflict clears when the foreign Secret goes -----------------------
def test_a_secret_conflict_clears_within_seconds_of_the_foreign_secret_deletion(
    kube: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube)
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="web-tls"), string_data={"password": "hunter2"}
        ),
    )
    ca_issuer(kube, namespace)
    certificate(kube, namespace)
    wait_for_condition(kube, namespace, "web", status="False", reason="SecretConflict")

    core.delete_namespaced_secret("web-tls", namespace)

    wait_for_condition(kube, namespace, "web", timeout=15)
    secret = read_secret(kube, namespace, "web-tls")
    assert secret is not None
    assert secret.metadata.labels["certmint.io/certificate-name"] == "web"


# Problem 5: a CA that is not valid yet signs nothing -----------------------------------
def _root_pem(not_before: datetime) -> tuple[bytes, bytes]:
    """A 30-day root CA (certificate PEM, key PEM) whose notBefore is exactly ``not_before``."""
    root = ca.generate_root_ca(
        "future root",
        timedelta(days=30),
        keys.KeySpec(keys.KeyAlgorithm.ECDSA, 256),
        not_before + building.NOT_BEFORE_BACKDATE,
    )
    return decode.certificates_to_pem((root.certificate,)), keys.private_key_to_pem(
        root.private_key
    )


def _ca_secret(kube: client.ApiClient, namespace: str, not_before: datetime) -> None:
    certificate_pem, key_pem = _root_pem(not_before)
    client.CoreV1Api(kube).create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="ca-ca"),
            type="kubernetes.io/tls",
            data={
                "tls.crt": base64.b64encode(certificate_pem).decode(),
                "tls.key": base64.b64encode(key_pem).decode(),
            },
        ),
    )


def test_a_ca_valid_only_in_two_hours_makes_the_issuer_not_ready(
    kube: client.ApiClient, namespace: str
) -> None:
    _ca_secret(kube, namespace, datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2))
    ca_issuer(kube, namespace, generate=False)
    certificate(kube, namespace)

    body = wait_until(
        lambda: with_condition(issuer_body(kube, namespace), "CANotYetValid", "Ready"),
        what="the issuer's Ready condition",
    )
    assert (condition(body)["status"], condition(body)["reason"]) == ("False", "CANotYetValid")
    blocked = wait_for_condition(kube, namespace, "web", status="False", reason="IssuerNotReady")
    assert "CANotYetValid" in condition(blocked)["message"]
    assert read_secret(kube, namespace, "web-tls") is None


def test_a_ca_that_becomes_valid_signs_leaves_that_are_valid_when_ready(
    kube: client.ApiClient, namespace: str
) -> None:
    not_before = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=45)
    _ca_secret(kube, namespace, not_before)
    ca_issuer(kube, namespace, generate=False)
    certificate(kube, namespace)

    wait_until(
        lambda: condition(issuer_body(kube, namespace)).get("reason") == "CANotYetValid",
        what="CANotYetValid",
    )
    body = wait_for_condition(kube, namespace, "web", timeout=120)
    ready_at = datetime.fromisoformat(condition(body)["lastTransitionTime"])

    secret = read_secret(kube, namespace, "web-tls")
    assert secret is not None
    # The documented clock-skew allowance is 30 seconds.
    assert leaf_of(secret).not_valid_before_utc <= ready_at + timedelta(seconds=30)


def test_a_rotation_never_overwrites_a_ca_secret_certmint_did_not_generate(
    kube: client.ApiClient, namespace: str
) -> None:
    _ca_secret(kube, namespace, datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1))
    original = read_secret(kube, namespace, "ca-ca")
    assert original is not None
    ca_issuer(kube, namespace)  # with ca.generate, over a CA Secret the user made
    wait_until(
        lambda: with_condition(issuer_body(kube, namespace), "CAReady", "Ready"), what="CAReady"
    )

    client.CustomObjectsApi(kube).patch_namespaced_custom_object(
        "certmint.io", "v1alpha1", namespace, "issuers", "ca",
        {
            "metadata": {
                "annotations": {
                    "certmint.io/rotate-requested-at": "2026-12-07T00:00:00Z",
                    "certmint.io/rotate-emergency": "true",
                }
            }
        },
    )  # fmt: skip

    [refused] = wait_until(
        lambda: warning_events(kube, namespace, "ca", "CARotationRefused"),
        what="a CARotationRefused Event",
    )
    assert refused.message.startswith(
        f'Secret "{namespace}/ca-ca" was not generated by certmint for Issuer "ca"'
    )
    after = read_secret(kube, namespace, "ca-ca")
    assert after is not None
    assert after.metadata.resource_version == original.metadata.resource_version
    assert read_secret(kube, namespace, "ca-ca-next") is None
    assert read_secret(kube, namespace, "ca-ca-previous") is None


# Problem 6 (and 7, 8): input the signer would refuse is refused once, never retried ---
PERMANENT = [
    pytest.param(
        {"extensions": [{"oid": CUSTOM_OID}]},
        {"extensions": [{"oid": CUSTOM_OID, "value": {"der": "AQEB"}}]},
        "InvalidSpec",
        id="a BER boolean instead of DER",
    ),
    pytest.param(
        {"allowedSubject": {"organizations": ["*"]}},
        {"subject": {"organizations": ["a\u0085b"]}},
        "InvalidSpec",
        id="an organization with U+0085",
    ),
    pytest.param(
        {"allowedSubject": {"organizations": ["*"]}},
        {"subject": {"organizations": ["a\u200bb"]}},
        "InvalidSpec",
        id="an organization with U+200B",
    ),
    pytest.param(
        {"allowedSubject": {"organizationalUnits": ["*"]}},
        {"subject": {"organizationalUnits": ["   "]}},
        "InvalidSpec",
        id="an organizational unit of blanks",
    ),
    pytest.param(
        {"claims": [{"key": "role", "values": ["*"]}]},
        {"claims": {"role": ["a\u0085b"]}},
        "InvalidSpec",
        id="a claim value with U+0085",
    ),
    pytest.param(
        {},
        {"commonName": "\u212aube.{namespace}.svc"},
        "InvalidSpec",
        id="a commonName with a Kelvin sign",
    ),
]


@pytest.mark.parametrize(("policy", "spec", "reason"), PERMANENT)
def test_input_the_signer_would_refuse_is_refused_once_without_retries(
    kube: client.ApiClient,
    namespace: str,
    policy: dict[str, Any],
    spec: dict[str, Any],
    reason: str,
) -> None:
    if "commonName" in spec:
        spec = {**spec, "commonName": spec["commonName"].replace("{namespace}", namespace)}
    ca_issuer(kube, namespace, policy=policy)
    certificate(kube, namespace, **spec)

    body = wait_for_condition(kube, namespace, "web", status="False", reason=reason)

    assert read_secret(kube, namespace, "web-tls") is None
    # The first answer is final: no failure counted, no Failed Event, no backoff loop.
    assert "failedIssuanceAttempts" not in body["status"], body["status"]
    assert condition(body, "Issuing")["reason"] == reason
    wait_until(
        lambda: warning_events(kube, namespace, "web", reason), what=f"a {reason} Warning Event"
    )
    assert warning_events(kube, namespace, "web", "Failed") == []


def test_a_commonname_with_a_kelvin_sign_names_the_a_label_form(
    kube: client.ApiClient, namespace: str
) -> None:
    ca_issuer(kube, namespace)
    certificate(kube, namespace, commonName=f"\u212aube.{namespace}.svc")

    body = wait_for_condition(kube, namespace, "web", status="False", reason="InvalidSpec")

    assert condition(body)["message"] == (
        f'spec.commonName: "\u212aube.{namespace}.svc" is not ASCII; write the IDNA '
        f'A-label form "kube.{namespace}.svc"'
    )


def test_der_base64_with_a_slash_is_issued_as_given(kube: client.ApiClient, namespace: str) -> None:
    ca_issuer(kube, namespace, policy={"extensions": [{"oid": CUSTOM_OID}]})
    certificate(kube, namespace, extensions=[{"oid": CUSTOM_OID, "value": {"der": "AQH/"}}])

    wait_for_condition(kube, namespace, "web")

    secret = read_secret(kube, namespace, "web-tls")
    assert secret is not None
    extension = leaf_of(secret).extensions.get_extension_for_oid(x509.ObjectIdentifier(CUSTOM_OID))
    assert extension.value.value == b"\x01\x01\xff"


# Problem 9: subject organization and unit need the policy's allowedSubject ------------
def test_an_organization_the_policy_does_not_list_is_denied(
    kube: client.ApiClient, namespace: str
) -> None:
    ca_issuer(kube, namespace)
    certificate(kube, namespace, subject={"organizations": ["system:masters"]})

    body = wait_for_condition(kube, namespace, "web", status="False", reason="PolicyViolation")

    assert condition(body)["message"] == (
        'SubjectNotAllowed: subject.organizations[0] "system:masters" is not allowed by '
        'Issuer "ca", whose policy allows no subject organizations '
        "(policy.allowedSubject.organizations)"
    )
    assert read_secret(kube, namespace, "web-tls") is None


def test_allowed_subject_patterns_admit_the_namespace_as_organization(
    kube: client.ApiClient, namespace: str
) -> None:
    ca_issuer(
        kube,
        namespace,
        policy={"allowedSubject": {"organizations": ["{namespace}"], "organizationalUnits": []}},
    )
    certificate(kube, namespace, subject={"organizations": [namespace]})

    wait_for_condition(kube, namespace, "web")

    secret = read_secret(kube, namespace, "web-tls")
    assert secret is not None
    organizations = leaf_of(secret).subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    assert [attribute.value for attribute in organizations] == [namespace]
