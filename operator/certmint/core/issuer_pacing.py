"""What an issuer's reconciliation means for its Certificates and its next look (pure).

The issuer reconciler (`certmint.runtime.issuers`) asks these after each look at the CA:
whether to announce a change of readiness, how to wake the issuer's Certificates, and
when to look again. ``now`` is passed in.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal

from certmint.core import outcome, state
from certmint.pki import renewal

#: ``recover``: reconcile each Certificate now, forgiving its failure backoff once;
#: ``reissue``: re-issue each (or refresh its ca.crt) through the renewal rate bound.
Wake = Literal["recover", "reissue"]


def certificate_wake(previous: state.IssuerRuntime, runtime: state.IssuerRuntime) -> Wake | None:
    """How the issuer's Certificates are woken after its runtime went from ``previous``.

    Returns:
        ``recover`` on the first look or when the issuer became ready; ``reissue`` when a
        ready issuer signs with another CA or publishes another trust bundle; else None.
    """
    if previous is state.NOT_RECONCILED or (runtime.ready and not previous.ready):
        return "recover"
    signer_before = previous.signer.fingerprint_sha256 if previous.signer else None
    signer_now = runtime.signer.fingerprint_sha256 if runtime.signer else None
    rotated = previous.ready and runtime.ready and signer_before != signer_now
    bundle_changed = previous.ready and previous.bundle_digest != runtime.bundle_digest
    return "reissue" if rotated or bundle_changed else None


def announcement(
    previous: state.IssuerRuntime, runtime: state.IssuerRuntime
) -> outcome.Event | None:
    """The Event saying the issuer's readiness changed; None when it says the same."""
    if (previous.ready, previous.reason, previous.message) == (
        runtime.ready,
        runtime.reason,
        runtime.message,
    ):
        return None
    return outcome.Event("Normal" if runtime.ready else "Warning", runtime.reason, runtime.message)


def next_check(
    ready: bool,
    failed_attempts: int,
    moments: Iterable[datetime],
    now: datetime,
    *,
    backoff: outcome.Backoff,
    resync: timedelta,
) -> tuple[datetime, int]:
    """When to look at the issuer again, and its consecutive failures so far.

    Args:
        ready: Whether the issuer is ready after this look.
        failed_attempts: Consecutive looks that found it not ready, before this one.
        moments: When the CA's life changes next (a rotation to activate, a previous root
            to drop from the bundle).
        now: The current time (aware).
        backoff: The delays between failed looks.
        resync: How often a ready issuer re-reads its CA.

    Returns:
        A not-ready issuer: after the backoff of one more failure. A ready one: at the
        next resync or the earliest moment, never before ``now``; its failures reset.
    """
    if not ready:
        attempts = failed_attempts + 1
        delay = renewal.backoff_delay(attempts, base=backoff.base, cap=backoff.cap)
        return now + delay, attempts
    return max(now, min([now + resync, *moments])), 0
