"""Field readers of certmint.api.fields: Go-style durations read and spelled."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certmint.api import fields
from tests.unit.api_bodies import NOT_A_DURATION

# ---------------------------------------------------------------------------
# Durations


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("24h", timedelta(hours=24), id="hours"),
        pytest.param("1h30m", timedelta(minutes=90), id="hours and minutes add up"),
        pytest.param("90s", timedelta(seconds=90), id="seconds beyond a minute"),
        pytest.param("1.5h", timedelta(minutes=90), id="a fraction of an hour"),
        pytest.param(".5s", timedelta(milliseconds=500), id="a fraction without leading zero"),
        pytest.param("2m", timedelta(minutes=2), id="minutes"),
        pytest.param("1h1h", timedelta(hours=2), id="a repeated unit adds up as in Go"),
        pytest.param("+10m", timedelta(minutes=10), id="an explicit plus sign"),
        pytest.param("87600h", timedelta(days=3650), id="ten years in hours"),
        pytest.param("1.0000009s", timedelta(seconds=1), id="below a microsecond is dropped"),
    ],
)
def test_parse_duration_reads_go_durations(text: str, expected: timedelta) -> None:
    assert fields.parse_duration(text, "spec.duration") == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("1d", f'"1d" {NOT_A_DURATION}', id="days are not a Go unit"),
        pytest.param("500ms", f'"500ms" {NOT_A_DURATION}', id="milliseconds are refused"),
        pytest.param("24", f'"24" {NOT_A_DURATION}', id="a number without a unit"),
        pytest.param("", f'"" {NOT_A_DURATION}', id="an empty string"),
        pytest.param("1h 30m", f'"1h 30m" {NOT_A_DURATION}', id="spaces between parts"),
        pytest.param("h", f'"h" {NOT_A_DURATION}', id="a unit without a number"),
        pytest.param("-1h", '"-1h" is negative; durations must be positive', id="negative"),
        pytest.param("0s", '"0s" is zero; durations must be positive', id="zero"),
        pytest.param(
            "0.0000001s", '"0.0000001s" is zero; durations must be positive', id="sub-microsecond"
        ),
        pytest.param("876001h", '"876001h" is longer than 876000h', id="more than a century"),
        pytest.param("9" * 65 + "h", f'"{"9" * 65}h" {NOT_A_DURATION}', id="absurdly long text"),
    ],
)
def test_parse_duration_refuses_non_durations(text: str, message: str) -> None:
    with pytest.raises(fields.SpecError) as caught:
        fields.parse_duration(text, "spec.duration")
    assert (caught.value.field, caught.value.message) == ("spec.duration", message)
    assert str(caught.value) == f"spec.duration: {message}"


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        pytest.param(timedelta(hours=168), "168h", id="hours beyond a day stay hours"),
        pytest.param(timedelta(minutes=90), "1h30m", id="hours and minutes"),
        pytest.param(timedelta(seconds=90.5), "1m30.5s", id="fractional seconds"),
        pytest.param(timedelta(microseconds=1), "0.000001s", id="one microsecond"),
        pytest.param(timedelta(hours=1, seconds=1), "1h1s", id="zero minutes are left out"),
    ],
)
def test_format_duration_spells_go_durations(duration: timedelta, text: str) -> None:
    assert fields.format_duration(duration) == text


def test_format_duration_refuses_zero() -> None:
    with pytest.raises(ValueError, match="only positive durations have a spelling"):
        fields.format_duration(timedelta(0))


@given(st.timedeltas(min_value=timedelta(microseconds=1), max_value=fields.MAX_PARSED_DURATION))
def test_parse_duration_reads_back_what_format_duration_writes(duration: timedelta) -> None:
    assert fields.parse_duration(fields.format_duration(duration), "f") == duration


@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=10_000), st.sampled_from(["h", "m", "s"])),
        min_size=1,
        max_size=5,
    ).filter(lambda parts: any(number for number, _ in parts))
)
def test_parse_duration_adds_up_whole_parts(parts: list[tuple[int, str]]) -> None:
    text = "".join(f"{number}{unit}" for number, unit in parts)
    seconds = {"h": 3600, "m": 60, "s": 1}
    expected = timedelta(seconds=sum(number * seconds[unit] for number, unit in parts))
    assert fields.parse_duration(text, "f") == expected
