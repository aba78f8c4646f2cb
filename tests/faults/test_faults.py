"""Faults on the real control plane during a burst of Certificates (issue #15).

Each test creates a burst of `BURST` Certificates, breaks something while they are being
issued, ends the fault and then demands: every Certificate Ready, every key matching its
certificate, each issued exactly once (revision 1 in status and Secret, serials agreeing),
no object certmint does not own changed, and the operator still running and healthy. The
time from the end of the fault to all Ready is printed (``pytest -s``) for the record.
"""

from __future__ import annotations

import signal
import time

from harness.control_plane import APISERVER, ETCD, ControlPlane
from kubernetes import client

from tests.faults import harness
from tests.integration.support import OperatorProcess, wait_until

BURST = 300
#: From the end of a fault until every Certificate of the burst must be Ready.
RECOVERY_LIMIT_S = 120.0

StartOperator = harness.StartOperator


def verify(
    kube: client.ApiClient,
    namespace: str,
    *,
    names: list[str],
    foreign: dict[str, str],
    operators: list[OperatorProcess],
    fault: str,
    fault_ended: float,
    pending_at_fault: int,
) -> None:
    """Everything issue #15 asks for after a fault, asserted as one value.

    ``pending_at_fault`` (Certificates not Ready when the fault began) must be above zero:
    a fault that missed the burst proves nothing.
    """
    recovered = harness.wait_all_ready(
        kube, namespace, names, timeout=RECOVERY_LIMIT_S - (time.monotonic() - fault_ended)
    )
    print(
        f"\nFAULT {fault}: all {len(names)} Ready "
        f"{time.monotonic() - fault_ended:.1f}s after the fault ended "
        f"({recovered:.1f}s of waiting after the checks began); "
        f"{pending_at_fault} were not Ready when it began"
    )
    for process in operators:
        wait_until(lambda p=process: p.get("/readyz")[0] == 200, timeout=30, what="readiness")
    assert {
        "the fault hit the burst": pending_at_fault > 0,
        "issued once, keys match": harness.issued_state(kube, namespace, names),
        "foreign objects": harness.current_versions(kube, namespace, foreign),
        "operators": [harness.operator_alive(process) for process in operators],
    } == {
        "the fault hit the burst": True,
        "issued once, keys match": harness.expected_state(names),
        "foreign objects": foreign,
        "operators": [{"running": True, "livez": 200, "readyz": 200}] * len(operators),
    }


def test_the_operator_rides_out_a_killed_and_restarted_api_server(
    control_plane: ControlPlane,
    kube: client.ApiClient,
    namespace: str,
    start_operator: StartOperator,
) -> None:
    foreign = harness.foreign_objects(kube, namespace)
    harness.issuer(kube, namespace)
    names = harness.burst(kube, namespace, BURST)
    operator = start_operator()
    pending = harness.wait_some_ready(kube, namespace, names)

    control_plane.stop(APISERVER)
    harness.hold(4.0)  # the outage of issue #15: restarted 4 s after the kill
    assert operator.running, f"the operator exited during the outage:\n{operator.log()[-2000:]}"
    control_plane.start(APISERVER)

    verify(
        kube,
        namespace,
        names=names,
        foreign=foreign,
        operators=[operator],
        fault="API server killed",
        fault_ended=time.monotonic(),
        pending_at_fault=pending,
    )


def test_an_operator_started_before_the_api_server_syncs_and_reconciles(
    control_plane: ControlPlane,
    kube: client.ApiClient,
    namespace: str,
    start_operator: StartOperator,
) -> None:
    foreign = harness.foreign_objects(kube, namespace)
    harness.issuer(kube, namespace)
    names = harness.burst(kube, namespace, BURST)

    control_plane.stop(APISERVER)
    operator = start_operator(wait_healthy=False)
    wait_until(lambda: operator.get("/livez")[0] == 200, timeout=30, what="the probes to answer")
    harness.hold(5.0)  # the API server stays away while the operator starts
    not_ready = {"running": operator.running, "readyz": operator.get("/readyz")[0]}
    control_plane.start(APISERVER)
    fault_ended = time.monotonic()
    late = harness.burst(kube, namespace, 1, prefix="late")

    assert not_ready == {"running": True, "readyz": 503}
    verify(
        kube,
        namespace,
        names=names + late,
        foreign=foreign,
        operators=[operator],
        fault="API server down at start",
        fault_ended=fault_ended,
        pending_at_fault=len(names),
    )


def test_the_operator_rides_out_a_20_s_etcd_stall(
    control_plane: ControlPlane,
    kube: client.ApiClient,
    namespace: str,
    start_operator: StartOperator,
) -> None:
    foreign = harness.foreign_objects(kube, namespace)
    harness.issuer(kube, namespace)
    names = harness.burst(kube, namespace, BURST)
    operator = start_operator()
    pending = harness.wait_some_ready(kube, namespace, names)

    control_plane.pause(ETCD)
    try:
        harness.hold(20.0)  # the stall of issue #15
    finally:
        control_plane.resume(ETCD)

    verify(
        kube,
        namespace,
        names=names,
        foreign=foreign,
        operators=[operator],
        fault="etcd paused 20 s",
        fault_ended=time.monotonic(),
        pending_at_fault=pending,
    )


