"""After an issuer's look at its CA: its Event, how its Certificates wake, its next look."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from certmint.core import issuer_pacing, outcome, state
from tests.unit.test_readiness import NOT_READY, OTHER_CA, RUNTIME, SELF_SIGNED

NOW = datetime(2030, 1, 1, tzinfo=UTC)
ROTATED = dataclasses.replace(RUNTIME, signer=OTHER_CA)
NEW_BUNDLE = dataclasses.replace(RUNTIME, bundle_pem=RUNTIME.bundle_pem + b"\n")


@pytest.mark.parametrize(
    ("previous", "runtime", "expected"),
    [
        pytest.param(state.NOT_RECONCILED, RUNTIME, "recover", id="the first look wakes all now"),
        pytest.param(
            state.NOT_RECONCILED, NOT_READY, "recover",
            id="the first look wakes all even when not ready: they report why",
        ),
        pytest.param(NOT_READY, RUNTIME, "recover", id="becoming ready forgives the backoff"),
        pytest.param(RUNTIME, ROTATED, "reissue", id="a new signing CA re-issues every leaf"),
        pytest.param(RUNTIME, NEW_BUNDLE, "reissue", id="a new trust bundle refreshes ca.crt"),
        pytest.param(RUNTIME, RUNTIME, None, id="nothing changed: nothing to wake"),
        pytest.param(
            RUNTIME, NOT_READY, "reissue",
            id="losing the CA empties the bundle: all look again through the rate bound",
        ),
        pytest.param(NOT_READY, NOT_READY, None, id="staying not ready wakes nobody"),
        pytest.param(SELF_SIGNED, SELF_SIGNED, None, id="a self-signed issuer has no CA to change"),
    ],
)  # fmt: skip
def test_how_the_certificates_of_an_issuer_wake(
    previous: state.IssuerRuntime, runtime: state.IssuerRuntime, expected: str | None
) -> None:
    assert issuer_pacing.certificate_wake(previous, runtime) == expected


@pytest.mark.parametrize(
    ("previous", "runtime", "expected"),
    [
        pytest.param(
            state.NOT_RECONCILED, RUNTIME,
            outcome.Event("Normal", "CAReady", "signing with CA CN=workloads root"),
            id="a first ready look is announced as Normal",
        ),
        pytest.param(
            RUNTIME, NOT_READY,
            outcome.Event(
                "Warning", "CASecretMissing", 'CA Secret "certmint-system/workloads-ca" is gone'
            ),
            id="losing the CA is a Warning",
        ),
        pytest.param(RUNTIME, ROTATED, None, id="a rotation keeps readiness: no Event here"),
        pytest.param(NOT_READY, NOT_READY, None, id="the same trouble is announced once"),
    ],
)  # fmt: skip
def test_a_change_of_readiness_is_announced_once(
    previous: state.IssuerRuntime, runtime: state.IssuerRuntime, expected: outcome.Event | None
) -> None:
    assert issuer_pacing.announcement(previous, runtime) == expected


BACKOFF = outcome.Backoff(base=timedelta(seconds=5), cap=timedelta(minutes=5))
RESYNC = timedelta(seconds=30)


@pytest.mark.parametrize(
    ("ready", "failed", "moments", "expected"),
    [
        pytest.param(True, 0, [], (NOW + RESYNC, 0), id="a ready issuer is read again at resync"),
        pytest.param(
            True, 3, [NOW + timedelta(seconds=10), NOW + timedelta(hours=1)],
            (NOW + timedelta(seconds=10), 0),
            id="a rotation due before the resync is looked at then, and failures reset",
        ),
        pytest.param(
            True, 0, [NOW - timedelta(seconds=10)], (NOW, 0),
            id="a moment already past is looked at now, never in the past",
        ),
        pytest.param(
            False, 0, [NOW + timedelta(seconds=1)], (NOW + timedelta(seconds=5), 1),
            id="a first failure waits the base delay, whatever the CA's moments",
        ),
        pytest.param(
            False, 3, [], (NOW + timedelta(seconds=40), 4), id="the fourth failure waits 40 s"
        ),
        pytest.param(
            False, 99, [], (NOW + timedelta(minutes=5), 100), id="failures wait at most the cap"
        ),
    ],
)  # fmt: skip
def test_when_an_issuer_is_looked_at_again(
    ready: bool, failed: int, moments: list[datetime], expected: tuple[datetime, int]
) -> None:
    assert (
        issuer_pacing.next_check(ready, failed, moments, NOW, backoff=BACKOFF, resync=RESYNC)
        == expected
    )
