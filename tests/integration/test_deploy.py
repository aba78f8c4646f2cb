"""deploy/ on the real control plane: it applies, and its identity may do its job and no more.

No controller-manager or scheduler runs here, so the Deployment's pods are never created;
these tests check the objects and what the API server lets the ServiceAccount do.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from tests.integration.conftest import ROOT, Kubectl

DEPLOY = ROOT / "deploy"
NAMESPACED_OVERLAY = DEPLOY / "overlays" / "namespaced"
SYSTEM_NAMESPACE = "certmint-system"
CLUSTER_SCOPED_KINDS = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
}

# (apiGroup, resource or resource/subresource, verb, resourceName or "" for any).
Permission = tuple[str, str, str, str]


def grants(group: str, resources: Iterable[str], verbs: Iterable[str]) -> set[Permission]:
    return {(group, resource, verb, "") for resource in resources for verb in verbs}


CRUD = ("get", "list", "watch", "create", "update", "patch", "delete")
CERTMINT_KINDS = ("certificates", "issuers", "clusterissuers")
# What the operator needs in every namespace (cluster-wide), from the operator's design.
CLUSTER_WIDE_PERMISSIONS = (
    grants("certmint.io", CERTMINT_KINDS, ("get", "list", "watch", "patch"))
    | grants(
        "certmint.io", [f"{kind}/status" for kind in CERTMINT_KINDS], ("get", "patch", "update")
    )
    | grants("", ["secrets", "configmaps"], CRUD)
    | grants("", ["serviceaccounts", "namespaces"], ("get", "list", "watch"))
    | grants("", ["events"], ("create", "patch"))
    | grants("events.k8s.io", ["events"], ("create", "patch"))
    | grants("certificates.k8s.io", ["clustertrustbundles"], CRUD)
    | grants("certificates.k8s.io", ["podcertificaterequests"], ("get", "list", "watch"))
    | grants("certificates.k8s.io", ["podcertificaterequests/status"], ("update",))
    | {("certificates.k8s.io", "signers", verb, "certmint.io/*") for verb in ("sign", "attest")}
)
LEADER_ELECTION_PERMISSIONS = grants(
    "coordination.k8s.io", ["leases"], ("list", "watch", "create")
) | {
    ("coordination.k8s.io", "leases", verb, "certmint-leader")
    for verb in ("get", "update", "patch")
}
NAMESPACED_OVERLAY_PERMISSIONS = (
    grants("certmint.io", ["certificates", "issuers"], ("get", "list", "watch", "patch"))
    | grants("certmint.io", ["certificates/status", "issuers/status"], ("get", "patch", "update"))
    | grants("", ["secrets", "configmaps"], CRUD)
    | grants("", ["serviceaccounts"], ("get", "list", "watch"))
    | grants("", ["events"], ("create", "patch"))
    | grants("events.k8s.io", ["events"], ("create", "patch"))
    | LEADER_ELECTION_PERMISSIONS
)

# Things a stolen certmint token must not be able to do (resource attributes for a review).
FORBIDDEN = [
    ("delete namespaces", {"verb": "delete", "resource": "namespaces", "name": "payments"}),
    ("create namespaces", {"verb": "create", "resource": "namespaces"}),
    ("read pods", {"verb": "get", "resource": "pods", "namespace": "payments"}),
    ("list pods anywhere", {"verb": "list", "resource": "pods"}),
    (
        "exec into pods",
        {"verb": "create", "resource": "pods", "subresource": "exec", "namespace": "payments"},
    ),
    ("create pods", {"verb": "create", "resource": "pods", "namespace": SYSTEM_NAMESPACE}),
    (
        "mint ServiceAccount tokens",
        {
            "verb": "create",
            "resource": "serviceaccounts",
            "subresource": "token",
            "namespace": "payments",
        },
    ),
    (
        "create ServiceAccounts",
        {"verb": "create", "resource": "serviceaccounts", "namespace": "payments"},
    ),
    ("impersonate users", {"verb": "impersonate", "resource": "users"}),
    (
        "impersonate ServiceAccounts",
        {"verb": "impersonate", "resource": "serviceaccounts", "namespace": "payments"},
    ),
    (
        "create ClusterRoles",
        {"verb": "create", "group": "rbac.authorization.k8s.io", "resource": "clusterroles"},
    ),
    (
        "edit its own ClusterRole",
        {
            "verb": "update",
            "group": "rbac.authorization.k8s.io",
            "resource": "clusterroles",
            "name": "certmint-controller",
        },
    ),
    (
        "escalate ClusterRoles",
        {"verb": "escalate", "group": "rbac.authorization.k8s.io", "resource": "clusterroles"},
    ),
    (
        "bind ClusterRoles",
        {"verb": "bind", "group": "rbac.authorization.k8s.io", "resource": "clusterroles"},
    ),
    (
        "create ClusterRoleBindings",
        {"verb": "create", "group": "rbac.authorization.k8s.io", "resource": "clusterrolebindings"},
    ),
    (
        "create RoleBindings",
        {
            "verb": "create",
            "group": "rbac.authorization.k8s.io",
            "resource": "rolebindings",
            "namespace": "payments",
        },
    ),
    (
        "create CRDs",
        {
            "verb": "create",
            "group": "apiextensions.k8s.io",
            "resource": "customresourcedefinitions",
        },
    ),
    (
        "delete CRDs",
        {
            "verb": "delete",
            "group": "apiextensions.k8s.io",
            "resource": "customresourcedefinitions",
            "name": "certificates.certmint.io",
        },
    ),
    (
        "create Certificates",
        {
            "verb": "create",
            "group": "certmint.io",
            "resource": "certificates",
            "namespace": "payments",
        },
    ),
    (
        "delete Certificates",
        {
            "verb": "delete",
            "group": "certmint.io",
            "resource": "certificates",
            "namespace": "payments",
        },
    ),
    (
        "delete Issuers",
        {"verb": "delete", "group": "certmint.io", "resource": "issuers", "namespace": "payments"},
    ),
    (
        "change Deployments",
        {
            "verb": "patch",
            "group": "apps",
            "resource": "deployments",
            "namespace": SYSTEM_NAMESPACE,
        },
    ),
    (
        "approve CertificateSigningRequests",
        {
            "verb": "update",
            "group": "certificates.k8s.io",
            "resource": "certificatesigningrequests",
            "subresource": "approval",
        },
    ),
    (
        "take another Lease",
        {
            "verb": "update",
            "group": "coordination.k8s.io",
            "resource": "leases",
            "namespace": SYSTEM_NAMESPACE,
            "name": "kube-scheduler",
        },
    ),
    (
        "hold Leases outside its namespace",
        {
            "verb": "create",
            "group": "coordination.k8s.io",
            "resource": "leases",
            "namespace": "payments",
        },
    ),
    ("patch nodes", {"verb": "patch", "resource": "nodes", "name": "node-1"}),
    (
        "sign for a Kubernetes signer",
        {
            "verb": "sign",
            "group": "certificates.k8s.io",
            "resource": "signers",
            "name": "kubernetes.io/kube-apiserver-client",
        },
    ),
    (
        "create PodCertificateRequests",
        {
            "verb": "create",
            "group": "certificates.k8s.io",
            "resource": "podcertificaterequests",
            "namespace": "payments",
        },
    ),
    (
        "write webhooks",
        {
            "verb": "create",
            "group": "admissionregistration.k8s.io",
            "resource": "validatingwebhookconfigurations",
        },
    ),
]
# Things the operator does, spot-checked as single requests on top of the rules comparison.
ALLOWED = [
    # The API server asks for the signer name, then for "<domain>/*"; RBAC grants the latter.
    (
        "sign for its own signer names",
        {
            "verb": "sign",
            "group": "certificates.k8s.io",
            "resource": "signers",
            "name": "certmint.io/*",
        },
    ),
    (
        "attest its signers' trust bundles",
        {
            "verb": "attest",
            "group": "certificates.k8s.io",
            "resource": "signers",
            "name": "certmint.io/*",
        },
    ),
    (
        "answer PodCertificateRequests",
        {
            "verb": "update",
            "group": "certificates.k8s.io",
            "resource": "podcertificaterequests",
            "subresource": "status",
            "namespace": "payments",
        },
    ),
    (
        "write Secrets in any namespace",
        {"verb": "create", "resource": "secrets", "namespace": "payments"},
    ),
    (
        "delete Secrets (secretDeletionPolicy Delete)",
        {"verb": "delete", "resource": "secrets", "namespace": "payments"},
    ),
    (
        "read ClusterIssuer CA Secrets",
        {"verb": "get", "resource": "secrets", "namespace": SYSTEM_NAMESPACE},
    ),
    (
        "patch Certificate status",
        {
            "verb": "patch",
            "group": "certmint.io",
            "resource": "certificates",
            "subresource": "status",
            "namespace": "payments",
        },
    ),
    (
        "watch ClusterIssuers",
        {"verb": "watch", "group": "certmint.io", "resource": "clusterissuers"},
    ),
    (
        "publish trust bundle ConfigMaps",
        {"verb": "update", "resource": "configmaps", "namespace": "payments"},
    ),
    (
        "publish ClusterTrustBundles",
        {"verb": "create", "group": "certificates.k8s.io", "resource": "clustertrustbundles"},
    ),
    (
        "renew its Lease",
        {
            "verb": "update",
            "group": "coordination.k8s.io",
            "resource": "leases",
            "namespace": SYSTEM_NAMESPACE,
            "name": "certmint-leader",
        },
    ),
    (
        "record Events",
        {"verb": "create", "group": "events.k8s.io", "resource": "events", "namespace": "payments"},
    ),
]


def review(api: client.AuthorizationV1Api, attributes: dict[str, str]) -> bool:
    """Ask the API server whether the caller may make one request."""
    spec = client.V1SelfSubjectAccessReviewSpec(
        resource_attributes=client.V1ResourceAttributes(**attributes)
    )
    answer = api.create_self_subject_access_review(client.V1SelfSubjectAccessReview(spec=spec))
    return bool(answer.status.allowed)


def permissions_in(api: client.AuthorizationV1Api, namespace: str) -> set[Permission]:
    """Everything the caller may do in a namespace (cluster-wide grants included), expanded."""
    spec = client.V1SelfSubjectRulesReviewSpec(namespace=namespace)
    answer = api.create_self_subject_rules_review(client.V1SelfSubjectRulesReview(spec=spec))
    assert not answer.status.incomplete, answer.status.evaluation_error
    expanded: set[Permission] = set()
    for rule in answer.status.resource_rules:
        for group in rule.api_groups or [""]:
            for resource in rule.resources or []:
                for verb in rule.verbs:
                    for name in rule.resource_names or [""]:
                        expanded.add((group, resource, verb, name))
    return expanded


def as_identity(kubeconfig: Path) -> client.AuthorizationV1Api:
    return client.AuthorizationV1Api(config.new_client_from_config(config_file=str(kubeconfig)))


def build(kubectl: Kubectl, directory: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize` a directory into its objects."""
    return [doc for doc in yaml.safe_load_all(kubectl("kustomize", str(directory)).stdout) if doc]


