"""Two operator replicas, one Lease: exactly one acts, and the other takes over in time.

Each test runs two real ``certmint run`` processes with distinct ``--identity`` against the
real API server, creates a burst of Certificates, stops the leader in the middle of it
(SIGKILL: a crash; SIGTERM: a rolling update) and measures how long the standby takes to
hold the Lease and to issue again. Nothing may be issued twice: every Certificate ends at
revision 1, its Secret holds the serial its status names, and across both replicas' logs
no Certificate was issued more than once.
"""

from __future__ import annotations

import collections
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.integration.support import (
    OperatorProcess,
    certificate,
    create,
    issuances,
    leaf_of,
    read_secret,
    wait_for_condition,
    wait_until,
)

SYSTEM_NAMESPACE = "certmint-system"
LEASE = "certmint-leader"
BURST = 30  # Certificates per test: half before the leader stops, half after
TAKEOVER_LIMIT = 30.0  # seconds, from the issue


class Replica(OperatorProcess):
    """One operator replica with its own identity and Lease duration; JSON logs attribute lines."""

    def __init__(
        self, kubeconfig: Path, log_dir: Path, identity: str, lease_duration: float
    ) -> None:
        super().__init__(
            kubeconfig,
            log_dir,
            name=identity,
            lease_duration=lease_duration,
            extra_args=("--log-format=json", f"--identity={identity}"),
        )
        self.identity = identity

    def leading(self) -> bool:
        """What the replica says of itself: the ``certmint_leader`` metric."""
        return "certmint_leader 1.0" in self.metrics().splitlines()

    def issuances(self) -> list[tuple[float, str, str]]:
        """(time, "namespace/name", serial) of every "issued serial" log line."""
        return issuances(self.log())


def lease_holder(kube: client.ApiClient) -> tuple[str | None, datetime | None]:
    """(holderIdentity, acquireTime) of the certmint Lease."""
    lease = client.CoordinationV1Api(kube).read_namespaced_lease(LEASE, SYSTEM_NAMESPACE)
    return lease.spec.holder_identity, lease.spec.acquire_time


def acquired_by(kube: client.ApiClient, identity: str) -> Callable[[], datetime | None]:
    """A probe: when ``identity`` acquired the Lease, or None while someone else holds it."""

    def probe() -> datetime | None:
        holder, acquired = lease_holder(kube)
        return acquired if holder == identity else None

    return probe


def final_serials(kube: client.ApiClient, namespace: str, names: list[str]) -> dict[str, Any]:
    """Per Certificate: revision, and whether status, Secret annotation and leaf agree."""
    result: dict[str, Any] = {}
    for name in names:
        body = wait_for_condition(kube, namespace, name, timeout=60)
        secret = read_secret(kube, namespace, f"{name}-tls")
        assert secret is not None
        serial = format(leaf_of(secret).serial_number, "x")
        result[f"{namespace}/{name}"] = {
            "revision": (
                body["status"]["revision"],
                secret.metadata.annotations["certmint.io/revision"],
            ),
            "serial agrees": body["status"]["serialNumber"]
            == secret.metadata.annotations["certmint.io/serial"]
            == serial,
            "serial": serial,
        }
    return result


StartReplicas = Callable[[float], tuple[Replica, Replica]]


@pytest.fixture
def replicas(
    running_operator: OperatorProcess, kubeconfig_path: Path, tmp_path: Path
) -> Iterator[StartReplicas]:
    """Starts a leader and a standby (the session operator stopped; it restarts afterwards)."""
    running_operator.stop()
    started: list[Replica] = []

    def start(lease_duration: float) -> tuple[Replica, Replica]:
        run = uuid.uuid4().hex[:6]
        first, second = (
            Replica(kubeconfig_path, tmp_path, f"ha-{role}-{run}", lease_duration)
            for role in ("a", "b")
        )
        started.extend((first, second))
        first.start()
        wait_until(first.leading, timeout=30, what=f"{first.identity} to lead")
        second.start()
        return first, second

    yield start
    for replica in started:
        replica.stop()