KILL_ROUNDS = 6
KILL_EVERY_S = 3.0


def test_an_ha_pair_killed_every_few_seconds_issues_everything_once(
    kube: client.ApiClient, namespace: str, start_operator: StartOperator
) -> None:
    foreign = harness.foreign_objects(kube, namespace)
    names = harness.burst(kube, namespace, BURST)
    pair = [  # the short Lease of test_ha.py: a killed leader is replaced within 7 s or so
        start_operator(name, lease_duration=6.0, extra=(f"--identity={name}",))
        for name in ("replica-a", "replica-b")
    ]
    # The issuer last: the leader would otherwise issue the whole burst while the second
    # replica starts, and the kills would hit nothing.
    harness.issuer(kube, namespace)
    pending = harness.wait_some_ready(kube, namespace, names)

    for round_ in range(KILL_ROUNDS):
        victim = pair[round_ % 2]  # each replica in turn, leader or standby
        victim.stop(signal.SIGKILL)
        victim.start()
        harness.hold(KILL_EVERY_S)

    verify(
        kube,
        namespace,
        names=names,
        foreign=foreign,
        operators=pair,
        fault="HA pair SIGKILLed",
        fault_ended=time.monotonic(),
        pending_at_fault=pending,
    )


SQUEEZE = "certmint-squeeze"
SQUEEZE_S = 20.0


def squeeze(kube: client.ApiClient) -> None:
    """A priority level of one share that rejects, for the certmint ServiceAccount's writes."""
    custom = client.CustomObjectsApi(kube)
    group, version = "flowcontrol.apiserver.k8s.io", "v1"
    custom.create_cluster_custom_object(
        group,
        version,
        "prioritylevelconfigurations",
        {
            "apiVersion": f"{group}/{version}",
            "kind": "PriorityLevelConfiguration",
            "metadata": {"name": SQUEEZE},
            "spec": {
                "type": "Limited",
                "limited": {
                    "nominalConcurrencyShares": 1,
                    "lendablePercent": 0,
                    "borrowingLimitPercent": 0,
                    "limitResponse": {"type": "Reject"},
                },
            },
        },
    )
    account = {"name": "certmint", "namespace": "certmint-system"}
    custom.create_cluster_custom_object(
        group,
        version,
        "flowschemas",
        {
            "apiVersion": f"{group}/{version}",
            "kind": "FlowSchema",
            "metadata": {"name": SQUEEZE},
            "spec": {
                "priorityLevelConfiguration": {"name": SQUEEZE},
                "matchingPrecedence": 200,
                "distinguisherMethod": {"type": "ByUser"},
                "rules": [
                    {
                        "subjects": [{"kind": "ServiceAccount", "serviceAccount": account}],
                        "resourceRules": [
                            {
                                "verbs": ["create", "update", "patch", "delete"],
                                "apiGroups": ["*"],
                                "resources": ["*"],
                                "namespaces": ["*"],
                                "clusterScope": True,
                            }
                        ],
                    }
                ],
            },
        },
    )


def release_squeeze(kube: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(kube)
    for plural in ("flowschemas", "prioritylevelconfigurations"):
        try:
            custom.delete_cluster_custom_object(
                "flowcontrol.apiserver.k8s.io", "v1", plural, SQUEEZE
            )
        except client.ApiException as err:
            if err.status != 404:
                raise


def rejected_writes(kube: client.ApiClient) -> float:
    """Requests the API server rejected (429) at the squeezed priority level so far."""
    response = kube.rest_client.pool_manager.request("GET", f"{kube.configuration.host}/metrics")
    assert response.status == 200, f"the API server's /metrics answered {response.status}"
    text = response.data.decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("apiserver_flowcontrol_rejected_requests_total{")
        and f'priority_level="{SQUEEZE}"' in line
    )


def test_writes_squeezed_by_api_priority_and_fairness_get_429s_and_recover(
    kube: client.ApiClient, namespace: str, start_operator: StartOperator
) -> None:
    operator = start_operator()
    foreign = harness.foreign_objects(kube, namespace)
    harness.issuer(kube, namespace)
    harness.wait_issuer_ready(kube, namespace)

    squeeze(kube)
    try:
        names = harness.burst(kube, namespace, BURST)
        harness.hold(SQUEEZE_S)  # the squeeze lasts while the burst is issued
        rejected = rejected_writes(kube)
    finally:
        release_squeeze(kube)
    print(f"\nAPF rejected {rejected:.0f} of the operator's writes with 429")

    assert rejected > 0, "API priority and fairness rejected none of the operator's writes"
    verify(
        kube,
        namespace,
        names=names,
        foreign=foreign,
        operators=[operator],
        fault="APF squeeze (429s)",
        fault_ended=time.monotonic(),
        pending_at_fault=len(names),  # the burst was created under the squeeze
    )