def get_json(kubectl: Kubectl, *args: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(kubectl("get", *args, "-o", "json").stdout)
    return result


@pytest.fixture(scope="module")
def applied(kubectl: Kubectl, crds_installed: None) -> str:
    """`kubectl apply -k deploy/`, as a platform team runs it; returns its stderr."""
    return kubectl("apply", "-k", str(DEPLOY)).stderr


@pytest.fixture(scope="module")
def certmint_identity(
    applied: str, service_account_kubeconfig: Callable[[str, str], Path]
) -> client.AuthorizationV1Api:
    """The API as the certmint ServiceAccount itself, with a TokenRequest token."""
    return as_identity(service_account_kubeconfig(SYSTEM_NAMESPACE, "certmint"))


@pytest.fixture(scope="module")
def baseline(
    applied: str, service_account_kubeconfig: Callable[[str, str], Path]
) -> Callable[[str], set[Permission]]:
    """What any ServiceAccount may do with no binding at all (discovery, self-reviews)."""
    api = as_identity(service_account_kubeconfig(SYSTEM_NAMESPACE, "certmint-test-nobody"))
    return lambda namespace: permissions_in(api, namespace)


def test_kubectl_apply_k_deploy_succeeds_without_pod_security_warnings(applied: str) -> None:
    assert "PodSecurity" not in applied


DEPLOYED_OBJECTS = [
    ("namespace", "", SYSTEM_NAMESPACE),
    ("customresourcedefinition", "", "certificates.certmint.io"),
    ("customresourcedefinition", "", "issuers.certmint.io"),
    ("customresourcedefinition", "", "clusterissuers.certmint.io"),
    ("serviceaccount", SYSTEM_NAMESPACE, "certmint"),
    ("clusterrole", "", "certmint-controller"),
    ("clusterrolebinding", "", "certmint-controller"),
    ("clusterrole", "", "certmint-view"),
    ("clusterrole", "", "certmint-edit"),
    ("role", SYSTEM_NAMESPACE, "certmint-leader-election"),
    ("rolebinding", SYSTEM_NAMESPACE, "certmint-leader-election"),
    ("deployment", SYSTEM_NAMESPACE, "certmint"),
    ("poddisruptionbudget", SYSTEM_NAMESPACE, "certmint"),
    ("service", SYSTEM_NAMESPACE, "certmint-metrics"),
    ("networkpolicy", SYSTEM_NAMESPACE, "certmint"),
]


@pytest.mark.parametrize(
    ("kind", "namespace", "name"),
    DEPLOYED_OBJECTS,
    ids=[
        f"apply creates {kind} {namespace + '/' if namespace else ''}{name}"
        for kind, namespace, name in DEPLOYED_OBJECTS
    ],
)
def test_apply_creates_every_object(
    applied: str, kubectl: Kubectl, kind: str, namespace: str, name: str
) -> None:
    scope = ["-n", namespace] if namespace else []
    assert kubectl("get", kind, name, *scope, "-o", "name").stdout.strip().endswith(f"/{name}")


def test_the_deployment_runs_two_hardened_replicas_spread_over_nodes(
    applied: str, kubectl: Kubectl
) -> None:
    deployment = get_json(kubectl, "deployment", "certmint", "-n", SYSTEM_NAMESPACE)
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    anti_affinity = pod["affinity"]["podAntiAffinity"]
    preferred = anti_affinity["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert {
        "replicas": deployment["spec"]["replicas"],
        "serviceAccountName": pod["serviceAccountName"],
        "spread over": preferred["podAffinityTerm"]["topologyKey"],
        "pod securityContext": pod["securityContext"],
        "container securityContext": container["securityContext"],
        "args": container["args"],
        "probes": [
            (probe["httpGet"]["path"], probe["httpGet"]["port"])
            for probe in (container["livenessProbe"], container["readinessProbe"])
        ],
        "port": container["ports"],
        "resources": sorted(container["resources"]),
        "tmp": [mount["mountPath"] for mount in container["volumeMounts"]],
    } == {
        "replicas": 2,
        "serviceAccountName": "certmint",
        "spread over": "kubernetes.io/hostname",
        "pod securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "container securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "args": ["-A", "--metrics-port", "9403", "--log-format", "json"],
        "probes": [("/livez", "metrics"), ("/readyz", "metrics")],
        "port": [{"name": "metrics", "containerPort": 9403, "protocol": "TCP"}],
        "resources": ["limits", "requests"],
        "tmp": ["/tmp"],
    }


def test_the_budget_service_and_network_policy_select_the_operator_pods(
    applied: str, kubectl: Kubectl
) -> None:
    deployment = get_json(kubectl, "deployment", "certmint", "-n", SYSTEM_NAMESPACE)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    budget = get_json(kubectl, "pdb", "certmint", "-n", SYSTEM_NAMESPACE)["spec"]
    service = get_json(kubectl, "service", "certmint-metrics", "-n", SYSTEM_NAMESPACE)["spec"]
    policy = get_json(kubectl, "networkpolicy", "certmint", "-n", SYSTEM_NAMESPACE)["spec"]
    selectors = [
        budget["selector"]["matchLabels"],
        service["selector"],
        policy["podSelector"]["matchLabels"],
    ]
    assert {
        "selectors match the pods": all(s.items() <= pod_labels.items() for s in selectors),
        "minAvailable": budget["minAvailable"],
        "service port": [(port["port"], port["targetPort"]) for port in service["ports"]],
        "policy types": policy["policyTypes"],
        "ingress ports": [port["port"] for rule in policy["ingress"] for port in rule["ports"]],
        "egress ports": [port["port"] for rule in policy["egress"] for port in rule["ports"]],
        "egress destinations": [rule.get("to") for rule in policy["egress"]],
    } == {
        "selectors match the pods": True,
        "minAvailable": 1,
        "service port": [(9403, "metrics")],
        "policy types": ["Ingress", "Egress"],
        "ingress ports": [9403],
        "egress ports": [443, 6443],
        "egress destinations": [None],
    }


def test_the_operator_pod_is_admitted_under_the_restricted_pod_security_standard(
    applied: str, kubectl: Kubectl
) -> None:
    deployment = get_json(kubectl, "deployment", "certmint", "-n", SYSTEM_NAMESPACE)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "certmint-admission-check", "namespace": SYSTEM_NAMESPACE},
        "spec": deployment["spec"]["template"]["spec"],
    }
    result = kubectl(
        "create", "--dry-run=server", "-f", "-", "-o", "name", input=json.dumps(pod), check=False
    )
    assert (result.returncode, result.stderr) == (0, "")


