"""Numbers of a benchmark phase: percentiles, latencies, throughput (pure)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` by linear interpolation (numpy's default).

    Raises:
        ValueError: ``values`` is empty or ``fraction`` is outside [0, 1].
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction {fraction} is outside [0, 1]")
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latencies(created: Mapping[str, float], ready: Mapping[str, float]) -> list[float]:
    """Seconds from each create request to Ready, for the names that became Ready."""
    return [ready[name] - created[name] for name in created if name in ready]


def throughput(created: Mapping[str, float], ready: Mapping[str, float]) -> tuple[float, float]:
    """(seconds from the first create to the last Ready, Ready certificates per second)."""
    if not ready or not created:
        return (math.nan, 0.0)
    seconds = max(ready.values()) - min(created.values())
    return seconds, len(ready) / seconds if seconds > 0 else math.nan


def rounded(value: float, digits: int = 3) -> float | None:
    """A JSON-friendly number: NaN becomes None."""
    return None if math.isnan(value) else round(value, digits)
