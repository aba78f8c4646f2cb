"""Renewal timing and retry backoff, with an injected clock."""

from __future__ import annotations

import datetime
import hashlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certmint.pki import errors, renewal

T0 = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
HOUR = datetime.timedelta(hours=1)
MINUTE = datetime.timedelta(minutes=1)
SECOND = datetime.timedelta(seconds=1)


@pytest.mark.parametrize(
    ("lifetime", "settings", "expected_offset"),
    [
        pytest.param(
            24 * HOUR,
            {},
            16 * HOUR,
            id="by default renew when two thirds of the lifetime have passed",
        ),
        pytest.param(
            24 * HOUR,
            {"renew_before": 6 * HOUR},
            18 * HOUR,
            id="renewBefore counts back from notAfter",
        ),
        pytest.param(
            24 * HOUR,
            {"renew_before_percentage": 25},
            18 * HOUR,
            id="renewBeforePercentage is a share of the lifetime",
        ),
        pytest.param(
            24 * HOUR,
            {"renew_before": 24 * HOUR},
            16 * HOUR,
            id="a window as long as the lifetime falls back to one third",
        ),
        pytest.param(
            HOUR,
            {"renew_before": 2 * HOUR},
            40 * MINUTE,
            id="a window longer than a clamped lifetime falls back to one third",
        ),
        pytest.param(
            24 * HOUR,
            {"renew_before": MINUTE},
            24 * HOUR - 5 * MINUTE,
            id="a tiny window is widened to the five minute safety margin",
        ),
        pytest.param(
            10 * MINUTE,
            {"renew_before": SECOND},
            9 * MINUTE,
            id="short lifetimes keep a tenth of the lifetime as margin",
        ),
    ],
)
def test_renewal_time_without_jitter(
    lifetime: datetime.timedelta, settings: dict[str, Any], expected_offset: datetime.timedelta
) -> None:
    moment = renewal.renewal_time(
        T0, T0 + lifetime, jitter_seed="ns/name", jitter_fraction=0.0, **settings
    )
    assert moment == T0 + expected_offset


def test_jitter_is_deterministic_and_moves_renewal_earlier() -> None:
    def at(seed: str) -> datetime.datetime:
        return renewal.renewal_time(T0, T0 + 24 * HOUR, jitter_seed=seed)

    assert at("payments/api") == at("payments/api")
    spread = {at(f"ns/cert-{index}") for index in range(50)}
    assert len(spread) > 40
    window = 8 * HOUR
    assert all(T0 + 16 * HOUR - window * 0.1 <= moment <= T0 + 16 * HOUR for moment in spread)


def test_jitter_matches_the_documented_hash() -> None:
    # The unit is the first 8 bytes of sha256(seed), big-endian, over 2**64.
    unit = int.from_bytes(hashlib.sha256(b"payments/api").digest()[:8], "big") / 2**64
    assert renewal.jitter_unit("payments/api") == unit
    moment = renewal.renewal_time(T0, T0 + 24 * HOUR, jitter_seed="payments/api")
    expected = (T0 + 16 * HOUR - 8 * HOUR * (0.1 * unit)).replace(microsecond=0)
    assert moment == expected


@given(
    lifetime_seconds=st.integers(min_value=1, max_value=400 * 86400),
    percentage=st.none() | st.integers(min_value=1, max_value=99),
    seed=st.text(max_size=20),
    jitter=st.floats(min_value=0, max_value=0.99),
)
def test_renewal_time_always_lies_between_not_before_and_the_safety_margin(
    lifetime_seconds: int, percentage: int | None, seed: str, jitter: float
) -> None:
    lifetime = datetime.timedelta(seconds=lifetime_seconds)
    moment = renewal.renewal_time(
        T0,
        T0 + lifetime,
        renew_before_percentage=percentage,
        jitter_seed=seed,
        jitter_fraction=jitter,
    )
    assert T0 <= moment <= T0 + lifetime - renewal.safety_margin(lifetime)
    assert moment.microsecond == 0


@pytest.mark.parametrize(
    ("settings", "field", "message"),
    [
        pytest.param(
            {"renew_before": HOUR, "renew_before_percentage": 10},
            "renewBefore",
            "set renewBefore or renewBeforePercentage, not both",
            id="both renewBefore and a percentage",
        ),
        pytest.param(
            {"renew_before": -HOUR},
            "renewBefore",
            "must be positive, not -1 day, 23:00:00",
            id="a negative renewBefore",
        ),
        pytest.param(
            {"renew_before_percentage": 0},
            "renewBeforePercentage",
            "must be between 1 and 99, not 0",
            id="zero percent",
        ),
        pytest.param(
            {"renew_before_percentage": 100},
            "renewBeforePercentage",
            "must be between 1 and 99, not 100",
            id="a hundred percent",
        ),
        pytest.param(
            {"jitter_fraction": 1.0},
            "jitterFraction",
            "must be in [0, 1), not 1.0",
            id="a jitter of the whole window",
        ),
    ],
)
def test_bad_renewal_settings_name_the_field(
    settings: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(errors.PKIError) as caught:
        renewal.renewal_time(T0, T0 + HOUR, jitter_seed="x", **settings)  # type: ignore[arg-type]
    assert (caught.value.field, caught.value.message) == (field, message)


def test_a_certificate_without_lifetime_is_refused() -> None:
    with pytest.raises(errors.PKIError) as caught:
        renewal.renewal_time(T0, T0, jitter_seed="x")
    assert (caught.value.field, caught.value.message) == (
        "duration",
        "the certificate lifetime must be positive, not 0:00:00",
    )


@pytest.mark.parametrize(
    ("failures", "expected"),
    [
        pytest.param(0, datetime.timedelta(0), id="no failure means no wait"),
        pytest.param(1, 5 * SECOND, id="the first failure waits five seconds"),
        pytest.param(2, 10 * SECOND, id="the second failure waits ten seconds"),
        pytest.param(4, 40 * SECOND, id="each failure doubles the wait"),
        pytest.param(7, 5 * MINUTE, id="the wait is capped at five minutes"),
        pytest.param(10**9, 5 * MINUTE, id="a huge count stays at the cap without overflowing"),
    ],
)
def test_backoff_doubles_up_to_a_cap(failures: int, expected: datetime.timedelta) -> None:
    assert renewal.backoff_delay(failures) == expected
    assert renewal.next_retry_time(T0, failures) == T0 + expected


def test_backoff_accepts_other_bounds() -> None:
    assert renewal.backoff_delay(3, base=MINUTE, cap=HOUR) == 4 * MINUTE


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param(
            {"failed_attempts": -1}, "failed_attempts must be >= 0, not -1", id="negative attempts"
        ),
        pytest.param(
            {"failed_attempts": 1, "base": datetime.timedelta(0)},
            "need 0 < base <= cap, got base=0:00:00 cap=0:05:00",
            id="a zero base",
        ),
        pytest.param(
            {"failed_attempts": 1, "base": HOUR},
            "need 0 < base <= cap, got base=1:00:00 cap=0:05:00",
            id="a base above the cap",
        ),
    ],
)
def test_bad_backoff_arguments_are_refused(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(
        ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)") + "$"
    ):
        renewal.backoff_delay(**arguments)  # type: ignore[arg-type]
