"""What ``/livez`` and ``/readyz`` answer: liveness (not wedged) and readiness (synced, in touch).

Both are pure verdicts over the facts the runner gathers (`Facts`), so each case is a unit
test. Liveness fails only when restarting the process would help: a task of the runtime
ended, a watch loop showed no sign of life for `WATCH_STALL_LIMIT_S`, or a reconciliation
ran for `WORKER_STUCK_LIMIT_S`. An API server that is down does not fail liveness: the
watches keep retrying, which is progress, and a restart would not bring the API back.
Readiness additionally needs the store synced (every kind listed) and leader election in
touch with the Lease, as leader or as standby.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

#: A watch loop ends each watch after 300 s and retries a failure after at most 30 s;
#: twice the longest normal silence plus slack means it is stuck.
WATCH_STALL_LIMIT_S = 660.0
#: A reconciliation makes a few API calls, each cut off after 80 s; ten minutes is stuck.
WORKER_STUCK_LIMIT_S = 600.0


@dataclasses.dataclass(frozen=True)
class Facts:
    """What the runner knows about its parts at one moment.

    Attributes:
        ended_tasks: Names of runtime tasks that are no longer running.
        watch_stalls: Seconds since each watch loop (by name) last made progress.
        longest_reconciliations: Seconds the oldest reconciliation runs, by queue.
        synced: Whether every watched kind's first listing is in the store.
        in_contact: Whether leader election got an answer about the Lease lately.
        leader: Whether this replica leads (reported, never required).
    """

    ended_tasks: tuple[str, ...]
    watch_stalls: Mapping[str, float]
    longest_reconciliations: Mapping[str, float]
    synced: bool
    in_contact: bool
    leader: bool


@dataclasses.dataclass(frozen=True)
class Verdict:
    """A probe's answer: ``ok`` and, when not, every reason (one per line in the body)."""

    ok: bool
    reasons: tuple[str, ...]

    def body(self) -> str:
        return "ok\n" if self.ok else "".join(f"{reason}\n" for reason in self.reasons)


def liveness(facts: Facts) -> Verdict:
    """Fails when a part of the operator is wedged (see the module docstring).

    Args:
        facts: The current state of the runtime's parts.

    Returns:
        The verdict; its reasons name each wedged part. It does not look at the API
        server's availability, the cache or the leadership.
    """
    reasons = [f"task {name} ended" for name in facts.ended_tasks]
    reasons += [
        f"watch {name} made no progress for {seconds:.0f}s"
        for name, seconds in sorted(facts.watch_stalls.items())
        if seconds > WATCH_STALL_LIMIT_S
    ]
    reasons += [
        f"a {queue} reconciliation has run for {seconds:.0f}s"
        for queue, seconds in sorted(facts.longest_reconciliations.items())
        if seconds > WORKER_STUCK_LIMIT_S
    ]
    return Verdict(not reasons, tuple(reasons))


def readiness(facts: Facts) -> Verdict:
    """Ready when alive, the store is synced and leader election is in touch with the Lease.

    Args:
        facts: The current state of the runtime's parts.

    Returns:
        The verdict. A standby is ready as well as a leader: it does not need the Lease.
    """
    reasons = list(liveness(facts).reasons)
    if not facts.synced:
        reasons.append("cache not synced: a watched kind has not been listed yet")
    if not facts.in_contact:
        reasons.append("leader election has no answer from the API server about the Lease")
    return Verdict(not reasons, tuple(reasons))
