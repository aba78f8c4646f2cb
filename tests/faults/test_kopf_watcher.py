"""A watcher kopf gave up on is detected, and kopf restarted without restarting the process.

kopf retries a refused request 9 times over about 54 s, then its watcher task fails, is
logged, and is never started again (kopf 1.45 then fails its root task "multidimensional
multitasker" too, and kopf ends; a kopf that just left the watcher dead would be caught
by the supervisor's watcher check). Here the certmint ClusterRole loses ``clusterissuers``
and the API server is restarted, so that kopf's reconnecting watch is refused. The
operator must stay alive (``/livez`` 200), restart kopf, and, once the right is back,
watch both issuer kinds again: a ClusterIssuer and an Issuer created afterwards become
Ready and issue.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from typing import Any

import pytest
from harness.control_plane import APISERVER, ControlPlane
from kubernetes import client

from tests.faults import harness
from tests.faults.harness import StartOperator
from tests.integration.support import GROUP, VERSION, create, wait_until

ROLE = "certmint-controller"
CLUSTER_ISSUER = "kopf-restart"


@pytest.fixture
def role_restored(kube: client.ApiClient) -> Iterator[dict[str, Any]]:
    """The controller ClusterRole as deployed; put back after the test, whatever happens."""
    rbac = client.RbacAuthorizationV1Api(kube)
    original = kube.sanitize_for_serialization(rbac.read_cluster_role(ROLE))
    yield original
    body = copy.deepcopy(original)
    body["metadata"].pop("resourceVersion", None)
    rbac.patch_cluster_role(ROLE, {"rules": body["rules"]})


def without_cluster_issuers(role: dict[str, Any]) -> list[dict[str, Any]]:
    rules = copy.deepcopy(role["rules"])
    for rule in rules:
        rule["resources"] = [r for r in rule.get("resources") or () if "clusterissuers" not in r]
    return [rule for rule in rules if rule["resources"]]


def cluster_issuer_ready(kube: client.ApiClient) -> bool:
    body = client.CustomObjectsApi(kube).get_cluster_custom_object(
        GROUP, VERSION, "clusterissuers", CLUSTER_ISSUER
    )
    conditions = (body.get("status") or {}).get("conditions") or ()
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def test_a_watcher_kopf_gave_up_on_restarts_kopf_not_the_process(
    control_plane: ControlPlane,
    kube: client.ApiClient,
    namespace: str,
    start_operator: StartOperator,
    role_restored: dict[str, Any],
) -> None:
    operator = start_operator()
    rbac = client.RbacAuthorizationV1Api(kube)
    rbac.patch_cluster_role(ROLE, {"rules": without_cluster_issuers(role_restored)})
    control_plane.stop(APISERVER)  # kopf's open watches break; their reconnect is refused
    control_plane.start(APISERVER)
    wait_until(
        lambda: "starting it again" in operator.log(),
        timeout=120,
        what="the supervisor noticing kopf's failed watcher",
    )
    while_refused = harness.operator_alive(operator)
    rbac.patch_cluster_role(ROLE, {"rules": role_restored["rules"]})
    restored_at = time.monotonic()

    create(
        kube,
        {
            "kind": "ClusterIssuer",
            "metadata": {"name": CLUSTER_ISSUER},
            "spec": {
                "ca": {"secretName": CLUSTER_ISSUER, "generate": {"commonName": "kopf"}},
                "trustDomain": "faults.example",
            },
        },
    )
    try:
        wait_until(lambda: cluster_issuer_ready(kube), timeout=120, what="ClusterIssuer Ready")
        harness.issuer(kube, namespace)
        names = harness.burst(kube, namespace, 3)
        harness.wait_all_ready(kube, namespace, names, timeout=60)
        print(f"\nissuers issued again {time.monotonic() - restored_at:.1f}s after the restore")
        assert {
            "while refused": {key: while_refused[key] for key in ("running", "livez")},
            "kopf restarted": operator.log().count("serves issuers, clusterissuers: starting kopf")
            >= 2,
            "issued": harness.issued_state(kube, namespace, names),
            "after": harness.operator_alive(operator),
        } == {
            "while refused": {"running": True, "livez": 200},
            "kopf restarted": True,
            "issued": harness.expected_state(names),
            "after": {"running": True, "livez": 200, "readyz": 200},
        }
    finally:
        client.CustomObjectsApi(kube).delete_cluster_custom_object(
            GROUP, VERSION, "clusterissuers", CLUSTER_ISSUER
        )
