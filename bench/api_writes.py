"""API writes, as the API server counts them (``apiserver_request_total``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from prometheus_client import parser as prometheus_parser

MUTATING_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY"})
#: Writes that are not part of issuing: Lease renewals (certmint's leader election and
#: the API server's own heartbeat) and the API server's reconciliation of its endpoints.
BACKGROUND_RESOURCES = frozenset({"leases", "endpoints", "endpointslices"})
#: (verb, resource, subresource) as the API server labels its request counter.
RequestKey = tuple[str, str, str]


def request_counts(metrics_text: str) -> dict[RequestKey, float]:
    """Sums ``apiserver_request_total`` by (verb, resource, subresource).

    Args:
        metrics_text: The API server's ``/metrics`` page (Prometheus text format).

    Returns:
        The counters, summed over every other label (code, group, scope, version...).
    """
    lines = "\n".join(
        line for line in metrics_text.splitlines() if line.startswith("apiserver_request_total{")
    )
    counts: dict[RequestKey, float] = {}
    for family in prometheus_parser.text_string_to_metric_families(lines + "\n"):
        for sample in family.samples:
            labels = sample.labels
            key = (
                labels.get("verb", ""),
                labels.get("resource", ""),
                labels.get("subresource", ""),
            )
            counts[key] = counts.get(key, 0.0) + sample.value
    return counts


def writes_between(
    before: Mapping[RequestKey, float],
    after: Mapping[RequestKey, float],
    own: Mapping[RequestKey, float] | None = None,
) -> dict[str, int]:
    """Mutating requests made between two scrapes, by ``"VERB resource[/subresource]"``.

    Args:
        before: `request_counts` at the start.
        after: `request_counts` at the end.
        own: Requests the benchmark made itself, subtracted (e.g. its Certificate creates).

    Returns:
        Only the non-zero entries, sorted by name.
    """
    writes: dict[str, int] = {}
    for key, value in after.items():
        verb, resource_name, subresource = key
        if verb not in MUTATING_VERBS:
            continue
        made = round(value - before.get(key, 0.0) - (own or {}).get(key, 0.0))
        if made:
            name = f"{verb} {resource_name}" + (f"/{subresource}" if subresource else "")
            writes[name] = made
    return dict(sorted(writes.items()))


def issuing_writes(writes: Mapping[str, int]) -> int:
    """The writes that are part of issuing: all but the background (`BACKGROUND_RESOURCES`)."""
    return sum(
        count
        for name, count in writes.items()
        if name.split(" ", 1)[1].split("/", 1)[0] not in BACKGROUND_RESOURCES
    )


def wait_for_quiet(
    scrape: Callable[[], Mapping[RequestKey, float]], timeout: float = 60.0, interval: float = 1.0
) -> None:
    """Waits until no issuing write happened between two scrapes (Events post late).

    Args:
        scrape: The API server's counters now (`request_counts` of its ``/metrics``).
        timeout: Seconds after which it returns anyway.
        interval: Seconds between two scrapes.
    """
    deadline = time.monotonic() + timeout
    previous = issuing_writes(writes_between({}, scrape()))
    while time.monotonic() < deadline:
        time.sleep(interval)  # the sampling interval of a quiescence check
        current = issuing_writes(writes_between({}, scrape()))
        if current == previous:
            return
        previous = current
