"""The API server's request latency, from its own histogram and from a reader's clock (pure).

``apiserver_request_duration_seconds`` is a cumulative histogram per (verb, resource,
...). Scraping ``/metrics`` before and after a window and subtracting the buckets gives
the histogram of the requests made inside the window; its p99 is estimated the way
PromQL's ``histogram_quantile`` does (linear inside the bucket that holds the rank).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping

from prometheus_client import parser as prometheus_parser

DURATION_BUCKET = "apiserver_request_duration_seconds_bucket"
#: Cumulative counts by upper bound (``le``; ``math.inf`` for ``+Inf``).
Buckets = dict[float, float]


def duration_buckets(
    metrics_text: str, verbs: Collection[str], resources: Collection[str]
) -> Buckets:
    """Sums the API server's request-duration buckets of some verbs and resources.

    Only requests without a subresource count (a LIST of configmaps, not a status patch).

    Args:
        metrics_text: The API server's ``/metrics`` page (Prometheus text format).
        verbs: e.g. ``{"GET", "LIST"}``.
        resources: e.g. ``{"configmaps", "namespaces"}``.

    Returns:
        Cumulative counts by upper bound, summed over every matching series.
    """
    lines = "\n".join(
        line for line in metrics_text.splitlines() if line.startswith(DURATION_BUCKET + "{")
    )
    buckets: Buckets = {}
    for family in prometheus_parser.text_string_to_metric_families(lines + "\n"):
        for sample in family.samples:
            labels = sample.labels
            if (
                labels.get("verb") not in verbs
                or labels.get("resource") not in resources
                or labels.get("subresource", "")
            ):
                continue
            bound = float(labels["le"])
            buckets[bound] = buckets.get(bound, 0.0) + sample.value
    return buckets


def buckets_between(before: Mapping[float, float], after: Mapping[float, float]) -> Buckets:
    """The histogram of the requests made between two scrapes (``after - before``)."""
    return {bound: after[bound] - before.get(bound, 0.0) for bound in sorted(after)}


def histogram_quantile(fraction: float, buckets: Mapping[float, float]) -> float | None:
    """The ``fraction`` quantile of a cumulative histogram, as PromQL estimates it.

    Linear interpolation inside the bucket that holds the rank, from 0 for the first
    bucket; a rank in the ``+Inf`` bucket returns the highest finite bound. The estimate
    is only as fine as the buckets (the API server's start at 5 ms, 25 ms, 50 ms, 100 ms).

    Returns:
        None when the histogram holds no request.

    Raises:
        ValueError: ``fraction`` is outside [0, 1].
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction {fraction} is outside [0, 1]")
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0.0
    if total <= 0:
        return None
    rank = fraction * total
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return lower_bound


def request_count(buckets: Mapping[float, float]) -> int:
    """How many requests a (diffed) histogram holds: its ``+Inf`` bucket."""
    return round(buckets.get(math.inf, 0.0))
