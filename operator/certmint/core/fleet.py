"""The fleet in numbers: Certificates counted by issuer, namespace, readiness and expiry.

What a scrape reports about Certificates is kept here, derived once per change of a
record rather than once per scrape: the store tells the index of every change
(`state.Store.subscribe`), which turns the record's labels, readiness and times into an
`Entry` at once. The entries feed counts per group (namespace, issuer) and sorted lists
of times, brought up to date with the pending changes at the next scrape (`refresh`).
Asking "how many expire within a day?" or "which need attention now?" then costs a
binary search per group, not a walk over every Certificate (pure; no prometheus_client).
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Iterator
from typing import NamedTuple

from certmint.core import state

#: (namespace, issuer name, issuer kind): the labels every aggregate is broken down by.
Group = tuple[str, str, str]

#: How far ahead `GroupCounts.expiring` looks, in seconds: expired, 1 hour, 1, 7, 30 days.
EXPIRY_WINDOWS = (0.0, 3600.0, 86400.0, 7 * 86400.0, 30 * 86400.0)

#: The renewal-overdue margin's bounds, the same as the CertificateRenewalOverdue alert's.
OVERDUE_MARGIN_MIN = 60.0
OVERDUE_MARGIN_MAX = 900.0

#: `FleetIndex.refresh` rebuilds everything, rather than updating entry by entry, when more
#: than one entry in this many changed.
REBUILD_SHARE = 8


def overdue_at(not_after: float | None, renewal: float | None) -> float | None:
    """When a certificate not renewed by then counts as renewal overdue (Unix time).

    The margin past the renewal time is half of the time left between the renewal time and
    notAfter, between 1 and 15 minutes, exactly as the CertificateRenewalOverdue alert says.

    Returns:
        None when there is no renewal time (never issued).
    """
    if renewal is None:
        return None
    span = (not_after - renewal) / 2 if not_after is not None else OVERDUE_MARGIN_MIN
    return renewal + min(max(span, OVERDUE_MARGIN_MIN), OVERDUE_MARGIN_MAX)


class Entry(NamedTuple):
    """What the metrics need of one Certificate, derived once from its record.

    Attributes:
        group: Its namespace and issuer.
        ready: The Ready condition's status (``True``, ``False``, ``Unknown`` when absent).
        reason: The Ready condition's reason, "" when absent.
        not_after: ``status.notAfter`` as Unix time.
        renewal: ``status.renewalTime`` as Unix time.
        overdue_at: See `overdue_at`.
        attention_from: From when it needs attention: -inf when not Ready, else its renewal
            time (its renewal window has begun, which includes expired), else its notAfter,
            +inf without either.
    """

    group: Group
    ready: str
    reason: str
    not_after: float | None
    renewal: float | None
    overdue_at: float | None
    attention_from: float


def entry_of(record: state.CertificateRecord) -> Entry:
    """The entry of a record (pure)."""
    ref = record.spec.issuer_ref if record.spec is not None else None
    current = record.status.condition("Ready")
    ready = current.status if current is not None and current.status else "Unknown"
    expiry = record.status.not_after
    due = record.status.renewal_time
    not_after = expiry.timestamp() if expiry is not None else None
    renewal = due.timestamp() if due is not None else None
    attention_from = next((each for each in (renewal, not_after) if each is not None), math.inf)
    if ready != "True":
        attention_from = -math.inf
    return Entry(
        group=(record.namespace, ref.name if ref else "", ref.kind if ref else ""),
        ready=ready,
        reason=current.reason if current is not None else "",
        not_after=not_after,
        renewal=renewal,
        overdue_at=overdue_at(not_after, renewal),
        attention_from=attention_from,
    )


class GroupCounts:
    """The Certificates of one group: counts by readiness, sorted notAfter and overdue times."""

    __slots__ = ("by_condition", "not_after", "overdue_at", "size")

    def __init__(self) -> None:
        #: (Ready status, reason) -> how many.
        self.by_condition: Counter[tuple[str, str]] = Counter()
        self.not_after: list[float] = []
        self.overdue_at: list[float] = []
        self.size = 0

    def add(self, entry: Entry) -> None:
        self.size += 1
        self.by_condition[entry.ready, entry.reason] += 1
        if entry.not_after is not None:
            bisect.insort(self.not_after, entry.not_after)
        if entry.overdue_at is not None:
            bisect.insort(self.overdue_at, entry.overdue_at)

    def remove(self, entry: Entry) -> None:
        self.size -= 1
        condition = (entry.ready, entry.reason)
        self.by_condition[condition] -= 1
        if self.by_condition[condition] <= 0:
            del self.by_condition[condition]
        if entry.not_after is not None:
            del self.not_after[bisect.bisect_left(self.not_after, entry.not_after)]
        if entry.overdue_at is not None:
            del self.overdue_at[bisect.bisect_left(self.overdue_at, entry.overdue_at)]

    def expiring(self, now: float, window: float) -> int:
        """How many have a notAfter at or before ``now + window`` (window 0: expired)."""
        return bisect.bisect_right(self.not_after, now + window)

    def with_not_after(self) -> int:
        return len(self.not_after)

    def overdue(self, now: float) -> int:
        """How many are past their renewal time by the margin (`overdue_at`)."""
        return bisect.bisect_right(self.overdue_at, now)

    def earliest_not_after(self) -> float | None:
        return self.not_after[0] if self.not_after else None


class FleetIndex:
    """Entries of every stored Certificate, their group counts, and who needs attention."""

    def __init__(self) -> None:
        self._entries: dict[state.CertificateKey, Entry] = {}
        #: Changes since the last `refresh`: the new entry, None for a deleted Certificate.
        self._pending: dict[state.CertificateKey, Entry | None] = {}
        self._groups: dict[Group, GroupCounts] = {}
        #: Those not Ready, in no particular order.
        self._not_ready: dict[state.CertificateKey, None] = {}
        #: (attention_from, key) of the others, sorted by time: those whose renewal time has
        #: come are a prefix. Pairs of removed entries stay until compacted (`_live`).
        self._attention: list[tuple[float, state.CertificateKey]] = []
        self._stale = 0

    def changed(self, key: state.CertificateKey, record: state.CertificateRecord | None) -> None:
        """Takes note of a stored, replaced or deleted (None) record; a store subscriber."""
        self._pending[key] = entry_of(record) if record is not None else None

    def refresh(self) -> int:
        """Applies the changes noted since the last call to the counts.

        Returns:
            How many Certificates changed.
        """
        pending, self._pending = self._pending, {}
        entries = self._entries
        if len(pending) * REBUILD_SHARE > len(entries):
            # Many changes at once (start-up, a re-issue wave): sorting once beats as many
            # insertions into long lists.
            for key, fresh in pending.items():
                if fresh is None:
                    entries.pop(key, None)
                else:
                    entries[key] = fresh
            self._rebuild()
            return len(pending)
        for key, fresh in pending.items():
            if (previous := entries.pop(key, None)) is not None:
                self._remove(key, previous)
            if fresh is not None:
                entries[key] = fresh
                self._add(key, fresh)
        if self._stale * 2 > len(self._attention):
            self._attention = list(self._live(self._attention))
            self._stale = 0
        return len(pending)

    def _rebuild(self) -> None:
        # One pass, tuple unpacking rather than attribute reads: this is the first scrape's
        # cost at start-up, about 2 µs per Certificate.
        groups: dict[Group, GroupCounts] = {}
        not_ready: dict[state.CertificateKey, None] = {}
        attention: list[tuple[float, state.CertificateKey]] = []
        for key, (group, ready, reason, not_after, _, overdue, since) in self._entries.items():
            tally = groups.get(group)
            if tally is None:
                tally = groups[group] = GroupCounts()
            tally.size += 1
            tally.by_condition[ready, reason] += 1
            if not_after is not None:
                tally.not_after.append(not_after)
            if overdue is not None:
                tally.overdue_at.append(overdue)
            if since == -math.inf:
                not_ready[key] = None
            else:
                attention.append((since, key))
        for tally in groups.values():
            tally.not_after.sort()
            tally.overdue_at.sort()
        attention.sort(key=_time_of)
        self._groups, self._not_ready, self._attention, self._stale = (
            groups,
            not_ready,
            attention,
            0,
        )

    def _add(self, key: state.CertificateKey, entry: Entry) -> None:
        group = self._groups.get(entry.group)
        if group is None:
            group = self._groups[entry.group] = GroupCounts()
        group.add(entry)
        if entry.attention_from == -math.inf:
            self._not_ready[key] = None
        else:
            bisect.insort_right(self._attention, (entry.attention_from, key), key=_time_of)

    def _remove(self, key: state.CertificateKey, entry: Entry) -> None:
        group = self._groups[entry.group]
        group.remove(entry)
        if group.size == 0:
            del self._groups[entry.group]
        if entry.attention_from == -math.inf:
            del self._not_ready[key]
        else:
            # Its pair stays in _attention, which readers skip, until `_compact`: finding it
            # among the many Certificates that share a renewal time would cost more.
            self._stale += 1

    def groups(self) -> Iterator[tuple[Group, GroupCounts]]:
        """Every group with at least one Certificate, sorted."""
        for group in sorted(self._groups):
            yield group, self._groups[group]

    def entries(self) -> Iterator[tuple[state.CertificateKey, Entry]]:
        """Every entry."""
        yield from self._entries.items()

    def needing_attention(self, now: float) -> Iterator[tuple[state.CertificateKey, Entry]]:
        """The entries of Certificates that are not Ready or whose renewal time has come."""
        for key in self._not_ready:
            yield key, self._entries[key]
        end = bisect.bisect_right(self._attention, now, key=_time_of)
        for _, key in self._live(self._attention[:end]):
            yield key, self._entries[key]

    def _live(
        self, pairs: list[tuple[float, state.CertificateKey]]
    ) -> Iterator[tuple[float, state.CertificateKey]]:
        """The pairs of current entries, once each (a re-added entry may have two)."""
        seen: set[state.CertificateKey] = set()
        for pair in pairs:
            at, key = pair
            entry = self._entries.get(key)
            if entry is not None and entry.attention_from == at and key not in seen:
                seen.add(key)
                yield pair

    def __len__(self) -> int:
        return len(self._entries)


def _time_of(pair: tuple[float, state.CertificateKey]) -> float:
    return pair[0]
