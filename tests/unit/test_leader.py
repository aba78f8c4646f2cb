"""Leader election through outages: retry, step down on the deadline, campaign again.

The Lease API is a small in-memory stand-in for `kube.Kube`'s three Lease calls; each call
can be made to fail (as `kube` reports a request without an answer) or to hang. The
mapping of real transport failures is tested in test_kube_rest.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from certmint.k8s import kube, leader
from tests.unit.test_informer import DEADLINE_S, wait_until


class LeaseApi:
    """One Lease in memory; ``failing`` calls raise status 0, ``hanging`` ones never answer."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.failing = 0
        self.hanging = asyncio.Event()
        self.hanging.set()  # set: answering
        self.version = 0

    async def _answer(self) -> None:
        if self.failing:
            self.failing -= 1
            raise kube.KubeError(0, "no answer from the API server: connection refused")
        await self.hanging.wait()

    async def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        await self._answer()
        return self.lease

    async def create_lease(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        await self._answer()
        return self._store(body)

    async def replace_lease(self, namespace: str, name: str, body: dict[str, Any]) -> Any:
        await self._answer()
        return self._store(body)

    def _store(self, body: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        self.lease = {
            **body,
            "metadata": {**body["metadata"], "resourceVersion": str(self.version)},
        }
        return self.lease


def elector(api: LeaseApi) -> leader.LeaderElector:
    return leader.LeaderElector(
        cast(kube.Kube, api),
        "certmint-system",
        "me",
        lease_duration=0.6,
        renew_deadline=0.3,
        retry_period=0.02,
    )


async def test_an_api_without_answers_is_retried_until_the_lease_is_won() -> None:
    api = LeaseApi()
    api.failing = 5
    candidate = elector(api)
    running = asyncio.create_task(candidate.run())
    await asyncio.wait_for(candidate.leading.wait(), DEADLINE_S)
    assert (api.failing, running.done(), candidate.is_leader()) == (0, False, True)
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)


async def test_a_leader_whose_renewals_hang_steps_down_and_leads_again_later() -> None:
    api = LeaseApi()
    candidate = elector(api)
    running = asyncio.create_task(candidate.run())
    await asyncio.wait_for(candidate.leading.wait(), DEADLINE_S)

    api.hanging.clear()  # etcd stalls: requests get no answer
    await asyncio.wait_for(candidate.following.wait(), DEADLINE_S)
    stepped_down = (candidate.is_leader(), running.done())
    await wait_until(lambda: not candidate.in_contact())  # readiness fails after a Lease duration

    api.hanging.set()
    await asyncio.wait_for(candidate.leading.wait(), DEADLINE_S)
    assert {
        "stepped down": stepped_down,
        "leads again": (candidate.is_leader(), candidate.transitions),
    } == {"stepped down": (False, False), "leads again": (True, 2)}
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)


async def test_workers_wait_for_leadership_and_go_on_once_it_is_won() -> None:
    api = LeaseApi()
    api.failing = 3
    candidate = elector(api)
    waiting = asyncio.create_task(candidate.wait_for_leadership())
    running = asyncio.create_task(candidate.run())
    await asyncio.wait_for(waiting, DEADLINE_S)
    assert (candidate.is_leader(), api.failing) == (True, 0)
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)


async def test_workers_waiting_past_a_late_renewal_go_on_when_it_succeeds() -> None:
    """A renewal after the deadline (the loop was busy) that succeeds wakes the workers."""
    api, now = LeaseApi(), [0.0]
    candidate = leader.LeaderElector(
        cast(kube.Kube, api), "certmint-system", "me", renew_deadline=10.0,
        retry_period=0.02, clock=lambda: now[0],
    )  # fmt: skip
    running = asyncio.create_task(candidate.run())
    await asyncio.wait_for(candidate.leading.wait(), DEADLINE_S)
    api.hanging.clear()  # the next renewal is under way, not yet answered
    await wait_until(candidate.is_leader)
    now[0] += 11.0  # the event loop was blocked past the renew deadline
    waiting = asyncio.create_task(candidate.wait_for_leadership())
    await asyncio.sleep(0)
    late = (candidate.is_leader(), candidate.leading.is_set(), waiting.done())
    api.hanging.set()  # the late renewal succeeds
    await asyncio.wait_for(waiting, DEADLINE_S)
    assert (late, candidate.is_leader(), candidate.transitions) == ((False, True, False), True, 1)
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)


@pytest.mark.parametrize(
    ("status", "transient"),
    [
        pytest.param(0, True, id="no answer at all is transient"),
        pytest.param(429, True, id="a 429 from API priority and fairness is transient"),
        pytest.param(503, True, id="a 503 while the API server starts is transient"),
        pytest.param(500, True, id="a 500 (etcd timed out) is transient"),
        pytest.param(403, False, id="a 403 is an answer about the request"),
        pytest.param(422, False, id="a 422 is an answer about the request"),
        pytest.param(409, False, id="a 409 is an answer about the request"),
    ],
)
def test_which_api_failures_are_transient(status: int, transient: bool) -> None:
    assert kube.is_transient(kube.KubeError(status, "x")) is transient
