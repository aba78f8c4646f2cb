"""The Normal Event budget (``--event-qps``, ``--event-burst``) against the real API server.

A storm of issuances posts the burst of Normal Events and counts the rest in
``certmint_events_dropped_total``; every Certificate is still issued and Ready, and a
Warning Event is never dropped. The session operator runs without a budget (the other
tests count Events), so this test stops it and runs one with a tiny budget: a burst of 4
and a rate so low that no token comes back during the test.
"""

from __future__ import annotations

from pathlib import Path

from kubernetes import client

from tests.integration.support import (
    OperatorProcess,
    ca_issuer,
    certificate,
    events_for,
    wait_for_condition,
    wait_until,
)

BURST = 4
CERTIFICATES = 6
DROPPED = "certmint_events_dropped_total"
DROPPED_ISSUED = f'{DROPPED}{{reason="Issued"}}'


def normal_events(kube: client.ApiClient, namespace: str) -> list[client.CoreV1Event]:
    items = client.CoreV1Api(kube).list_namespaced_event(namespace).items
    return [event for event in items if event.type == "Normal"]


def issued_events(kube: client.ApiClient, namespace: str, names: list[str]) -> int:
    return sum(
        event.reason == "Issued" for name in names for event in events_for(kube, namespace, name)
    )


def test_a_storm_posts_the_burst_of_normal_events_counts_the_rest_and_keeps_warnings(
    kube: client.ApiClient,
    operator: OperatorProcess,
    kubeconfig_path: Path,
    namespace: str,
    tmp_path: Path,
) -> None:
    budgeted = OperatorProcess(
        kubeconfig_path,
        tmp_path,
        name="budgeted",
        extra_args=(f"--event-burst={BURST}", "--event-qps=0.0001"),
    )
    operator.stop()
    try:
        budgeted.start("-n", namespace)
        wait_until(
            lambda: budgeted.metric_values("certmint_leader").get("certmint_leader") == 1.0,
            timeout=30,
            what="the budgeted operator to lead",
        )
        ca_issuer(kube, namespace)
        names = [f"web-{number}" for number in range(CERTIFICATES)]
        for name in names:
            certificate(kube, namespace, name)
        certificate(kube, namespace, "denied", dnsNames=["db.elsewhere.svc"])

        for name in names:
            wait_for_condition(kube, namespace, name)
        wait_for_condition(kube, namespace, "denied", status="False", reason="PolicyViolation")

        def issued_accounted_for() -> bool:
            dropped = budgeted.metric_values(DROPPED).get(DROPPED_ISSUED, 0.0)
            return issued_events(kube, namespace, names) + dropped == CERTIFICATES

        wait_until(issued_accounted_for, what="an Issued Event posted or dropped for each")
        wait_until(
            lambda: len(normal_events(kube, namespace)) == BURST,
            what=f"the burst of {BURST} Normal Events to be posted",
        )
        wait_until(
            lambda: [e.type for e in events_for(kube, namespace, "denied")] == ["Warning"],
            what="the Denied Warning Event",
        )
        dropped = budgeted.metric_values(DROPPED)[DROPPED_ISSUED]
        assert dropped >= CERTIFICATES - BURST
        assert issued_events(kube, namespace, names) == CERTIFICATES - dropped
        assert len(normal_events(kube, namespace)) == BURST
    finally:
        budgeted.stop()
        operator.start()