def test_a_pod_without_hardening_is_refused_in_certmint_system(
    applied: str, kubectl: Kubectl
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "unhardened", "namespace": SYSTEM_NAMESPACE},
        "spec": {"containers": [{"name": "x", "image": "x"}]},
    }
    result = kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False)
    assert (result.returncode, 'violates PodSecurity "restricted' in result.stderr) == (1, True)


def test_no_certmint_rbac_rule_uses_a_wildcard(applied: str, kubectl: Kubectl) -> None:
    objects = build(kubectl, DEPLOY) + build(kubectl, NAMESPACED_OVERLAY)
    wildcards = [
        (obj["kind"], obj["metadata"]["name"], rule)
        for obj in objects
        if obj["kind"] in {"Role", "ClusterRole"}
        for rule in obj["rules"]
        if "*" in [*rule.get("apiGroups", []), *rule.get("resources", []), *rule["verbs"]]
    ]
    assert wildcards == []


def test_the_service_account_may_do_exactly_its_job_cluster_wide(
    certmint_identity: client.AuthorizationV1Api,
    baseline: Callable[[str], set[Permission]],
) -> None:
    everyone = baseline("default")
    granted = permissions_in(certmint_identity, "default") - everyone
    expected = CLUSTER_WIDE_PERMISSIONS - everyone
    assert (sorted(granted - expected), sorted(expected - granted)) == ([], [])


