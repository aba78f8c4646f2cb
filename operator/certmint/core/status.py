"""Status documents, built explicitly: the status is the contract (pure functions).

Times are RFC 3339 in UTC with a ``Z``. A condition keeps its ``lastTransitionTime``
while its ``status`` stays the same, so rewriting the same state is a no-op that the
controller can detect with `unchanged` and skip.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any


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
    """One condition; ``lastTransitionTime`` moves only when ``status`` changes."""
    before = next((c for c in previous or () if c.get("type") == type_), None)
    transition = (
        before["lastTransitionTime"]
        if before and before.get("status") == status and before.get("lastTransitionTime")
        else timestamp(now)
    )
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
        "observedGeneration": generation,
    }


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