STOPS = [
    pytest.param(signal.SIGKILL, 6.0, id="a killed leader is replaced within 30 s (6 s lease)"),
    pytest.param(
        signal.SIGKILL, 15.0, id="a killed leader is replaced within 30 s (15 s production lease)"
    ),
    pytest.param(
        signal.SIGTERM, 6.0, id="a stopped leader hands over before its lease expires (6 s)"
    ),
    pytest.param(
        signal.SIGTERM, 15.0, id="a stopped leader hands over before its lease expires (15 s)"
    ),
]


@pytest.mark.parametrize(("stop_signal", "lease_duration"), STOPS)
def test_the_standby_takes_over_in_time_and_nothing_is_issued_twice(
    kube: client.ApiClient,
    namespace: str,
    replicas: StartReplicas,
    stop_signal: signal.Signals,
    lease_duration: float,
) -> None:
    leader, standby = replicas(lease_duration)
    assert {
        "leader metric": (leader.leading(), standby.leading()),
        "Lease holder": lease_holder(kube)[0],
    } == {"leader metric": (True, False), "Lease holder": leader.identity}

    create(
        kube,
        {
            "kind": "Issuer",
            "metadata": {"name": "ca", "namespace": namespace},
            "spec": {"ca": {"secretName": "ca", "generate": {"commonName": "ha root"}}},
        },
    )
    names = [f"burst-{index:02d}" for index in range(BURST)]
    for name in names[: BURST // 2]:
        certificate(kube, namespace, name)
    wait_until(leader.issuances, timeout=30, what=f"{leader.identity} to start issuing")
    stopped_at = time.time()
    leader.stop(stop_signal)
    for name in names[BURST // 2 :]:
        certificate(kube, namespace, name)

    acquired = wait_until(
        acquired_by(kube, standby.identity),
        timeout=TAKEOVER_LIMIT + lease_duration,
        what=f"{standby.identity} to hold the Lease",
    )
    serials = final_serials(kube, namespace, names)
    # Only this test's namespace: earlier tests' short-lived certificates keep renewing.
    by_leader, by_standby = (
        [item for item in process.issuances() if item[1].startswith(f"{namespace}/")]
        for process in (leader, standby)
    )
    issued = by_leader + by_standby
    resumed = min(moment for moment, *_ in by_standby)
    takeover, issuing_again = acquired.timestamp() - stopped_at, resumed - stopped_at
    print(
        f"\nHA {signal.Signals(stop_signal).name} lease={lease_duration:g}s: "
        f"Lease taken over after {takeover:.2f}s, issuing again after {issuing_again:.2f}s "
        f"(from the signal); "
        f"{len(by_leader)} issued by the old leader, "
        f"{len(by_standby)} by the new one"
    )

    # A standby may take a Lease only once it has seen it unrenewed for its whole duration;
    # the leader renews every lease/7.5 s, so a crash is noticed lease - lease/7.5 s after it
    # at the earliest. A released Lease is taken at the standby's next attempt, before that.
    expiry = lease_duration - lease_duration / 7.5
    window = (expiry - 0.5, TAKEOVER_LIMIT) if stop_signal == signal.SIGKILL else (0.0, expiry)
    times_issued = collections.Counter(where for _, where, _ in issued)
    assert {
        "new leader": (lease_holder(kube)[0], standby.leading()),
        "takeover in its window": window[0] <= takeover < window[1],
        "issuing again within 30 s": issuing_again < TAKEOVER_LIMIT,
        "old leader issued after the takeover": [
            where for moment, where, _ in by_leader if moment >= acquired.timestamp()
        ],
        "standby issued before the takeover": [
            where
            for moment, where, _ in by_standby
            if moment < acquired.timestamp() - 0.01  # log times are truncated to milliseconds
        ],
        "revisions": {where: item["revision"] for where, item in serials.items()},
        "serials agree": all(item["serial agrees"] for item in serials.values()),
        "issued more than once": sorted(where for where, n in times_issued.items() if n > 1),
        "logged serial is the final one": all(
            serials[where]["serial"] == serial for _, where, serial in issued
        ),
    } == {
        "new leader": (standby.identity, True),
        "takeover in its window": True,
        "issuing again within 30 s": True,
        "old leader issued after the takeover": [],
        "standby issued before the takeover": [],
        "revisions": {f"{namespace}/{name}": (1, "1") for name in names},
        "serials agree": True,
        "issued more than once": [],
        "logged serial is the final one": True,
    }
