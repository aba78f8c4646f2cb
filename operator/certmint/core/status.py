"""Status documents, built explicitly: the status is the contract (pure functions).

Times are RFC 3339 in UTC with a ``Z``. A condition keeps its ``lastTransitionTime``
while its ``status`` stays the same, so rewriting the same state is a no-op that the
controller can detect and skip. A Certificate's status is parsed once, when the object
is stored, into a `CertificateStatus`; `patch` turns a desired one into the merge patch
of the fields that differ.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any


@functools.lru_cache(maxsize=4096)
def _shared(text: str) -> str:
    """The first equal string seen lately: a fleet's records share their few messages.

    A bounded cache rather than `sys.intern`, as messages may name objects.
    """
    return text


def timestamp(moment: datetime) -> str:
    """RFC 3339, UTC, whole seconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str | None) -> datetime | None:
    """The inverse of `timestamp`; None for a missing or malformed value."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclasses.dataclass(frozen=True, slots=True)
class Condition:
    """One entry of ``status.conditions``."""

    type: str
    status: str
    reason: str = ""
    message: str = ""
    last_transition_time: str = ""
    observed_generation: int | None = None

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> Condition:
        generation = body.get("observedGeneration")
        return cls(
            # Few distinct values across a fleet: interned, one string each.
            type=sys.intern(str(body.get("type", ""))),
            status=sys.intern(str(body.get("status", ""))),
            reason=sys.intern(str(body.get("reason") or "")),
            message=_shared(str(body.get("message") or "")),
            last_transition_time=str(body.get("lastTransitionTime") or ""),
            observed_generation=generation if isinstance(generation, int) else None,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "lastTransitionTime": self.last_transition_time,
            "observedGeneration": self.observed_generation,
        }


def transition(
    before: Condition | None,
    *,
    type_: str,
    status: str,
    reason: str,
    message: str,
    generation: int,
    now: datetime,
) -> Condition:
    """One condition; ``lastTransitionTime`` moves only when ``status`` changes."""
    kept = before is not None and before.status == status and before.last_transition_time
    return Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=before.last_transition_time if kept and before else timestamp(now),
        observed_generation=generation,
    )


def condition(
    previous: Sequence[Mapping[str, Any]] | None,
    *,
    type_: str,
    status: str,
    reason: str,
    message: str,
    generation: int,
    now: datetime,
) -> dict[str, Any]:
    """`transition` over raw condition dicts (the issuers' status stays a document)."""
    before = next((c for c in previous or () if c.get("type") == type_), None)
    return transition(
        Condition.parse(before) if before is not None else None,
        type_=type_,
        status=status,
        reason=reason,
        message=message,
        generation=generation,
        now=now,
    ).to_json()


def find_condition(status: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    return next((c for c in status.get("conditions") or () if c.get("type") == type_), None)


def unchanged(previous: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Whether writing ``desired`` over ``previous`` would change nothing.

    A key set to None in ``desired`` means "remove" (merge-patch semantics).
    """
    for key, value in desired.items():
        if value is None:
            if previous.get(key) is not None:
                return False
        elif previous.get(key) != value:
            return False
    return True


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _shared_str(value: object) -> str | None:
    return _shared(value) if isinstance(value, str) and value else None


def _moment(value: object) -> datetime | None:
    return parse_timestamp(value if isinstance(value, str) else None)


@dataclasses.dataclass(frozen=True, slots=True)
class CertificateStatus:
    """A Certificate's status, parsed once (field names follow the CRD's, snake_cased).

    A field that is missing or malformed in the object reads as None.
    """

    conditions: tuple[Condition, ...] = ()
    identity: str | None = None
    serial_number: str | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None
    renewal_time: datetime | None = None
    revision: int | None = None
    failed_issuance_attempts: int | None = None
    last_failure_time: datetime | None = None
    issuer_fingerprint: str | None = None

    @classmethod
    def parse(cls, body: Mapping[str, Any] | None) -> CertificateStatus:
        """Reads ``status`` as the API returned it; never raises."""
        body = body or {}
        conditions = body.get("conditions")
        return cls(
            conditions=tuple(
                Condition.parse(each)
                for each in (conditions if isinstance(conditions, list) else ())
                if isinstance(each, Mapping)
            ),
            identity=_shared_str(body.get("identity")),
            serial_number=_str(body.get("serialNumber")),
            not_before=_moment(body.get("notBefore")),
            not_after=_moment(body.get("notAfter")),
            renewal_time=_moment(body.get("renewalTime")),
            revision=_int(body.get("revision")),
            failed_issuance_attempts=_int(body.get("failedIssuanceAttempts")),
            last_failure_time=_moment(body.get("lastFailureTime")),
            issuer_fingerprint=_str(body.get("issuerFingerprint")),
        )

    def condition(self, type_: str) -> Condition | None:
        return next((each for each in self.conditions if each.type == type_), None)

    def to_json(self) -> dict[str, Any]:
        """The status document; None marks a field to remove (merge-patch semantics)."""

        def moment(value: datetime | None) -> str | None:
            return None if value is None else timestamp(value)

        return {
            "conditions": [each.to_json() for each in self.conditions],
            "identity": self.identity,
            "serialNumber": self.serial_number,
            "notBefore": moment(self.not_before),
            "notAfter": moment(self.not_after),
            "renewalTime": moment(self.renewal_time),
            "revision": self.revision,
            "failedIssuanceAttempts": self.failed_issuance_attempts,
            "lastFailureTime": moment(self.last_failure_time),
            "issuerFingerprint": self.issuer_fingerprint,
        }


def patch(current: CertificateStatus, desired: CertificateStatus) -> dict[str, Any]:
    """The merge patch that turns ``current`` into ``desired``: only the fields that differ.

    Returns:
        An empty dict when nothing differs (no API call is needed).
    """
    before, after = current.to_json(), desired.to_json()
    return {key: value for key, value in after.items() if before[key] != value}