def test_the_service_account_holds_leases_only_in_its_own_namespace(
    certmint_identity: client.AuthorizationV1Api,
    baseline: Callable[[str], set[Permission]],
) -> None:
    everyone = baseline(SYSTEM_NAMESPACE)
    granted = permissions_in(certmint_identity, SYSTEM_NAMESPACE) - everyone
    expected = (CLUSTER_WIDE_PERMISSIONS | LEADER_ELECTION_PERMISSIONS) - everyone
    assert (sorted(granted - expected), sorted(expected - granted)) == ([], [])


@pytest.mark.parametrize(
    "attributes",
    [attrs for _, attrs in ALLOWED],
    ids=[f"certmint may {what}" for what, _ in ALLOWED],
)
def test_the_service_account_may(
    certmint_identity: client.AuthorizationV1Api, attributes: dict[str, str]
) -> None:
    assert review(certmint_identity, attributes) is True


@pytest.mark.parametrize(
    "attributes",
    [attrs for _, attrs in FORBIDDEN],
    ids=[f"certmint may not {what}" for what, _ in FORBIDDEN],
)
def test_the_service_account_may_not(
    certmint_identity: client.AuthorizationV1Api, attributes: dict[str, str]
) -> None:
    assert review(certmint_identity, attributes) is False


