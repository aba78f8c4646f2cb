"""Liveness and readiness: pure verdicts over what the runner knows about its parts."""

from __future__ import annotations

import dataclasses

import pytest

from certmint.runtime import probes

HEALTHY = probes.Facts(
    ended_tasks=(),
    watch_stalls={"/api/v1/secrets": 12.0, "/apis/certmint.io/v1alpha1/issuers": 290.0},
    longest_reconciliations={"certificates": 3.0, "issuers": 0.0},
    synced=True,
    in_contact=True,
    leader=True,
)


@pytest.mark.parametrize(
    ("facts", "live", "ready"),
    [
        pytest.param(
            HEALTHY, (True, ()), (True, ()), id="a running, synced leader is alive and ready"
        ),
        pytest.param(
            dataclasses.replace(HEALTHY, leader=False),
            (True, ()),
            (True, ()),
            id="a standby in touch with the Lease is ready as well",
        ),
        pytest.param(
            dataclasses.replace(HEALTHY, synced=False, in_contact=False),
            (True, ()),
            (
                False,
                (
                    "cache not synced: a watched kind has not been listed yet",
                    "leader election has no answer from the API server about the Lease",
                ),
            ),
            id="an API server that is down makes it unready, never dead",
        ),
        pytest.param(
            dataclasses.replace(
                HEALTHY, watch_stalls={"/api/v1/secrets": probes.WATCH_STALL_LIMIT_S + 1}
            ),
            (False, ("watch /api/v1/secrets made no progress for 661s",)),
            (False, ("watch /api/v1/secrets made no progress for 661s",)),
            id="a watch loop silent past its deadline is wedged",
        ),
        pytest.param(
            dataclasses.replace(
                HEALTHY, longest_reconciliations={"certificates": probes.WORKER_STUCK_LIMIT_S + 5}
            ),
            (False, ("a certificates reconciliation has run for 605s",)),
            (False, ("a certificates reconciliation has run for 605s",)),
            id="a reconciliation running past its deadline means a stuck worker",
        ),
        pytest.param(
            dataclasses.replace(HEALTHY, ended_tasks=("leader-election", "workers")),
            (False, ("task leader-election ended", "task workers ended")),
            (False, ("task leader-election ended", "task workers ended")),
            id="every task that ended is named",
        ),
    ],
)
def test_liveness_and_readiness(
    facts: probes.Facts, live: tuple[bool, tuple[str, ...]], ready: tuple[bool, tuple[str, ...]]
) -> None:
    verdicts = (probes.liveness(facts), probes.readiness(facts))
    assert [(verdict.ok, verdict.reasons) for verdict in verdicts] == [live, ready]


def test_a_failing_verdict_lists_one_reason_per_line() -> None:
    verdict = probes.Verdict(False, ("task workers ended", "cache not synced"))
    assert verdict.body() == "task workers ended\ncache not synced\n"
