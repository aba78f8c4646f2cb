"""The Certificate status: parsed once into a typed value, patched only where it differs."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from certmint.core import status

T0 = datetime(2030, 1, 1, tzinfo=UTC)
LATER = datetime(2030, 1, 2, 12, 30, tzinfo=UTC)
READY: dict[str, Any] = {
    "type": "Ready",
    "status": "True",
    "reason": "Ready",
    "message": "up to date",
    "lastTransitionTime": "2030-01-01T00:00:00Z",
    "observedGeneration": 2,
}
DOCUMENT: dict[str, Any] = {
    "conditions": [READY],
    "identity": "spiffe://cluster.local/ns/shop/sa/web",
    "serialNumber": "0a1b",
    "notBefore": "2030-01-01T00:00:00Z",
    "notAfter": "2030-01-02T00:00:00Z",
    "renewalTime": "2030-01-01T16:00:00Z",
    "revision": 4,
    "failedIssuanceAttempts": None,
    "lastFailureTime": None,
    "issuerFingerprint": "ab" * 32,
}
PARSED = status.CertificateStatus(
    conditions=(
        status.Condition("Ready", "True", "Ready", "up to date", "2030-01-01T00:00:00Z", 2),
    ),
    identity="spiffe://cluster.local/ns/shop/sa/web",
    serial_number="0a1b",
    not_before=T0,
    not_after=datetime(2030, 1, 2, tzinfo=UTC),
    renewal_time=datetime(2030, 1, 1, 16, tzinfo=UTC),
    revision=4,
    issuer_fingerprint="ab" * 32,
)


def test_a_status_document_is_parsed_into_typed_fields_and_written_back_the_same() -> None:
    parsed = status.CertificateStatus.parse(DOCUMENT)
    assert parsed == PARSED
    assert parsed.to_json() == DOCUMENT


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(None, id="no status at all"),
        pytest.param({}, id="an empty status"),
        pytest.param(
            {
                "conditions": "Ready",
                "identity": 7,
                "notAfter": "tomorrow",
                "renewalTime": 1_900_000_000,
                "revision": "4",
                "failedIssuanceAttempts": True,
            },
            id="malformed fields",
        ),
    ],
)
def test_a_missing_or_malformed_field_reads_as_absent(document: dict[str, Any] | None) -> None:
    assert status.CertificateStatus.parse(document) == status.CertificateStatus()


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({}, {}, id="nothing differs: nothing to patch"),
        pytest.param(
            {"renewal_time": LATER, "revision": 5},
            {"renewalTime": "2030-01-02T12:30:00Z", "revision": 5},
            id="only the fields that differ are patched",
        ),
        pytest.param(
            {"identity": None},
            {"identity": None},
            id="a field that goes away is patched to null (merge-patch removal)",
        ),
        pytest.param(
            {"failed_issuance_attempts": 1, "last_failure_time": LATER},
            {"failedIssuanceAttempts": 1, "lastFailureTime": "2030-01-02T12:30:00Z"},
            id="a field that appears is patched",
        ),
        pytest.param(
            {"conditions": (dataclasses.replace(PARSED.conditions[0], message="other"),)},
            {"conditions": [{**READY, "message": "other"}]},
            id="a changed condition sends the whole list (merge patches replace lists)",
        ),
    ],
)
def test_the_patch_holds_only_what_changed(
    changes: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert status.patch(PARSED, dataclasses.replace(PARSED, **changes)) == expected


@pytest.mark.parametrize(
    ("before", "value", "since"),
    [
        pytest.param(None, "True", "2030-01-02T12:30:00Z", id="a new condition starts now"),
        pytest.param(
            PARSED.conditions[0],
            "True",
            "2030-01-01T00:00:00Z",
            id="the same status keeps its time",
        ),
        pytest.param(
            PARSED.conditions[0], "False", "2030-01-02T12:30:00Z", id="a status change moves it"
        ),
    ],
)
def test_a_condition_moves_its_transition_time_only_when_its_status_changes(
    before: status.Condition | None, value: str, since: str
) -> None:
    after = status.transition(
        before, type_="Ready", status=value, reason="R", message="m", generation=3, now=LATER
    )
    assert after == status.Condition("Ready", value, "R", "m", since, 3)