def test_the_namespaced_overlay_builds_with_roles_only(kubectl: Kubectl) -> None:
    objects = build(kubectl, NAMESPACED_OVERLAY)
    (deployment,) = [obj for obj in objects if obj["kind"] == "Deployment"]
    assert {
        "cluster-scoped kinds": sorted({obj["kind"] for obj in objects} & CLUSTER_SCOPED_KINDS),
        "namespaces": sorted({obj["metadata"]["namespace"] for obj in objects}),
        "args": deployment["spec"]["template"]["spec"]["containers"][0]["args"],
        "roles": sorted(obj["metadata"]["name"] for obj in objects if obj["kind"] == "Role"),
    } == {
        "cluster-scoped kinds": [],
        "namespaces": ["certmint"],
        "args": ["-n", "$(CERTMINT_NAMESPACE)", "--metrics-port", "9403", "--log-format", "json"],
        "roles": ["certmint-controller", "certmint-leader-election"],
    }


def test_the_namespaced_overlay_confines_the_operator_to_its_namespace(
    kubectl: Kubectl,
    namespace: str,
    tmp_path: Path,
    service_account_kubeconfig: Callable[[str, str], Path],
    baseline: Callable[[str], set[Permission]],
) -> None:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": namespace,
                "resources": [os.path.relpath(NAMESPACED_OVERLAY, overlay)],
            }
        )
    )
    kubectl("apply", "-k", str(overlay))
    api = as_identity(service_account_kubeconfig(namespace, "certmint"))

    everyone = baseline(namespace)
    granted_here = permissions_in(api, namespace) - everyone
    expected_here = NAMESPACED_OVERLAY_PERMISSIONS - everyone
    granted_elsewhere = permissions_in(api, "default") - baseline("default")
    assert {
        "extra here": sorted(granted_here - expected_here),
        "missing here": sorted(expected_here - granted_here),
        "elsewhere": sorted(granted_elsewhere),
        "list ClusterIssuers": review(
            api, {"verb": "list", "group": "certmint.io", "resource": "clusterissuers"}
        ),
        "list namespaces": review(api, {"verb": "list", "resource": "namespaces"}),
    } == {
        "extra here": [],
        "missing here": [],
        "elsewhere": [],
        "list ClusterIssuers": False,
        "list namespaces": False,
    }


