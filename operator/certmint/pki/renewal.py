"""When to renew a certificate, and how long to wait after a failed attempt.

Pure functions: every moment is passed in.

Renewal time
    ``notAfter - window``, where the window is ``renewBefore``, or
    ``renewBeforePercentage`` of the lifetime, or one third of the lifetime by default
    (cert-manager's default). A window as long as the lifetime or longer would renew
    right after issuance, forever; such windows fall back to one third, as cert-manager
    does. Then a deterministic jitter moves the time *earlier* by up to
    ``jitter_fraction`` of the window (10 % by default), seeded by a stable string
    (e.g. namespace/name), so certificates issued together do not all renew in the same
    second, and the same certificate always gets the same time across restarts. Finally
    the result is kept between notBefore and ``notAfter - safety margin``, where the
    margin is a tenth of the lifetime but at most 5 minutes: there is always time left
    to retry before the old certificate expires. Times are whole seconds.

Retry backoff
    After ``n`` failed attempts in a row: 5 s, 10 s, 20 s, ... doubling up to 5 minutes.
    Workload certificates live for minutes to hours (the default policy allows 1 minute
    to 7 days), so cert-manager's 1 h to 32 h backoff would let them expire between
    attempts; 5 minutes still spares the API server a retry storm.
"""

from __future__ import annotations

import datetime
import hashlib

from certmint.pki import errors

DEFAULT_RENEW_FRACTION_DENOMINATOR = 3
DEFAULT_JITTER_FRACTION = 0.1
MAX_SAFETY_MARGIN = datetime.timedelta(minutes=5)
SAFETY_MARGIN_FRACTION = 0.1

DEFAULT_BACKOFF_BASE = datetime.timedelta(seconds=5)
DEFAULT_BACKOFF_CAP = datetime.timedelta(minutes=5)


def renewal_window(
    lifetime: datetime.timedelta,
    *,
    renew_before: datetime.timedelta | None = None,
    renew_before_percentage: int | None = None,
) -> datetime.timedelta:
    """How long before notAfter renewal is due, before jitter.

    Args:
        lifetime: notAfter - notBefore; must be positive.
        renew_before: Fixed window (spec ``renewBefore``).
        renew_before_percentage: Window as a percentage of the lifetime, 1 to 99.

    Returns:
        The window; one third of the lifetime when neither is set or the requested
        window would cover the whole lifetime.

    Raises:
        PKIError: ``renewBefore`` when both are set or the duration is not positive;
            ``renewBeforePercentage`` outside 1 to 99; ``duration`` for a lifetime that
            is not positive.
    """
    if lifetime <= datetime.timedelta(0):
        raise errors.PKIError(
            "duration", f"the certificate lifetime must be positive, not {lifetime}"
        )
    if renew_before is not None and renew_before_percentage is not None:
        raise errors.PKIError("renewBefore", "set renewBefore or renewBeforePercentage, not both")
    default = lifetime / DEFAULT_RENEW_FRACTION_DENOMINATOR
    if renew_before is not None:
        if renew_before <= datetime.timedelta(0):
            raise errors.PKIError("renewBefore", f"must be positive, not {renew_before}")
        window = renew_before
    elif renew_before_percentage is not None:
        if isinstance(renew_before_percentage, bool) or not 0 < renew_before_percentage < 100:
            raise errors.PKIError(
                "renewBeforePercentage", f"must be between 1 and 99, not {renew_before_percentage}"
            )
        window = lifetime * renew_before_percentage / 100
    else:
        window = default
    return window if window < lifetime else default


def jitter_unit(seed: str) -> float:
    """A number in [0, 1) derived from ``seed`` by SHA-256: stable across processes."""
    digest = hashlib.sha256(seed.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def safety_margin(lifetime: datetime.timedelta) -> datetime.timedelta:
    """Time kept free before notAfter: a tenth of the lifetime, at most 5 minutes."""
    return min(lifetime * SAFETY_MARGIN_FRACTION, MAX_SAFETY_MARGIN)


def renewal_time(
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    *,
    renew_before: datetime.timedelta | None = None,
    renew_before_percentage: int | None = None,
    jitter_seed: str,
    jitter_fraction: float = DEFAULT_JITTER_FRACTION,
) -> datetime.datetime:
    """The moment a certificate should be renewed (see the module docstring).

    Args:
        not_before: The certificate's notBefore (aware).
        not_after: The certificate's notAfter (aware).
        renew_before: Spec ``renewBefore``.
        renew_before_percentage: Spec ``renewBeforePercentage``.
        jitter_seed: A stable string identifying the certificate, e.g. ``"ns/name"``.
        jitter_fraction: Largest share of the window the jitter may move the time
            earlier, in [0, 1).

    Returns:
        An aware datetime in whole seconds with
        ``not_before <= result <= not_after - safety_margin(lifetime)``.

    Raises:
        PKIError: Invalid window settings (see `renewal_window`), or ``jitterFraction``
            outside [0, 1).
    """
    if not 0 <= jitter_fraction < 1:
        raise errors.PKIError("jitterFraction", f"must be in [0, 1), not {jitter_fraction}")
    lifetime = not_after - not_before
    window = renewal_window(
        lifetime, renew_before=renew_before, renew_before_percentage=renew_before_percentage
    )
    jitter = window * (jitter_fraction * jitter_unit(jitter_seed))
    moment = not_after - window - jitter
    moment = min(moment, not_after - safety_margin(lifetime)).replace(microsecond=0)
    return max(moment, not_before)


def backoff_delay(
    failed_attempts: int,
    *,
    base: datetime.timedelta = DEFAULT_BACKOFF_BASE,
    cap: datetime.timedelta = DEFAULT_BACKOFF_CAP,
) -> datetime.timedelta:
    """How long to wait before the next attempt after consecutive failures.

    Args:
        failed_attempts: Failures in a row so far; 0 means no wait.
        base: The first delay.
        cap: The longest delay.

    Returns:
        ``min(base * 2**(failed_attempts - 1), cap)``, or zero for no failures.

    Raises:
        ValueError: ``failed_attempts`` is negative, or not ``0 < base <= cap``.
    """
    if failed_attempts < 0:
        raise ValueError(f"failed_attempts must be >= 0, not {failed_attempts}")
    if base <= datetime.timedelta(0) or cap < base:
        raise ValueError(f"need 0 < base <= cap, got base={base} cap={cap}")
    if failed_attempts == 0:
        return datetime.timedelta(0)
    delay = base
    # Doubling stops at the cap, so huge attempt counts neither loop long nor overflow.
    for _ in range(failed_attempts - 1):
        if delay >= cap:
            break
        delay *= 2
    return min(delay, cap)


def next_retry_time(
    last_failure: datetime.datetime,
    attempts: int,
    *,
    base: datetime.timedelta = DEFAULT_BACKOFF_BASE,
    cap: datetime.timedelta = DEFAULT_BACKOFF_CAP,
) -> datetime.datetime:
    """When to try again: ``last_failure + backoff_delay(attempts)``.

    Args:
        last_failure: When the last attempt failed (status ``lastFailureTime``).
        attempts: Consecutive failed attempts (status ``failedIssuanceAttempts``).
        base: The first delay.
        cap: The longest delay.

    Returns:
        The earliest time for the next attempt.
    """
    return last_failure + backoff_delay(attempts, base=base, cap=cap)