def test_the_servicemonitor_component_and_monitoring_build_together(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    # kustomize refuses absolute paths; an overlay elsewhere names deploy/ relatively.
    def relative(path: Path) -> str:
        return os.path.relpath(path, tmp_path)

    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [relative(DEPLOY), relative(DEPLOY / "monitoring")],
                "components": [relative(DEPLOY / "monitoring" / "servicemonitor")],
            }
        )
    )
    objects = {(obj["kind"], obj["metadata"]["name"]): obj for obj in build(kubectl, tmp_path)}
    monitor = objects[("ServiceMonitor", "certmint")]
    service = objects[("Service", "certmint-metrics")]
    dashboard = objects[("ConfigMap", "certmint-dashboard")]
    assert {
        "rule": ("PrometheusRule", "certmint") in objects,
        "monitor selects the service": monitor["spec"]["selector"]["matchLabels"].items()
        <= service["metadata"]["labels"].items(),
        "job label": service["metadata"]["labels"][monitor["spec"]["jobLabel"]],
        "endpoint": (
            monitor["spec"]["endpoints"][0]["port"],
            monitor["spec"]["endpoints"][0]["honorLabels"],
        ),
        "dashboard": json.loads(dashboard["data"]["certmint.json"])
        == json.loads((DEPLOY / "monitoring" / "dashboard.json").read_text()),
        "dashboard label": dashboard["metadata"]["labels"]["grafana_dashboard"],
    } == {
        "rule": True,
        "monitor selects the service": True,
        "job label": "certmint",
        "endpoint": ("metrics", True),
        "dashboard": True,
        "dashboard label": "1",
    }
